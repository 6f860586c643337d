#!/usr/bin/env python
"""A small real multi-task collection in FLAN columns, from public benchmark repositories on disk.

No hub is reachable here, so the comparison of the static and transformer pipelines on real text
(``scripts/compare_backends.py``) reads git checkouts of three public repositories:

* BIG-Bench Hard (``suzgunmirac/BIG-Bench-Hard``): ``bbh/*.json``, 27 tasks, one row per example;
* AGIEval (``microsoft/AGIEval``): ``data/v1/*.jsonl``, 20 tasks (passage, question and options);
* Natural Instructions v1 (``allenai/natural-instructions-v1``): the prompts in
  ``predictions/gpt3_outputs``, 12 subtasks, each prompt variant a template type.

    python scripts/real_multitask.py --bbh REPO --agieval REPO --ni REPO --per-task 120 --out data/real

Each argument is a bare git directory or a checkout; files are read with ``git show`` when it is bare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path


def _files(repo: Path, prefix: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", "HEAD", prefix],
        check=True,
        capture_output=True,
        text=True,
    )
    return [line for line in out.stdout.splitlines() if line]


def _read(repo: Path, name: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"HEAD:{name}"], check=True, capture_output=True, text=True
    ).stdout


def bbh(repo: Path) -> list[dict]:
    rows = []
    for name in (n for n in _files(repo, "bbh/") if n.endswith(".json")):
        task = Path(name).stem
        for ex in json.loads(_read(repo, name))["examples"]:
            rows.append({"inputs": ex["input"], "targets": str(ex["target"]), "task_name": f"bbh_{task}"})
    return rows


def agieval(repo: Path) -> list[dict]:
    rows = []
    for name in _files(repo, "data/v1/"):
        if not name.endswith(".jsonl"):
            continue
        task = Path(name).stem
        for line in _read(repo, name).splitlines():
            ex = json.loads(line)
            parts = [ex.get("passage") or "", ex.get("question") or "", "\n".join(ex.get("options") or [])]
            prompt = "\n".join(p for p in parts if p)
            answer = ex.get("label") or ex.get("answer") or ""
            rows.append({"inputs": prompt, "targets": str(answer), "task_name": f"agieval_{task}"})
    return rows


def natural_instructions(repo: Path) -> list[dict]:
    rows, seen = [], set()
    for name in _files(repo, "predictions/gpt3_outputs/"):
        base = Path(name).name
        task, variant = base.split("@")[0], base.split("@")[1]
        for ex in json.loads(_read(repo, name))["predictions"]:
            if (key := (task, ex["input"])) in seen:
                continue
            seen.add(key)
            rows.append({"inputs": ex["input"], "targets": ex["output"].strip(), "task_name": task, "variant": variant})
    return rows


def _cap(rows: list[dict], per_task: int, seed: int = 23) -> list[dict]:
    """At most ``per_task`` rows of each task, drawn with ``seed``, in their original order."""
    import random

    by_task: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_task.setdefault(r["task_name"], []).append(i)
    rng = random.Random(seed)
    keep = sorted(i for ids in by_task.values() for i in (rng.sample(ids, per_task) if len(ids) > per_task else ids))
    return [rows[i] for i in keep]


def main() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bbh", type=Path, required=True)
    ap.add_argument("--agieval", type=Path, required=True)
    ap.add_argument("--ni", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("data/real"))
    ap.add_argument("--per-task", type=int, default=0, help="keep at most this many rows of a task (seeded; 0: all)")
    args = ap.parse_args()
    rows = bbh(args.bbh) + agieval(args.agieval) + natural_instructions(args.ni)
    if args.per_task:
        rows = _cap(rows, args.per_task)
    table = pa.table(
        {
            "inputs": [r["inputs"] for r in rows],
            "targets": [r["targets"] for r in rows],
            "task_name": [r["task_name"] for r in rows],
            "task_source": [r["task_name"].split("_")[0] for r in rows],
            "template_type": ["zs_noopt"] * len(rows),
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out / "train.parquet")
    chars = sum(len(r["inputs"]) for r in rows)
    tasks = len({r["task_name"] for r in rows})
    print(f"wrote {len(rows):,} rows, {tasks} tasks, {chars / len(rows):,.0f} prompt characters a row to {args.out}")


if __name__ == "__main__":
    main()
