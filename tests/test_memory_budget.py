"""``--max-memory``: the kernels' size and the groups running at once stay inside one budget."""

from __future__ import annotations

import json
import time

import pytest
from helpers import write_emb_dir

from smart_cli.dense_limit import PROCESS_BYTES, group_bytes, kernel_rows, parse_size
from smart_cli.executor import ProcessPool
from smart_cli.select_samples import GroupJob, SampleConfig, select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks
from smart_cli.submodular import Objective


@pytest.mark.parametrize(
    ("text", "size"), [("8G", 8 << 30), ("512M", 512 << 20), ("1.5G", 3 << 29), ("8GiB", 8 << 30), (1 << 21, 1 << 21)]
)
def test_sizes_read_as_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "12Q", "-1G", "nanG", "100", True])
def test_what_is_not_a_size_is_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_the_budget_sets_the_default_dense_limit():
    small = SampleConfig(max_memory="64M", workers=2)  # a 64 MiB budget for two workers
    assert small.dense_limit("logdet") == kernel_rows("logdet", 64 << 20) < small.dense_limit("fl") < 3_000
    assert SampleConfig(max_memory="24G").dense_limit("fl") == 51_000 < kernel_rows("fl", 24 << 30)
    assert SampleConfig(max_memory="16G").dense_limit("fl") == 46_000 == kernel_rows("fl", 16 << 30)
    assert SampleConfig(max_memory="16G", max_dense_rows=50_000).dense_limit("fl") == 50_000  # given: kept


def nap(ctx, item: float) -> tuple[float, float]:
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    time.sleep(item)
    return start, time.monotonic()


def _overlap(spans: list[tuple[float, float]]) -> bool:
    spans = sorted(spans)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def _context() -> dict:
    return {}


def test_items_that_do_not_fit_together_run_one_at_a_time():
    items = [0.4] * 4
    free = ProcessPool(2).map(nap, items, _context, weights=[1 << 30] * 4)
    assert _overlap(free)  # no budget: two at once
    tight = ProcessPool(2, memory=(3 << 29)).map(nap, items, _context, weights=[1 << 30] * 4)
    assert not _overlap(tight)  # 1.5 GiB holds one 1 GiB item at a time
    roomy = ProcessPool(2, memory=(2 << 30)).map(nap, items, _context, weights=[1 << 30] * 4)
    assert _overlap(roomy)


def test_group_estimates_hold_the_process_and_a_kernel_only_where_one_is_built():
    job = GroupJob(Objective.of("fl"), SampleConfig(), 60_000)
    small, big = group_bytes(10_000, 384, "dense", job), group_bytes(60_000, 384, "dense", job)
    assert small >= PROCESS_BYTES + 4 * 10_000**2  # the kernel of a group that fits one
    assert group_bytes(50_000, 384, "dense", job) >= PROCESS_BYTES + 4 * 50_000**2
    assert big < PROCESS_BYTES + 4 * 60_000**2 // 10  # no kernel past the kernel limit (51,000 rows)
    logdet = GroupJob(Objective.of("logdet"), SampleConfig(), 18_000)
    assert group_bytes(10_000, 384, "dense", logdet) > small


def test_a_budget_changes_no_byte_once_the_routing_is_pinned(tmp_path):
    es = write_emb_dir(tmp_path / "emb", {"alpha": 200, "beta": 120, "gamma": 60})
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=120))
    plain = select_samples(es, doc, SampleConfig(no_cache=True, max_dense_rows=1000))
    # 1 MiB: every kernel too large to build (kernel-free), every group alone
    tight = select_samples(es, doc, SampleConfig(no_cache=True, max_dense_rows=1000, max_memory="1M", workers=2))
    assert tight.equals(plain)
    # unpinned, the budget sets the default --max-dense-rows, so the routing follows it (recorded)
    routed = select_samples(es, doc, SampleConfig(no_cache=True, max_memory="1M"))
    assert json.loads(routed.schema.metadata[b"smart_cli"])["max_dense_rows"] == 0
