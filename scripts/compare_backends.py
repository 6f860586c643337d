#!/usr/bin/env python
"""How far the static backend's choices are from the transformer backend's, judged in the transformer's space.

The same data is embedded with the transformer (the judge) and with the static backend: once the
old way (stage 1 on the static rows' own means, the static vectors as they are: ``--task-means rows
--row-map none``), and once per ``--task-sample`` and ``--row-maps`` the new way (stage 1 on the
transformer means estimated from that many rows per task, every row carried into the transformer's
space by the map fitted on them: token vectors, the default, or one affine map). Reported, at every
``--num-tasks``:

1. stage 1: the share of the transformer pipeline's selected tasks that each static pipeline selects;
2. stage 2 alone, on the transformer's tasks and budgets, per (task, template) group with 0 < b < n:
   facility location, under the transformer vectors, of the rows picked with static vectors, as the
   share of the transformer picks' gain over random rows: (F_static - F_random) / (F_transformer -
   F_random), summed over groups.

    python scripts/real_multitask.py ... --per-task 120 --out data/real
    python scripts/compare_backends.py data/real --out runs/compare --num-tasks 8 16 32 --task-sample 16 32 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def embed_timed(dataset: str, out: Path, **options) -> tuple:
    from smart_cli import artifacts
    from smart_cli.embed import EmbedConfig, embed

    start = time.perf_counter()
    embed(dataset, out, EmbedConfig(**options))
    return artifacts.open_embeddings(out), time.perf_counter() - start


def tasks_of(es, num_tasks: int, budget: int, function: str, seed: int) -> dict:
    from smart_cli.select_tasks import TaskConfig, select_tasks

    return select_tasks(es, TaskConfig(num_tasks=num_tasks, budget=budget, function=function, seed=seed, no_cache=True))


def stage2(et, doc: dict, spaces: dict[str, np.ndarray], seed: int) -> dict:
    """Each space's picks' share of the transformer picks' facility-location gain over random rows."""
    from smart_cli.select_samples import plan
    from smart_cli.sparse import facility_location_value
    from smart_cli.submodular import Objective, maximize

    judge = spaces["transformer"]
    rng = np.random.default_rng(seed)
    sums = dict.fromkeys([*spaces, "random"], 0.0)
    groups = 0
    for g in plan(et, doc):
        n, b = len(g.positions), g.budget
        if not 0 < b < n:
            continue
        groups += 1
        sub = judge[g.positions]
        for name, vectors in spaces.items():
            picks, _ = maximize(vectors[g.positions], b, Objective.of("fl"), np.random.default_rng(seed))
            sums[name] += facility_location_value(sub, picks)
        sums["random"] += facility_location_value(sub, rng.choice(n, b, replace=False))
    gain = sums["transformer"] - sums["random"]
    return {"groups": groups, **{f"{k}_share": (v - sums["random"]) / gain for k, v in sums.items() if k != "random"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="data/demo")
    ap.add_argument("--out", default="runs/compare", help="where the EMB_DIRs go (kept: a second run reuses them)")
    ap.add_argument("--num-tasks", "-m", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--per-task", type=int, default=20, help="N' = this x M' (a sixth of a 120-row task)")
    ap.add_argument("--function", default="gc")
    ap.add_argument("--task-sample", type=int, nargs="+", default=[32])
    ap.add_argument(
        "--row-maps", nargs="+", default=["tokens", "transformer"], help="embed --row-map of the static folders"
    )
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    out = Path(args.out)
    et, t_time = embed_timed(args.dataset, out / "transformer", backend="transformer")
    old = {"task_means": "rows", "row_map": "none"}
    folders = {"static, old": embed_timed(args.dataset, out / "static-old", backend="static", **old)}
    for k in args.task_sample:
        for kind in args.row_maps:
            folders[f"static, {k} rows/task, {kind}"] = embed_timed(
                args.dataset, out / f"static-{k}-{kind}", backend="static", task_sample=k, row_map=kind
            )
    res: dict = {"params": vars(args), "rows": len(et.rows), "tasks": len(et.task_names)}
    res["embed_s"] = {"transformer": round(t_time, 1), **{k: round(v[1], 1) for k, v in folders.items()}}
    print(f"{len(et.rows):,} rows, {len(et.task_names)} tasks; embed seconds: {res['embed_s']}")

    spaces = {"transformer": np.asarray(et.embeddings, dtype=np.float32)}
    spaces |= {name: np.asarray(es.embeddings, dtype=np.float32) for name, (es, _) in folders.items()}
    for m in args.num_tasks:
        if m > len(et.task_names):
            continue
        t_doc = tasks_of(et, m, args.per_task * m, args.function, args.seed)
        want = {t["task"] for t in t_doc["tasks"]}
        agree = {
            name: len(want & {t["task"] for t in tasks_of(es, m, args.per_task * m, args.function, args.seed)["tasks"]})
            / m
            for name, (es, _) in folders.items()
        }
        res[f"m{m}"] = {"stage1_agreement": agree, "stage2": stage2(et, t_doc, spaces, args.seed)}
        print(f"M' = {m}: stage 1 agreement {json.dumps(agree)}; stage 2 {json.dumps(res[f'm{m}']['stage2'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
