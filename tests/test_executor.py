"""The executor seam: where work runs never changes what a stage writes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smart_cli import artifacts
from smart_cli.executor import InProcess, ProcessPool, for_workers


@dataclass(frozen=True)
class Offset:
    """A picklable setup: every worker builds the same context from it."""

    value: int

    def __call__(self) -> dict:
        return {"offset": self.value}


def add_square(ctx: dict, item: int) -> tuple[int, int]:
    return item, item * item + ctx["offset"]


@pytest.mark.parametrize("executor", [InProcess(), ProcessPool(2)], ids=["in-process", "pool"])
def test_results_come_back_in_plan_order(executor):
    items = list(range(7))
    seen: list[int] = []
    out = executor.map(add_square, items, Offset(5), order=items[::-1], done=lambda i, r: seen.append(i))
    assert out == [(i, i * i + 5) for i in items]
    assert sorted(seen) == items
    assert list(executor.imap(add_square, items, Offset(1))) == [(i, i * i + 1) for i in items]


def test_in_process_uses_a_context_already_built():
    out = InProcess().map(add_square, [2], Offset(0), local={"offset": 100})
    assert out == [(2, 104)]


def test_for_workers_chooses_the_executor():
    assert isinstance(for_workers(1), InProcess)
    pool = for_workers(3)
    assert isinstance(pool, ProcessPool) and pool.workers == 3
    with pytest.raises(ValueError):
        ProcessPool(0)


def fail_on_three(ctx: dict, item: int) -> int:
    if item == 3:
        raise RuntimeError("item 3 is bad")
    return item


def test_a_worker_error_reaches_the_caller():
    with pytest.raises(RuntimeError, match="item 3 is bad"):
        ProcessPool(2).map(fail_on_three, list(range(6)), Offset(0))


def test_embed_in_a_process_pool_writes_the_same_bytes(tiny_dataset, tiny_emb, tmp_path):
    """embed's shards through two worker processes (each loading the model once) give the same EMB_DIR."""
    from smart_cli.embed import EmbedConfig, embed

    out = tmp_path / "emb"
    embed(tiny_dataset, out, EmbedConfig(shard_rows=32), executor=ProcessPool(2))
    for name in (artifacts.EMBEDDINGS, artifacts.ROWS, artifacts.META):
        assert (out / name).read_bytes() == (Path(tiny_emb) / name).read_bytes(), name


@dataclass
class Recorder:
    """A reporter that keeps what it was told."""

    lines: list = field(default_factory=list)

    def log(self, message: str, style: str | None = None) -> None:
        self.lines.append(("log", message))

    def step(self, label: str, detail: str) -> None:
        self.lines.append(("step", label))

    def warn(self, message: str) -> None:
        self.lines.append(("warn", message))

    def table(self, title, columns, rows) -> None:
        self.lines.append(("table", title, len(rows)))

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None):
        done = []
        yield done.append
        self.lines.append(("progress", description, total, sum(done)))


def test_progress_and_tables_reach_the_injected_reporter(tiny_emb, tmp_path, capfd):
    from smart_cli import select_samples, select_tasks

    rec = Recorder()
    tasks, samples = tmp_path / "t.json", tmp_path / "s.parquet"
    cfg = select_tasks.TaskConfig(num_tasks=3, budget=12, no_cache=True)  # the task means are computed
    summary = select_tasks.run(tiny_emb, tasks, cfg, reporter=rec)
    assert summary.tasks == 3 and summary.as_json()["command"] == "select-tasks"
    assert ("table", "3 tasks, 12 rows (gc)", 3) in rec.lines
    assert ("progress", "task means", 81, 81) in rec.lines
    inputs = select_samples.SampleInputs(tiny_emb, tasks)
    select_samples.run(inputs, samples, select_samples.SampleConfig(), reporter=rec)
    assert ("progress", "selecting rows (fl)", 12, 12) in rec.lines
    # Without a reporter the library is silent: nothing on stdout or stderr.
    capfd.readouterr()
    select_tasks.run(tiny_emb, tmp_path / "t2.json", select_tasks.TaskConfig(num_tasks=3, budget=12))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert (tmp_path / "t2.json").read_bytes() == tasks.read_bytes()
