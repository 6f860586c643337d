"""The library stages end to end on tiny data with the real packaged model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from reference import reference_mixture

from smart_cli.artifacts import open_embeddings, write_samples
from smart_cli.errors import DataError, UsageError
from smart_cli.export import ExportConfig, export
from smart_cli.select_samples import SampleConfig, select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks


def test_embeddings_folder_contract(tiny_emb):
    es = open_embeddings(tiny_emb)
    emb = np.load(f"{tiny_emb}/embeddings.npy", allow_pickle=False)
    rows = pq.read_table(f"{tiny_emb}/rows.parquet")
    meta = json.loads(open(f"{tiny_emb}/meta.json").read())
    assert emb.shape == (81, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert rows.column("row").to_pylist() == list(range(81))
    assert meta["rows"] == 81 and meta["dim"] == 384 and meta["text"] == "prompt"
    assert es.task_names[:3] == ["sentiment_0", "sentiment_1", "math_0"]


@pytest.mark.parametrize(("num_tasks", "budget"), [(3, 30), (5, 50), (8, 81), (8, 40)])
def test_agrees_with_independent_reference(tiny_emb, tmp_path, num_tasks, budget):
    es = open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=num_tasks, budget=budget))
    table = select_samples(es, doc, SampleConfig())
    if num_tasks < len(es.task_names):
        tasks, budgets, rows = reference_mixture(tiny_emb, num_tasks, budget)
        assert [t["task"] for t in doc["tasks"]] == tasks
        assert [t["budget"] for t in doc["tasks"]] == budgets
        assert set(table.column("row").to_pylist()) == rows
    assert sum(t["budget"] for t in doc["tasks"]) == budget
    assert table.num_rows == budget
    assert len(set(table.column("row").to_pylist())) == budget


def test_mixture_lines_are_source_rows(tiny_emb, tiny_dataset, tmp_path):
    import pyarrow.parquet as pq

    es = open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=25))
    write_samples(select_samples(es, doc), tmp_path / "s.parquet")
    summary = export(tmp_path / "s.parquet", tmp_path / "m.jsonl")
    source = pq.read_table(tiny_dataset).to_pylist()
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert summary["lines"] == len(lines) == 25
    assert len({x["row"] for x in lines}) == 25
    for x in lines:
        src = source[x["row"]]
        assert (x["prompt"], x["response"], x["task"]) == (src["inputs"], src["targets"], src["task_name"])
    # shuffled, deterministic: a second export is byte-identical, another seed is not
    export(tmp_path / "s.parquet", tmp_path / "m2.jsonl")
    export(tmp_path / "s.parquet", tmp_path / "m3.jsonl", ExportConfig(seed=1))
    assert (tmp_path / "m.jsonl").read_bytes() == (tmp_path / "m2.jsonl").read_bytes()
    assert (tmp_path / "m.jsonl").read_bytes() != (tmp_path / "m3.jsonl").read_bytes()


def test_all_tasks_selected_beyond_library_limit(tiny_emb):
    es = open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=len(es.task_names), budget=60))
    assert sorted(t["task"] for t in doc["tasks"]) == sorted(es.task_names)


@pytest.mark.parametrize("function", ["fl", "logdet", "random"])
def test_other_task_functions(tiny_emb, function):
    es = open_embeddings(tiny_emb)
    # fl picks trivia_1 (1 row) over its near-twin trivia_0 (gains 0.6662148 vs 0.6662148): 24 rows
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=24, function=function))
    assert len(doc["tasks"]) == 4 and sum(t["budget"] for t in doc["tasks"]) == 24


@pytest.mark.parametrize("function", ["gc", "logdet", "random"])
def test_other_sample_functions(tiny_emb, function):
    es = open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=30))
    table = select_samples(es, doc, SampleConfig(function=function))
    assert table.num_rows == 30 and len(set(table.column("row").to_pylist())) == 30


def test_budget_larger_than_selected_tasks_is_refused(tiny_emb):
    es = open_embeddings(tiny_emb)
    with pytest.raises(UsageError, match="at most 36"):  # the two largest tasks: 20 + 16 rows
        select_tasks(es, TaskConfig(num_tasks=2, budget=37))
    with pytest.raises((UsageError, DataError)):
        select_tasks(es, TaskConfig(num_tasks=0, budget=5))
