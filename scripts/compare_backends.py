#!/usr/bin/env python
"""How far the static backend's choices are from the transformer backend's, judged in the transformer's space.

Both backends run SMART with the same parameters (default: M' = 16, N' = 2,000, graph cut over tasks,
facility location inside them) on the same data. Reported:

1. stage 1: overlap of the selected task sets (and of the first half of the greedy order);
2. stage 2 alone, on the transformer's tasks and budgets: facility-location value, under the transformer
   embeddings, of the static-picked rows against the transformer-picked rows, per (task, template) group
   and summed (random rows with the same budgets as the floor);
3. both stages: FL value of each whole mixture over the rows of the transformer's selected tasks, and
   over the whole collection (coverage; the mean best cosine to a mixture row).

    python scripts/make_demo_data.py --out data/demo
    python scripts/compare_backends.py data/demo --transformer-emb runs/dev5/embeddings --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def run_smart(es, num_tasks: int, budget: int, function: str, seed: int, tasks_doc: dict | None = None):
    from smart_cli.select_samples import SampleConfig, select_samples
    from smart_cli.select_tasks import TaskConfig, select_tasks

    doc = tasks_doc or select_tasks(es, TaskConfig(num_tasks=num_tasks, budget=budget, function=function, seed=seed))
    doc = {**doc, "path": None}
    table = select_samples(es, doc, SampleConfig(seed=seed))
    return doc, table


def positions_of(es, table) -> np.ndarray:
    """Positions in EMB_DIR of the samples' source rows."""
    return np.searchsorted(es.rows, table.column("row").to_numpy())


def main() -> None:
    from smart_cli import artifacts
    from smart_cli.embed import EmbedConfig, embed
    from smart_cli.select_samples import plan
    from smart_cli.sparse import facility_location_value

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="data/demo")
    ap.add_argument("--transformer-emb", default=None, help="an existing transformer EMB_DIR (else embedded here)")
    ap.add_argument("--out", default="runs/compare", help="where the EMB_DIRs go")
    ap.add_argument("--num-tasks", "-m", type=int, default=16)
    ap.add_argument("--budget", "-n", type=int, default=2000)
    ap.add_argument("--function", default="gc")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    out = Path(args.out)
    t_dir = Path(args.transformer_emb) if args.transformer_emb else out / "transformer"
    s_dir = out / "static"
    embed(args.dataset, t_dir, EmbedConfig(backend="transformer"))  # nothing to do when complete
    embed(args.dataset, s_dir, EmbedConfig(backend="static"))
    et, es_ = artifacts.open_embeddings(t_dir), artifacts.open_embeddings(s_dir)
    assert np.array_equal(et.rows, es_.rows), "the two folders must embed the same rows"
    emb = np.asarray(et.embeddings, dtype=np.float32)  # the judge: transformer space

    t_doc, t_table = run_smart(et, args.num_tasks, args.budget, args.function, args.seed)
    s_doc, s_table = run_smart(es_, args.num_tasks, args.budget, args.function, args.seed)
    t_tasks, s_tasks = [t["task"] for t in t_doc["tasks"]], [t["task"] for t in s_doc["tasks"]]
    half = max(1, args.num_tasks // 2)
    res: dict = {
        "params": vars(args),
        "encoders": [et.meta["encoder"], es_.meta["encoder"]],
        "task_overlap": len(set(t_tasks) & set(s_tasks)),
        "task_overlap_first_half": len(set(t_tasks[:half]) & set(s_tasks[:half])),
        "num_tasks": args.num_tasks,
    }

    # Stage 2 alone: the transformer's tasks and budgets, rows picked in the static space.
    same_tasks = {**t_doc, "embeddings": {**t_doc["embeddings"], "fingerprint": es_.fingerprint}}
    _, s2_table = run_smart(es_, args.num_tasks, args.budget, args.function, args.seed, same_tasks)
    rng = np.random.default_rng(args.seed)
    picked = {"transformer": set(positions_of(et, t_table)), "static": set(positions_of(et, s2_table))}
    sums = {"transformer": 0.0, "static": 0.0, "random": 0.0}
    groups = 0
    for g in plan(et, t_doc):
        if not 0 < g.budget < len(g.positions):
            continue
        groups += 1
        sub = emb[g.positions]
        for name, chosen in picked.items():
            local = np.flatnonzero(np.isin(g.positions, list(chosen)))
            assert len(local) == g.budget
            sums[name] += facility_location_value(sub, local)
        sums["random"] += facility_location_value(sub, rng.choice(len(g.positions), g.budget, replace=False))
    res["stage2_groups"] = groups
    res["stage2_fl"] = sums
    res["stage2_ratio_static"] = sums["static"] / sums["transformer"]
    res["stage2_ratio_random"] = sums["random"] / sums["transformer"]

    # Both stages: each mixture's coverage, in the transformer's space.
    t_rows = np.flatnonzero(np.isin(et.task_codes, [et.task_names.index(t) for t in t_tasks]))
    for scope, rows in (("transformer_tasks", t_rows), ("collection", np.arange(len(emb)))):
        for name, table in (("transformer", t_table), ("static", s_table)):
            # every mixture row covers, inside ``rows`` or not
            chosen = emb[positions_of(et, table)]
            best = np.concatenate([(emb[rows[i : i + 4096]] @ chosen.T).max(1) for i in range(0, len(rows), 4096)])
            value = float(np.maximum(best, 0).sum())
            res[f"fl_{scope}_{name}"] = value
            res[f"coverage_{scope}_{name}"] = value / len(rows)
        res[f"fl_{scope}_ratio"] = res[f"fl_{scope}_static"] / res[f"fl_{scope}_transformer"]

    print(f"encoders: {res['encoders'][0]} vs {res['encoders'][1]}")
    print(
        f"stage 1: {res['task_overlap']}/{args.num_tasks} selected tasks in common "
        f"({res['task_overlap_first_half']}/{half} of the first {half} picks)"
    )
    print(
        f"stage 2 (transformer's tasks, {groups} groups): FL under transformer embeddings, static/transformer = "
        f"{res['stage2_ratio_static']:.4f} (random rows: {res['stage2_ratio_random']:.4f})"
    )
    for scope in ("transformer_tasks", "collection"):
        print(
            f"both stages, FL over {scope.replace('_', ' ')}: static/transformer = {res[f'fl_{scope}_ratio']:.4f} "
            f"(coverage {res[f'coverage_{scope}_static']:.4f} vs {res[f'coverage_{scope}_transformer']:.4f})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
