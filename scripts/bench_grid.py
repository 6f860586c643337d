#!/usr/bin/env python
"""Issue 10's numbers: the paper's 45-mixture grid in one recipe, and a select-samples the order cache covers.

On the synthetic FLAN 2022 of ``bench_scale.py`` (1,840 tasks, source-shaped sizes, ``--scale`` of its
17.6 M rows). The EMB_DIR is built straight from the data without a model: ``rows.parquet`` and
``meta.json`` exactly as ``embed --backend static --dtype float16`` writes them (the same
fingerprint, so a recipe's embed step finds the folder complete), and each task's rows as
clustered unit vectors (its own centres), float16, ``--dim`` 256 like the static backend.
Everything timed is the CLI as a subprocess, with the peak RSS of its process tree
(``bench_scale.run_stage``); N' values are the paper's times ``--scale``.

(a) the grid: the most expensive single mixtures alone (``--singles``; each with the cache cleared
    first), then the 9 x 5 grid recipe (cache cleared first). Bar: grid <= 2 x the most expensive single.
(b) select-samples M' = 256, N' = 400k x scale with an empty cache (cold), then M' = 256,
    N' = 200k x scale (warm: every group budget inside the cached orders), and the same warm
    mixture with --no-cache for reference (its bytes must equal the warm run's). Bar: warm <= 10 % of cold.

    python scripts/bench_grid.py --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from bench_scale import run_stage, write_dataset  # noqa: E402

NUM_TASKS = (8, 16, 32, 64, 128, 256, 512, 1024, 1840)
BUDGETS = (25_000, 50_000, 100_000, 200_000, 400_000)
#: Weight of the common direction in the largest task's centres (0 in the smallest).
CENTRALITY = 0.3


def build_emb_dir(spec: str, out: Path, dim: int, seed: int) -> int:
    """EMB_DIR for ``spec`` without a model: embed's rows.parquet and meta.json, clustered vectors per task."""
    from smart_cli import artifacts
    from smart_cli.embed import EmbedConfig
    from smart_cli.embed.source import _inputs, _open_dataset, _write_rows  # embed's own view of the dataset

    cfg = EmbedConfig(backend="static", dtype="float16")
    ds, cfg, identity = _open_dataset(spec, cfg)
    inputs = _inputs(identity, ds, cfg, cfg.model)
    out.mkdir(parents=True, exist_ok=True)
    _write_rows(ds, cfg, identity, out / artifacts.ROWS, None)
    tasks = ds.data.column(cfg.columns.task).combine_chunks().dictionary_encode().indices.to_numpy()
    starts = np.flatnonzero(np.diff(tasks, prepend=-1))  # write_dataset writes each task's rows together
    ends = np.append(starts[1:], len(tasks))
    matrix = np.lib.format.open_memmap(out / ".partial.npy", mode="w+", dtype=np.float16, shape=(len(tasks), dim))
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(dim, dtype=np.float32)  # what the collection's prompts share
    sizes = np.log(ends - starts)
    # Larger tasks lie nearer the common direction (generic prompts, as FLAN 2021 / T0 tasks), so
    # graph cut's first picks are large tasks and every (M', N') of the paper's grid can be held.
    weight = CENTRALITY * (sizes - sizes.min()) / max(float(sizes.max() - sizes.min()), 1e-9)
    for lo, hi, w in zip(starts, ends, weight):
        centres = rng.standard_normal((12, dim), dtype=np.float32) + w * common
        x = centres[rng.integers(0, 12, hi - lo)] + 0.45 * rng.standard_normal((hi - lo, dim), dtype=np.float32)
        matrix[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    matrix.flush()
    del matrix
    (out / ".partial.npy").replace(out / artifacts.EMBEDDINGS)
    meta = {
        "format": "smart-cli/embeddings",
        "producer": artifacts.producer(),
        **inputs,
        "encoder": "synthetic: clustered unit vectors per task (scripts/bench_grid.py)",
        "dim": dim,
        "rows": len(tasks),
        "max_seq_length": None,
        "truncated": 0,
        "zero_rows": 0,
        "fingerprint": artifacts.fingerprint(inputs),
        "rows_sha256": artifacts.sha256_file(out / artifacts.ROWS),
        "embeddings_sha256": artifacts.sha256_file(out / artifacts.EMBEDDINGS),
    }
    artifacts.write_json(out / artifacts.META, meta)
    return len(tasks)


def prepare(data: Path, emb: Path, scale: float, dim: int, seed: int) -> None:
    if not (data / "_done").exists():
        (data / "_done").write_text(str(write_dataset(data, scale, seed)))
    build_emb_dir(str(data / "*.parquet"), emb, dim, seed)


def recipe(path: Path, spec: str, out: Path, emb: Path, num_tasks, budget, workers: int) -> Path:
    path.write_text(
        f"dataset: '{spec}'\nout: {out}\nembeddings: {emb}\nseed: 23\n"
        "embed: {backend: static, dtype: float16}\n"
        f"select_tasks: {{num_tasks: {num_tasks}, budget: {budget}, function: gc, lambda: 0.4}}\n"
        f"select_samples: {{function: fl, workers: {workers}}}\n"
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.1, help="fraction of FLAN 2022's 17.6 M rows")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-grid"))
    ap.add_argument("--keep", action="store_true", help="reuse the data and EMB_DIR already in --work")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2, help="select_samples workers")
    ap.add_argument("--singles", default="1840,8", help="M' of the single mixtures timed alone (at the largest N')")
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument("--skip-warm", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    work = Path(args.work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    data, emb, log = work / "data", work / "emb", work / "bench.log"
    spec = str(data / "*.parquet")
    t0 = time.perf_counter()
    if not (emb / "meta.json").exists():  # in a child: this process stays small, and so do the RSS figures
        # (a forked child's peak RSS counts its parent's pages until exec)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(prepare, data, emb, args.scale, args.dim, args.seed).result()
    rows = int((data / "_done").read_text())
    budgets = [max(1, round(n * args.scale)) for n in BUDGETS]
    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; scale {args.scale:g}: {rows:,} rows, 1,840 tasks; "
        f"N' = {budgets}; data and EMB_DIR ready in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    cli = [str(Path(sys.executable).with_name("smart-cli")), "--quiet"]
    clear = [*cli, "cache", "clear", str(emb)]
    result: dict = {"scale": args.scale, "rows": rows, "budgets": budgets, "workers": args.workers}
    if not args.skip_grid:
        result["a"] = bench_grid(cli, clear, spec, emb, work, budgets, args, log)
    if not args.skip_warm:
        result["b"] = bench_warm(cli, clear, emb, work, budgets, args.workers, log)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def bench_grid(cli: list[str], clear: list[str], spec: str, emb: Path, work: Path, budgets, args, log) -> dict:
    """The singles alone, the grid, the singles again (the machine's load moves): the bar takes each
    single's faster run, the conservative side."""

    def single(m: int, when: str) -> dict:
        run_stage("cache clear", clear, 0, log)
        out = work / f"single-m{m}"
        shutil.rmtree(out, ignore_errors=True)
        r = recipe(work / f"single-m{m}.yaml", spec, out, emb, m, budgets[-1], args.workers)
        return run_stage(f"single M'={m} N'={budgets[-1]:,} ({when})", [*cli, "run", str(r)], budgets[-1], log)

    ms = [int(x) for x in args.singles.split(",")]
    before = [single(m, "before") for m in ms]
    run_stage("cache clear", clear, 0, log)
    shutil.rmtree(work / "grid", ignore_errors=True)
    g = recipe(work / "grid.yaml", spec, work / "grid", emb, list(NUM_TASKS), budgets, args.workers)
    grid = run_stage("grid 9 x 5 (cold cache)", [*cli, "run", str(g)], sum(budgets) * len(NUM_TASKS), log)
    after = [single(m, "after") for m in ms]
    fastest = [min(a, b, key=lambda s: s["wall_s"]) for a, b in zip(before, after)]
    worst = max(fastest, key=lambda s: s["wall_s"])
    ratio = grid["wall_s"] / worst["wall_s"]
    print(f"(a) grid / most expensive single ({worst['stage']}): {ratio:.2f}  [{'PASS' if ratio <= 2 else 'FAIL'}]")
    return {"singles": before + after, "grid": grid, "ratio": round(ratio, 3)}


def bench_warm(cli: list[str], clear: list[str], emb: Path, work: Path, budgets: list[int], workers: int, log) -> dict:
    out = work / "warm"
    out.mkdir(exist_ok=True)
    run_stage("cache clear", clear, 0, log)
    big, small = budgets[-1], budgets[-2]
    for n in (big, small):
        cmd = [*cli, "select-tasks", str(emb), "-m", "256", "-n", str(n), "--out", str(out / f"t{n}.json")]
        run_stage(f"select-tasks M'=256 N'={n:,}", cmd, n, log)

    def samples(n: int, name: str, *extra: str) -> list[str]:
        target = out / f"{name}.parquet"
        target.unlink(missing_ok=True)  # not "up to date": the run selects
        tasks = str(out / f"t{n}.json")
        return [*cli, "select-samples", str(emb), tasks, "--out", str(target), "--workers", str(workers), *extra]

    cold = run_stage(f"select-samples N'={big:,} cold", samples(big, "cold"), big, log)
    warm = run_stage(f"select-samples N'={small:,} warm", samples(small, "warm"), small, log)
    fresh = run_stage(f"select-samples N'={small:,} --no-cache", samples(small, "fresh", "--no-cache"), small, log)
    same = (out / "warm.parquet").read_bytes() == (out / "fresh.parquet").read_bytes()
    ratio = warm["wall_s"] / cold["wall_s"]
    print(
        f"(b) warm / cold select-samples: {ratio:.3f}; warm bytes == --no-cache bytes: {same}  "
        f"[{'PASS' if ratio <= 0.1 and same else 'FAIL'}]",
        flush=True,
    )
    return {"cold": cold, "warm": warm, "no_cache": fresh, "ratio": round(ratio, 4), "identical": same}


if __name__ == "__main__":
    main()
