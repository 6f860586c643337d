"""Awkward but valid data, end to end through the CLI: the mixture holds the source values exactly.

Nulls and empty strings, integers, emoji, right-to-left and CJK text, control characters, a
prompt far longer than the model window, duplicated rows, a task of one row, a null template,
all tasks selected (M' = number of tasks), and a dataset without a template column.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_parquet
from typer.testing import CliRunner

from smart_cli.cli import app

runner = CliRunner()
LONG = " ".join(["antidisestablishmentarianism"] * 300)  # far beyond 256 tokens


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


AWKWARD = [
    {"inputs": "hello 👋🏽 world", "targets": None, "task_name": "greet ✨", "template_type": "zs_opt"},
    {"inputs": "", "targets": "", "task_name": "greet ✨", "template_type": "zs_opt"},
    {"inputs": None, "targets": "no prompt at all", "task_name": "greet ✨", "template_type": "zs_noopt"},
    {"inputs": "مرحبا بالعالم", "targets": "שלום עולם", "task_name": "greet ✨", "template_type": "fs_opt"},
    {"inputs": "你好，世界", "targets": "こんにちは", "task_name": "翻译", "template_type": "zs_opt"},
    {"inputs": LONG, "targets": "a long one", "task_name": "翻译", "template_type": "zs_opt"},
    {"inputs": "same row", "targets": "same answer", "task_name": "翻译", "template_type": "zs_opt"},
    {"inputs": "same row", "targets": "same answer", "task_name": "翻译", "template_type": "zs_opt"},
    {"inputs": "alone", "targets": "the only row", "task_name": "single", "template_type": "zs_noopt"},
    {
        "inputs": 'nul\x00 tab\t nl\n "q" \\ \u2028',
        "targets": "\x85\u2029\ud7ff\ue000",
        "task_name": "ctl",
        "template_type": None,
    },
    {"inputs": "x" * 5, "targets": "y", "task_name": "ctl", "template_type": "custom"},
    {"inputs": "🙂 " * 300, "targets": "emoji flood", "task_name": "ctl", "template_type": "custom"},
]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> tuple[Path, Path, str]:
    d = tmp_path_factory.mktemp("awkward")
    data = write_parquet(AWKWARD, d / "awkward.parquet")
    r = invoke("embed", data, "--out", d / "emb", "--shard-rows", "5")
    return d, Path(data), r.output


def mixture(d: Path, emb: Path, num_tasks: int, budget: int, name: str) -> list[dict]:
    invoke("select-tasks", emb, "-m", num_tasks, "-n", budget, "--out", d / f"{name}.tasks.json")
    invoke("select-samples", emb, d / f"{name}.tasks.json", "--out", d / f"{name}.parquet")
    invoke("export", d / f"{name}.parquet", "--out", d / f"{name}.jsonl")
    return [json.loads(line) for line in (d / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_long_prompts_are_truncated_counted_and_reported(awkward):
    d, _, output = awkward
    meta = json.loads((d / "emb" / "meta.json").read_text())
    assert meta["truncated"] == 2 and meta["max_seq_length"] == 256 and meta["rows"] == len(AWKWARD)
    assert "warning: 2 of 12 texts were longer than the model window (256 tokens) and were truncated" in output


@pytest.mark.parametrize("budget", [12, 7])
def test_every_value_round_trips_exactly(awkward, budget):
    """All 4 tasks (M' = number of tasks); the whole dataset, then part of it."""
    d, _, _ = awkward
    lines = mixture(d, d / "emb", 4, budget, f"all{budget}")
    assert len(lines) == budget and len({x["row"] for x in lines}) == budget
    for x in lines:
        src = AWKWARD[x["row"]]
        assert (x["prompt"], x["response"], x["task"]) == (src["inputs"], src["targets"], src["task_name"])
    if budget == len(AWKWARD):
        assert sorted(x["row"] for x in lines) == list(range(len(AWKWARD)))
        assert next(x for x in lines if x["row"] == 0)["response"] is None  # null stays null
        assert next(x for x in lines if x["row"] == 2)["prompt"] is None
        assert any(x["task"] == "single" for x in lines)


def test_raw_bytes_are_plain_utf8(awkward):
    d, _, _ = awkward
    mixture(d, d / "emb", 4, 12, "bytes")
    text = (d / "bytes.jsonl").read_bytes().decode("utf-8")
    assert "👋🏽" in text and "مرحبا" in text and "你好" in text  # not \\u-escaped
    assert len(text.splitlines()) == 12  # newlines inside values stay escaped


def test_integers_and_no_template_column(tmp_path):
    rows = [{"inputs": i * 7, "targets": -i, "task_name": i % 3} for i in range(9)]
    path = tmp_path / "ints.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    invoke("embed", path, "--out", tmp_path / "emb", "--template-column", "")
    lines = mixture(tmp_path, tmp_path / "emb", 3, 9, "ints")
    for x in lines:
        src = rows[x["row"]]
        assert x["prompt"] == src["inputs"] and x["response"] == src["targets"]  # integers, not strings
        assert isinstance(x["prompt"], int) and x["task"] == str(src["task_name"])
