"""Build the chat demo from the FLAN-style demo: conversations in both forms chat collections use.

Usage: python scripts/make_chat_demo.py --flan data/demo --out data/demo-chat

Each task's rows become conversations of one to three exchanges (the row's prompt, then its
answer), every fourth one opened by a system turn; ``source`` names the task's origin as Tulu 3
and SmolTalk do. Written twice: ``messages/part-0.parquet`` and ``part-1.parquet`` in the
``messages: [{role, content}]`` form (Tulu 3, SmolTalk; split across two files as a mixture of
sources is), and ``sharegpt/train.parquet`` in ShareGPT's ``conversations: [{from, value}]``
form (OpenHermes 2.5, Infinity-Instruct). Deterministic: the same FLAN demo gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SYSTEMS = ("You are a helpful assistant.", "Answer briefly and precisely.", "You are a careful tutor.")
SHAREGPT = {"system": "system", "user": "human", "assistant": "gpt"}


def conversations(rows: list[dict]) -> list[dict]:
    """Rows of one task, in order, folded into conversations of 1-3 exchanges."""
    out, i, k = [], 0, 0
    while i < len(rows):
        size = 1 + k % 3
        turns = [{"role": "system", "content": SYSTEMS[k % len(SYSTEMS)]}] if k % 4 == 0 else []
        for row in rows[i : i + size]:
            turns += [{"role": "user", "content": row["inputs"]}, {"role": "assistant", "content": row["targets"]}]
        task = rows[i]["task_name"]
        out.append(
            {"id": f"{task}-{k}", "source": f"demo/{task}", "category": rows[i]["task_source"], "messages": turns}
        )
        i, k = i + size, k + 1
    return out


def build(flan: Path) -> list[dict]:
    table = pq.read_table(flan / "train.parquet", columns=["inputs", "targets", "task_name", "task_source"])
    by_task: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        by_task.setdefault(row["task_name"], []).append(row)
    return [c for task in by_task for c in conversations(by_task[task])]


def write(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flan", type=Path, default=Path("data/demo"), help="the FLAN-style demo folder")
    parser.add_argument("--out", type=Path, default=Path("data/demo-chat"))
    args = parser.parse_args(argv)
    rows = build(args.flan)
    half = len(rows) // 2
    write(rows[:half], args.out / "messages" / "part-0.parquet")
    write(rows[half:], args.out / "messages" / "part-1.parquet")
    sharegpt = [
        {**{k: v for k, v in r.items() if k != "messages"},
         "conversations": [{"from": SHAREGPT[t["role"]], "value": t["content"]} for t in r["messages"]]}
        for r in rows
    ]  # fmt: skip
    write(sharegpt, args.out / "sharegpt" / "train.parquet")
    sys.stderr.write(f"wrote {len(rows):,} conversations to {args.out} (messages: 2 files; sharegpt: 1)\n")


if __name__ == "__main__":
    main()
