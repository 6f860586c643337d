"""The demo data generator: deterministic, FLAN-shaped, and scalable."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_demo_data.py"
COLUMNS = ["inputs", "targets", "task_name", "task_source", "template_type"]


def _load_script():
    spec = importlib.util.spec_from_file_location("make_demo_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


demo = _load_script()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return demo.generate(seed=0, scale=1.0).to_pylist()


def test_same_seed_gives_same_table_and_other_seed_differs():
    a, b = demo.generate(seed=0, scale=0.3), demo.generate(seed=0, scale=0.3)
    assert a.equals(b)
    assert not a.equals(demo.generate(seed=1, scale=0.3))


def test_parquet_written_twice_is_byte_identical(tmp_path, capsys):
    for name in ("a", "b"):
        assert demo.main(["--out", str(tmp_path / name), "--seed", "3", "--scale", "0.2"]) == 0
    first, second = (tmp_path / n / "train.parquet" for n in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["train.parquet"]  # no temp file left
    assert pq.read_table(first).column_names == COLUMNS
    summary = capsys.readouterr().err.strip().splitlines()
    assert len(summary) == 2 and "rows" in summary[0] and "tasks" in summary[0]


def test_columns_are_non_empty_strings(rows):
    assert list(rows[0]) == COLUMNS
    for row in rows:
        for col in COLUMNS:
            assert isinstance(row[col], str) and row[col].strip(), (col, row)


def test_shape_is_flan_like(rows):
    sizes = Counter(r["task_name"] for r in rows)
    assert 7000 <= len(rows) <= 9000
    assert len(sizes) >= 40
    assert {r["task_source"] for r in rows} == {"flan2021", "t0", "niv2", "cot", "dialog"}
    assert {r["template_type"] for r in rows} == {"zs_opt", "zs_noopt", "fs_opt", "fs_noopt"}
    assert min(sizes.values()) < 50 and max(sizes.values()) > 1000
    # Each task has exactly one source, and rows come grouped by source, then by task.
    keys = [(r["task_source"], r["task_name"]) for r in rows]
    runs = [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    assert len(runs) == len(sizes)
    assert [s for s, _ in runs] == sorted((s for s, _ in runs), key=demo.SOURCES.index)


def test_option_and_few_shot_formats(rows):
    for row in rows:
        has_options = "options:" in row["inputs"].lower()
        assert has_options == row["template_type"].endswith("_opt"), row
        if row["template_type"].startswith("fs"):
            assert "\n\n" in row["inputs"], row


def test_some_prompts_are_exact_duplicates(rows):
    counts = Counter((r["task_name"], r["inputs"]) for r in rows)
    dup_rows = sum(c - 1 for c in counts.values())
    tasks_with_dups = {task for (task, _), c in counts.items() if c > 1}
    assert 0.01 * len(rows) < dup_rows < 0.15 * len(rows)
    assert len(tasks_with_dups) >= 5


def test_scale_shrinks_every_task_but_keeps_them_all(rows):
    small = demo.generate(seed=0, scale=0.02).to_pylist()
    sizes = Counter(r["task_name"] for r in small)
    assert 100 <= len(small) <= 400
    assert set(sizes) == {r["task_name"] for r in rows}
    assert min(sizes.values()) >= 2


def test_families_cover_every_task(rows):
    families = demo.task_families()
    assert set(families) == {r["task_name"] for r in rows}
    assert len(set(families.values())) >= 10
