#!/usr/bin/env python
"""What stage 2 of a static folder would need to keep 0.8 of the transformer picks' gain (issue 15).

Averaged over several draws of the transformer's sample (``--samples``): one draw's shares move by
several hundredths, more than most of the differences measured here. Stage 1 is reported too, for
the two windows: the share of the transformer pipeline's tasks that the default stage 1 (task means
estimated from the sample with the control variate of every mapped row) selects.

``compare_backends.py`` measures the static pipeline's stage-2 share: facility location, under the
transformer's vectors, of the rows picked with the static folder's vectors, as the share of the
transformer picks' gain over random rows. This script asks which row vectors would do better, all
on the transformer pipeline's tasks and budgets and judged the same way:

* ``noise``: the transformer's own vectors plus isotropic Gaussian noise, at several cosines to the
  originals: how much error of *that* kind the share tolerates;
* ``affine W``: the default row map (one affine least-squares map, fitted on ``--task-sample`` rows a
  task) on static vectors with a window of W tokens: 254 (the transformer's own, the default) and 512;
* ``within``: each row as its task's estimated transformer mean plus its static deviation from the
  task's static mean through the within-task map (``embed/teacher.py``'s control-variate map), the
  deviation scaled by 1, 1.5 and 2;
* ``+ sample``: the same, but the sample's rows keep the transformer vectors ``embed`` computed for
  them (a fully sampled task is then selected on the transformer's own vectors);
* ``tokens``: a token-level model in the spirit of model2vec's tokenlearn, trained on the sample
  only: the static model's token vectors carried through the affine map are the starting point,
  each row is ``sum of its token vectors / |its static sum| + b``, and the token vectors and ``b``
  are fitted (Adam, cosine loss, a pull towards the start) to the sample's transformer vectors.

It reads the transformer EMB_DIR ``compare_backends.py`` leaves (``--emb``) and the dataset's prompts:

    python scripts/compare_backends.py data/real --out runs/compare --task-sample 16
    python scripts/stage2_ceiling.py data/real --emb runs/compare --task-sample 16
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from compare_backends import stage2, tasks_of  # noqa: E402

from smart_cli import artifacts  # noqa: E402
from smart_cli.backends.base import _l2_normalise  # noqa: E402
from smart_cli.backends.mapped import fit_affine  # noqa: E402
from smart_cli.embed.teacher import estimate, fit_map, group_means, sample_rows  # noqa: E402


def noisy(judge: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``judge`` plus isotropic noise of expected norm ``sigma``, renormalised."""
    noise = np.random.default_rng(seed).standard_normal(judge.shape) / np.sqrt(judge.shape[1])
    return _l2_normalise((judge + sigma * noise).astype(np.float32))


