"""The kernel-free dense engine: the kernel engine's picks and gains, bit for bit, without the kernel."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import clustered, write_emb_dir

from smart_cli import dense_free, dense_greedy, select_samples, similarity
from smart_cli.select_samples import SampleConfig
from smart_cli.select_tasks import TaskConfig, select_tasks
from smart_cli.submodular import Objective, lazy_greedy, maximize


@pytest.mark.parametrize(
    ("n", "budget", "function"),
    [(1, 1, "fl"), (40, 40, "fl"), (300, 30, "fl"), (700, 90, "fl"), (300, 30, "gc"), (700, 700, "gc")],
)
def test_same_picks_and_gains_as_the_kernel_engine(n: int, budget: int, function: str) -> None:
    rows = clustered(n, 24, np.random.default_rng(n)).astype(np.float32)
    lam = 0.4 if function == "gc" else None
    expect = dense_greedy.lazy_greedy(similarity.gram(rows), budget, function, lam)
    got = dense_free.lazy_greedy(rows, budget, function, lam)
    assert np.array_equal(got[0], expect[0])
    assert np.array_equal(got[1], expect[1])  # bit for bit, not to a tolerance


def test_same_picks_as_submodlib_on_the_same_kernel() -> None:
    rows = clustered(400, 16, np.random.default_rng(9)).astype(np.float32)
    for objective in (Objective.of("fl"), Objective.of("gc")):
        ref_picks, ref_gains = lazy_greedy(similarity.gram(rows), 40, objective, backend="submodlib")
        picks, gains = dense_free.lazy_greedy(rows, 40, objective.name, objective.lambda_)
        assert np.array_equal(picks, ref_picks)
        np.testing.assert_allclose(gains, ref_gains, rtol=1e-6)


def test_a_small_first_pass_block_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = clustered(500, 12, np.random.default_rng(4)).astype(np.float32)
    whole = dense_free.lazy_greedy(rows, 50, "fl")
    monkeypatch.setattr(dense_free, "PASS_ENTRIES", 7 * 500)  # 7 rows per block, a ragged last one
    blocked = dense_free.lazy_greedy(rows, 50, "fl")
    assert np.array_equal(whole[0], blocked[0]) and np.array_equal(whole[1], blocked[1])


def test_maximize_runs_without_the_kernel_above_kernel_rows() -> None:
    rows = clustered(300, 16, np.random.default_rng(2)).astype(np.float32)
    rng = np.random.default_rng(0)
    for name in ("fl", "gc", "logdet"):  # logdet has no kernel-free engine: it keeps the kernel
        objective = Objective.of(name)
        with_kernel = maximize(rows, 30, objective, rng)
        without = maximize(rows, 30, objective, rng, kernel_rows=10)
        assert np.array_equal(with_kernel[0], without[0]) and np.array_equal(with_kernel[1], without[1])


def test_select_samples_bytes_do_not_depend_on_the_kernel(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    es = write_emb_dir(tmp_path / "emb", {"alpha": 220, "beta": 130, "gamma": 80})
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=150))
    with_kernel = select_samples.select_samples(es, doc, SampleConfig(no_cache=True))
    monkeypatch.setattr(select_samples, "kernel_rows", lambda *args, **kwargs: 0)
    without = select_samples.select_samples(es, doc, SampleConfig(no_cache=True))
    assert without.equals(with_kernel)
    assert with_kernel.num_rows == 150


def test_refuses_functions_without_an_engine() -> None:
    with pytest.raises(ValueError, match="no kernel-free engine"):
        dense_free.lazy_greedy(np.ones((3, 2), dtype=np.float32), 1, "logdet", 1.0)
