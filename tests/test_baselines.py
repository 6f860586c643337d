"""The paper's baselines: examples-proportional and equal mixing, random rows inside tasks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smart_cli import artifacts
from smart_cli.baselines import (
    equal_budgets,
    limits,
    order_by_size,
    parse_cap,
    proportional_budgets,
    source_key,
)
from smart_cli.cli import app
from smart_cli.errors import UsageError
from smart_cli.select_samples import SampleConfig, select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks


@pytest.mark.parametrize(
    ("budget", "lims", "expected"),
    [
        (10, [5, 5, 5], [4, 3, 3]),
        (10, [1, 10, 10], [1, 5, 4]),
        (9, [2, 2, 10, 10], [2, 2, 3, 2]),  # level 2 everywhere, +1 to the first task with room
        (12, [1, 2, 100], [1, 2, 9]),
        (3, [4, 4, 4, 4, 4], [1, 1, 1, 0, 0]),
        (6, [2, 4], [2, 4]),
    ],
)
def test_equal_budgets_golden(budget, lims, expected):
    assert equal_budgets(budget, lims) == expected


@pytest.mark.parametrize(
    ("budget", "lims", "expected"),
    [
        (10, [50, 30, 20], [5, 3, 2]),
        (7, [4, 2, 1], [4, 2, 1]),
        (5, [10, 10, 1], [3, 2, 0]),
    ],
)
def test_proportional_budgets_golden(budget, lims, expected):
    assert proportional_budgets(budget, lims) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=25), st.data())
def test_baseline_budgets_properties(lims, data):
    budget = data.draw(st.integers(0, sum(lims)))
    for split in (equal_budgets, proportional_budgets):
        b = split(budget, lims)
        assert sum(b) == budget
        assert all(0 <= x <= cap for x, cap in zip(b, lims))
    b = equal_budgets(budget, lims)
    with_room = [x for x, cap in zip(b, lims) if x < cap]
    if with_room:  # tasks that could take more are within one of each other, and no full task exceeds them
        assert max(with_room) - min(with_room) <= 1
        assert max(b) <= max(with_room) + 1


def test_budget_beyond_room_is_refused():
    for split in (equal_budgets, proportional_budgets):
        with pytest.raises(UsageError, match="at most 6 rows"):
            split(7, [2, 4])


@pytest.mark.parametrize(
    ("name", "key"),
    [("Flan2021", "flan2021"), ("flan2021_submix_original", "flan2021"), ("T0", "t0"), ("NIv2", "niv2"),
     ("CoT", "cot"), ("Dialog", "dialog"), ("niv2_submix_original", "niv2"), ("other", None), (None, None)],
)  # fmt: skip
def test_source_key(name, key):
    assert source_key(name) == key


def test_caps():
    assert parse_cap("flan2022") == "flan2022" and parse_cap("300") == 300 and parse_cap(None) is None
    with pytest.raises(UsageError):
        parse_cap("lots")
    with pytest.raises(UsageError):
        parse_cap(0)
    assert limits([10, 3], None, 5) == [5, 3]
    sizes = [50_000, 50_000, 50_000, 300_000, 300_000]
    sources = ["Flan2021", "T0", "NIv2", "CoT", "Dialog"]
    assert limits(sizes, sources, "flan2022") == [30_000, 20_000, 5_000, 100_000, 200_000]
    with pytest.raises(UsageError, match="does not know the source"):
        limits([5], ["mystery"], "flan2022")
    with pytest.raises(UsageError, match="with source_column naming"):
        limits([5], None, "flan2022")


def test_order_by_size_is_stable():
    assert order_by_size([3, 5, 3, 5, 1]).tolist() == [1, 3, 0, 2, 4]


@pytest.mark.parametrize("function", ["proportional", "equal"])
def test_baseline_tasks_file(tiny_emb, function):
    es = artifacts.open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=None, budget=40, function=function))
    assert doc["format"] == "smart-cli/tasks" and doc["rows"] == "random" and doc["function"] == function
    assert doc["num_tasks"] == len(es.task_names)
    assert sum(t["budget"] for t in doc["tasks"]) == 40
    assert all({"task", "gain", "weight", "budget", "size"} <= set(t) for t in doc["tasks"])
    assert all(0 < t["budget"] <= t["size"] for t in doc["tasks"])
    sizes = [t["size"] for t in doc["tasks"]]
    assert sizes == sorted(sizes, reverse=True)
    if function == "equal":  # 8 tasks, 40 rows: 5 each, trivia_1 (1 row) and translate_1 (3) give all theirs
        room = [t["budget"] for t in doc["tasks"] if t["budget"] < t["size"]]
        assert max(room) - min(room) <= 1
    # rows inside tasks are random unless select-samples is told otherwise
    table = select_samples(es, doc)
    meta = json.loads(table.schema.metadata[b"smart_cli"])
    assert table.num_rows == 40 and meta["function"] == "random"
    assert meta["task_selection"]["function"] == function
    explicit = select_samples(es, doc, SampleConfig(function="fl"))
    assert json.loads(explicit.schema.metadata[b"smart_cli"])["function"] == "fl"


def test_baseline_num_tasks_takes_the_largest(tiny_emb):
    es = artifacts.open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=30, function="equal"))
    assert [t["task"] for t in doc["tasks"]] == ["math_0", "trivia_0", "sentiment_0"]
    assert [t["budget"] for t in doc["tasks"]] == [10, 10, 10]


def test_baseline_cap(tiny_emb):
    es = artifacts.open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=None, budget=30, function="proportional", cap=5))
    assert sum(t["budget"] for t in doc["tasks"]) == 30 and max(t["budget"] for t in doc["tasks"]) <= 5
    assert doc["cap"] == 5
    with pytest.raises(UsageError, match="at most 28 rows"):  # six tasks capped at 4, and tasks of 3 and 1 rows
        select_tasks(es, TaskConfig(num_tasks=None, budget=35, function="proportional", cap=4))
    flan = select_tasks(es, TaskConfig(num_tasks=None, budget=30, function="proportional", cap="flan2022"))
    assert sum(t["budget"] for t in flan["tasks"]) == 30  # the tiny tasks are far below FLAN's caps


def test_random_task_selection_implies_random_rows(tiny_emb):
    es = artifacts.open_embeddings(tiny_emb)
    assert select_tasks(es, TaskConfig(num_tasks=3, budget=20, function="random"))["rows"] == "random"
    assert "rows" not in select_tasks(es, TaskConfig(num_tasks=3, budget=20))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--function", "gc"], 2, "--num-tasks is required"),
        (["--function", "gc", "-m", "3", "--cap", "5"], 2, "--cap applies to"),
        (["--function", "equal", "--lambda", "0.3"], 2, "--lambda does not apply"),
        (["--function", "equal", "--cap", "x"], 2, "--cap must be"),
    ],
)
def test_cli_baseline_mistakes(tiny_emb, tmp_path, args, code, message):
    out = tmp_path / "t.json"
    r = CliRunner().invoke(app, ["select-tasks", tiny_emb, "--budget", "20", "--out", str(out), *args])
    assert r.exit_code == code, r.output
    assert message in r.output and not out.exists()


def test_cli_proportional_json(tiny_emb, tmp_path):
    out = tmp_path / "t.json"
    r = CliRunner().invoke(
        app, ["--json", "select-tasks", tiny_emb, "--function", "proportional", "--budget", "50", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["command"] == "select-tasks" and summary["budget"] == 50
    assert summary["sha256"] == artifacts.sha256_file(out)