def kept(rows: np.ndarray, judge: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """``rows`` with the sample's rows replaced by their transformer vectors."""
    out = rows.copy()
    out[sample] = judge[sample].astype(np.float32)
    return out


def within(static: np.ndarray, judge: np.ndarray, codes: np.ndarray, sample: np.ndarray, scale: float) -> np.ndarray:
    """Estimated task mean + scale x (row - task mean of the static vectors) @ within-task map."""
    n_tasks = int(codes.max()) + 1
    w = fit_map(static[sample], judge[sample], codes[sample], n_tasks)
    means = estimate(static, codes, sample, judge[sample], n_tasks)
    deviation = static - group_means(static, codes, n_tasks)[codes]
    return _l2_normalise((means[codes] + scale * deviation @ w).astype(np.float32))


def token_model(enc, texts: list[str], judge: np.ndarray, sample: np.ndarray, args) -> np.ndarray:
    """Token vectors fitted to the sample's transformer vectors (see the module's docstring)."""
    import torch

    static = enc.encode(texts).astype(np.float64)
    affine = fit_affine(static[sample], judge[sample])
    table = enc._table if enc._mapping is None else enc._table[enc._mapping]
    if enc._weights is not None:
        table = enc._weights[:, None] * table
    ids = [x[: args.max_tokens] for x in enc.token_ids(texts)]
    vocab = sorted({t for x in ids for t in x})
    where = {t: i for i, t in enumerate(vocab)}
    bags = [torch.tensor([where[t] for t in x], dtype=torch.long) for x in ids]
    norms = torch.tensor([max(float(np.linalg.norm(table[x].sum(0))), 1e-12) if x else 1.0 for x in ids])
    start = torch.tensor(table[vocab].astype(np.float64) @ affine[:-1], dtype=torch.float32)
    vectors = torch.nn.Parameter(start.clone())
    bias = torch.nn.Parameter(torch.tensor(affine[-1], dtype=torch.float32))
    target = torch.tensor(judge, dtype=torch.float32)

    def rows(idx) -> torch.Tensor:
        flat = torch.cat([bags[i] for i in idx])
        offsets = torch.tensor(np.cumsum([0] + [len(bags[i]) for i in idx[:-1]]), dtype=torch.long)
        summed = torch.nn.functional.embedding_bag(flat, vectors, offsets, mode="sum")
        return summed / norms[list(idx), None] + bias

    opt = torch.optim.Adam([vectors, bias], lr=args.lr)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.epochs):
        order = rng.permutation(sample)
        for lo in range(0, len(order), 64):
            idx = order[lo : lo + 64]
            cos = torch.nn.functional.cosine_similarity(rows(idx), target[idx])
            loss = (1 - cos).mean() + args.pull * ((vectors - start) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = torch.cat([rows(list(range(lo, min(lo + 512, len(ids))))) for lo in range(0, len(ids), 512)])
    return _l2_normalise(out.numpy().astype(np.float32))


def token_model_fixed(enc, texts: list[str], judge: np.ndarray, sample: np.ndarray, args) -> np.ndarray:
    """The same model trained by ``embed/token_fit.py`` (float64, fixed order, lazy Adam)."""
    from smart_cli.embed.token_fit import FitOptions, fit_tokens, fixed_product

    sums = np.concatenate([enc._sums(texts[lo : lo + 4096])[0] for lo in range(0, len(texts), 4096)])
    norms = np.sqrt((sums.astype(np.float64) ** 2).sum(1))
    static = _l2_normalise(sums)
    affine = fit_affine(static[sample].astype(np.float64), judge[sample])
    table = enc._table if enc._mapping is None else enc._table[enc._mapping]
    if enc._weights is not None:
        table = enc._weights[:, None] * table
    ids = [np.asarray(x[: args.max_tokens], dtype=np.int64) for x in enc.token_ids(texts)]
    picked = [ids[i] for i in sample]
    tokens = np.unique(np.concatenate(picked))
    full = fixed_product(np.ascontiguousarray(table, dtype=np.float32), affine[:-1])
    opts = FitOptions(epochs=args.epochs, lr=args.lr, pull=args.pull, batch=64, seed=args.seed)
    fit = fit_tokens(picked, norms[sample], judge[sample], full[tokens], affine[-1], opts)
    full[fit.tokens] = fit.vectors
    out = np.stack([full[x].sum(0) if len(x) else np.zeros(full.shape[1]) for x in ids])
    out = out / np.maximum(norms, 1e-12)[:, None] + fit.bias
    return _l2_normalise(out.astype(np.float32))


def stage1_agreement(et, stored: np.ndarray, sample: np.ndarray, judge: np.ndarray, args) -> list[float]:
    """Share of the transformer pipeline's tasks selected on the means ``embed`` would store for ``stored``
    rows (``estimate``), at each ``--num-tasks``. ``select_tasks`` reads a folder's means through
    ``stage1_means``; here it is handed these instead."""
    import smart_cli.select_tasks as stage1

    codes = et.task_codes.astype(np.int64)
    means = estimate(stored, codes, sample, judge[sample], len(et.task_names))
    out = []
    for m in args.num_tasks:
        want = {t["task"] for t in tasks_of(et, m, args.per_task * m, args.function, args.seed)["tasks"]}
        own = stage1.stage1_means
        stage1.stage1_means = lambda es, reporter=None: means
        try:
            got = {t["task"] for t in tasks_of(et, m, args.per_task * m, args.function, args.seed)["tasks"]}
        finally:
            stage1.stage1_means = own
        out.append(len(want & got) / m)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--emb", default="runs/compare", help="compare_backends.py's --out")
    ap.add_argument("--prompt", default="inputs", help="the prompt column")
    ap.add_argument("--num-tasks", "-m", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--per-task", type=int, default=20)
    ap.add_argument("--function", default="gc")
    ap.add_argument("--task-sample", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=254, help="the window of within and tokens")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pull", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--samples", type=int, nargs="+", default=[0, 1, 2], help="the sample draws (seeds) to average")
    args = ap.parse_args()

    import pandas as pd

    from smart_cli.backends.static import StaticEncoder

    et = artifacts.open_embeddings(Path(args.emb) / "transformer")
    judge = np.asarray(et.embeddings, dtype=np.float64)
    prompts = pd.read_parquet(args.dataset, columns=[args.prompt])[args.prompt]
    texts = [str(prompts.iloc[int(r)]) for r in et.rows]
    codes = et.task_codes.astype(np.int64)
    encoders = {w: StaticEncoder.load(max_tokens=w) for w in sorted({254, 512, args.max_tokens})}
    statics = {w: enc.encode(texts).astype(np.float64) for w, enc in encoders.items()}
    shares: dict[str, list[np.ndarray]] = {}
    cosines: dict[str, list[float]] = {}
    stage1: dict = {w: [] for w in statics}
    stage1[f"fixed {args.max_tokens}"] = []
    for draw in args.samples:
        sample = sample_rows(codes, len(et.task_names), args.task_sample, draw)
        held_out = np.ones(len(judge), dtype=bool)
        held_out[sample] = False
        spaces = {"transformer": judge.astype(np.float32)}
        for w, static in statics.items():
            affine = fit_affine(static[sample], judge[sample])
            spaces[f"affine {w}"] = _l2_normalise((static @ affine[:-1] + affine[-1]).astype(np.float32))
            stage1[w].append(stage1_agreement(et, spaces[f"affine {w}"], sample, judge, args))
        # The sample's own rows keep the transformer vectors embed computed for them anyway.
        spaces[f"affine {args.max_tokens} + sample"] = kept(spaces[f"affine {args.max_tokens}"], judge, sample)
        for scale in (1.0, 1.5, 2.0):
            spaces[f"within {args.max_tokens} x{scale}"] = within(statics[args.max_tokens], judge, codes, sample, scale)
        start = time.perf_counter()
        spaces[f"tokens {args.max_tokens}"] = token_model(encoders[args.max_tokens], texts, judge, sample, args)
        spaces[f"tokens {args.max_tokens} + sample"] = kept(spaces[f"tokens {args.max_tokens}"], judge, sample)
        print(f"sample {draw}: token model trained in {time.perf_counter() - start:.0f} s on {len(sample):,} rows")
        start = time.perf_counter()
        spaces[f"fixed {args.max_tokens}"] = token_model_fixed(encoders[args.max_tokens], texts, judge, sample, args)
        print(f"sample {draw}: fixed-order token model trained in {time.perf_counter() - start:.0f} s")
        stage1[f"fixed {args.max_tokens}"].append(
            stage1_agreement(et, spaces[f"fixed {args.max_tokens}"], sample, judge, args)
        )
        for sigma in (0.5, 0.75, 1.0):
            spaces[f"noise {sigma}"] = noisy(judge.astype(np.float32), sigma, args.seed + draw)
        values = {name: [] for name in spaces if name != "transformer"}
        for m in args.num_tasks:
            res = stage2(et, tasks_of(et, m, args.per_task * m, args.function, args.seed), spaces, args.seed)
            for name in values:
                values[name].append(res[f"{name}_share"])
        for name, v in values.items():
            shares.setdefault(name, []).append(np.array(v))
            cosines.setdefault(name, []).append(float((spaces[name][held_out] * judge[held_out]).sum(1).mean()))

    print(
        f"mean of {len(args.samples)} samples; cos: mean cosine to the transformer's vectors, rows outside the sample"
    )
    print(f"{'vectors':<18} {'cos':>6}  share at M' = {' / '.join(map(str, args.num_tasks))} (min-max)")
    for name, rows in shares.items():
        table = np.stack(rows)
        cells = " / ".join(
            f"{a:.2f} ({lo:.2f}-{hi:.2f})" for a, lo, hi in zip(table.mean(0), table.min(0), table.max(0))
        )
        print(f"{name:<18} {np.mean(cosines[name]):>6.3f}  {cells}")
    for w, rows in stage1.items():
        table = np.stack(rows)
        cells = " / ".join(
            f"{a:.0%} ({lo:.0%}-{hi:.0%})" for a, lo, hi in zip(table.mean(0), table.min(0), table.max(0))
        )
        print(f"stage 1, {w}: tasks in common {cells}")


if __name__ == "__main__":
    main()
