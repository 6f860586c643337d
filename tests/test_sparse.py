"""Sparse (kNN-graph) greedy: agreement with submodlib's dense functions and with a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from submodlib import FacilityLocationFunction, GraphCutFunction

from smart_cli.sparse import facility_location_value, knn_graph, sparse_greedy


def unit_rows(n: int, d: int, seed: int, *, positive: bool = False) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    if positive:
        x = np.abs(x)  # all similarities >= 0: graph cut is then submodular, lazy greedy exact
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered_rows(n: int, d: int, centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((centres, d)).astype(np.float32)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    noise = rng.standard_normal((n, d)).astype(np.float32) * np.float32(0.8 / np.sqrt(d))
    x = mean[rng.integers(0, centres, n)] + noise
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def dense_greedy(kernel: np.ndarray, budget: int, function: str) -> tuple[np.ndarray, np.ndarray]:
    n = kernel.shape[0]
    if function == "fl":
        fn = FacilityLocationFunction(n=n, mode="dense", sijs=kernel, separate_rep=False)
    else:
        fn = GraphCutFunction(n=n, mode="dense", lambdaVal=0.4, ggsijs=kernel, separate_rep=False)
    out = fn.maximize(budget=budget, optimizer="LazyGreedy", show_progress=False)
    return np.array([i for i, _ in out]), np.array([g for _, g in out])


def reference_greedy(emb: np.ndarray, k: int, budget: int, function: str, lam: float = 0.4) -> tuple[list, list]:
    """Naive greedy on the kNN graph straight from the definitions (ties to the lower index)."""
    n = emb.shape[0]
    sims = emb.astype(np.float64) @ emb.T.astype(np.float64)
    nbrs = [set(np.argsort(-sims[i], kind="stable")[:k].tolist()) for i in range(n)]
    edge = np.zeros((n, n), dtype=bool)  # edge[i, j]: j in N(i)
    for i, row in enumerate(nbrs):
        edge[i, list(row)] = True
    sym = edge | edge.T

    def value(picked: list[int]) -> float:
        if not picked:
            return 0.0
        if function == "fl":
            masked = np.where(edge[:, picked], sims[:, picked], -np.inf)
            return float(np.maximum(masked.max(axis=1), 0.0).sum())
        cut = np.where(sym[:, picked], sims[:, picked], 0.0).sum()
        inner = np.where(sym[np.ix_(picked, picked)], sims[np.ix_(picked, picked)], 0.0).sum()
        return float(cut - lam * inner)

    picked: list[int] = []
    gains: list[float] = []
    for _ in range(budget):
        base = value(picked)
        scores = [(value(picked + [j]) - base, j) for j in range(n) if j not in picked]
        best = max(scores, key=lambda t: (t[0], -t[1]))
        picked.append(best[1])
        gains.append(best[0])
    return picked, gains


def test_exact_knn_matches_brute_force() -> None:
    emb = unit_rows(300, 24, seed=1)
    ids, sims = knn_graph(emb, 7)
    assert ids.shape == sims.shape == (300, 7)
    full = emb @ emb.T
    expect = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids, expect)
    np.testing.assert_allclose(sims, np.take_along_axis(full, expect, axis=1), atol=1e-5)
    np.testing.assert_array_equal(ids[:, 0], np.arange(300))


@pytest.mark.parametrize("exact_max_rows", [0, 10_000])
def test_knn_rows_hold_themselves_even_with_duplicates(exact_max_rows: int) -> None:
    emb = np.repeat(unit_rows(40, 8, seed=2), 5, axis=0)  # every row has four exact copies
    ids, sims = knn_graph(emb, 3, exact_max_rows=exact_max_rows)
    assert (ids == np.arange(200)[:, None]).any(axis=1).all()
    np.testing.assert_allclose(sims, 1.0, atol=1e-5)


def test_approximate_knn_is_deterministic_and_accurate() -> None:
    emb = clustered_rows(3000, 32, centres=30, seed=3)
    ids, sims = knn_graph(emb, 10, exact_max_rows=0, seed=5)
    again = knn_graph(emb, 10, exact_max_rows=0, seed=5)
    np.testing.assert_array_equal(ids, again[0])
    np.testing.assert_array_equal(sims, again[1])
    exact, _ = knn_graph(emb, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact.tolist())])
    assert recall > 0.95
    assert (ids == np.arange(3000)[:, None]).any(axis=1).all()


def test_knn_k_larger_than_n_and_float16() -> None:
    emb = unit_rows(5, 4, seed=4).astype(np.float16)
    ids, sims = knn_graph(emb, 50)
    assert ids.shape == (5, 5) and sims.dtype == np.float32
    assert sorted(ids[2].tolist()) == list(range(5))


@pytest.mark.parametrize("positive", [False, True])
def test_fl_with_complete_graph_equals_submodlib_dense(positive: bool) -> None:
    emb = unit_rows(150, 12, seed=5, positive=positive)
    picks, gains = sparse_greedy(emb, 40, k=150)
    kernel = emb @ emb.T
    expect_picks, expect_gains = dense_greedy(kernel, 40, "fl")
    assert_same_greedy_order(picks, expect_picks, kernel)
    np.testing.assert_allclose(gains, expect_gains, rtol=1e-5, atol=1e-5)


def assert_same_greedy_order(picks: np.ndarray, expect: np.ndarray, kernel: np.ndarray, tol: float = 1e-5) -> None:
    """The same picks in the same order, up to an exact tie in float noise.

    faiss and numpy compute the similarities with different kernels (AVX2 or AVX-512), so two
    rows whose facility-location gains are equal to ~1e-7 may come out in either order. Where the
    orders first part, both rows must have the same gain given the common prefix; after that
    the orders may legitimately differ.
    """
    differ = np.flatnonzero(np.asarray(picks) != np.asarray(expect))
    if len(differ) == 0:
        return
    i = int(differ[0])
    best = kernel[:, picks[:i]].max(axis=1) if i else np.zeros(kernel.shape[0])

    def gain(j: int) -> float:
        return float(np.maximum(kernel[:, j] - np.maximum(best, 0), 0).sum())

    assert abs(gain(int(picks[i])) - gain(int(expect[i]))) < tol, (i, picks[i], expect[i])


@pytest.mark.parametrize("positive", [False, True])
def test_gc_with_complete_graph_equals_submodlib_dense(positive: bool) -> None:
    emb = unit_rows(150, 12, seed=6, positive=positive)
    picks, gains = sparse_greedy(emb, 40, function="gc", lambda_=0.4, k=150)
    expect_picks, expect_gains = dense_greedy(emb @ emb.T, 40, "gc")
    np.testing.assert_array_equal(picks, expect_picks)
    np.testing.assert_allclose(gains, expect_gains, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("function", ["fl", "gc"])
def test_sparse_graph_greedy_equals_naive_reference(function: str) -> None:
    emb = unit_rows(60, 6, seed=7, positive=True)
    picks, gains = sparse_greedy(emb, 15, function=function, k=5)
    expect_picks, expect_gains = reference_greedy(emb, 5, 15, function)
    assert picks.tolist() == expect_picks
    np.testing.assert_allclose(gains, expect_gains, atol=1e-5)


def test_facility_location_value_matches_numpy() -> None:
    emb = unit_rows(500, 10, seed=8)
    chosen = np.array([3, 70, 71, 400, 2])
    expect = np.maximum((emb @ emb[chosen].T).max(axis=1), 0).sum()
    assert facility_location_value(emb, chosen, block=64) == pytest.approx(float(expect), rel=1e-6)
    assert facility_location_value(emb, np.array([], dtype=np.int64)) == 0.0


@pytest.mark.parametrize("optimizer", ["lazy", "stochastic"])
@pytest.mark.parametrize("function", ["fl", "gc"])
def test_edge_budgets(optimizer: str, function: str) -> None:
    emb = unit_rows(80, 8, seed=9)
    picks, gains = sparse_greedy(emb, 0, function=function, optimizer=optimizer)
    assert picks.shape == gains.shape == (0,) and picks.dtype == np.int64 and gains.dtype == np.float64
    picks, gains = sparse_greedy(emb, 80, function=function, optimizer=optimizer, k=6)
    assert sorted(picks.tolist()) == list(range(80)) and gains.shape == (80,)
    one, one_gain = sparse_greedy(emb[:1], 1, function=function, optimizer=optimizer)
    assert one.tolist() == [0] and np.isfinite(one_gain).all()


def test_full_order_extends_submodlib_prefix() -> None:
    emb = unit_rows(30, 5, seed=10)
    picks, _ = sparse_greedy(emb, 30, k=30)
    expect, _ = dense_greedy(emb @ emb.T, 29, "fl")
    np.testing.assert_array_equal(picks[:29], expect)


@pytest.mark.parametrize("optimizer", ["lazy", "stochastic"])
def test_deterministic_and_without_duplicates(optimizer: str) -> None:
    emb = clustered_rows(2000, 16, centres=20, seed=11)
    first = sparse_greedy(emb, 300, k=10, optimizer=optimizer, seed=3, exact_max_rows=500)
    second = sparse_greedy(emb, 300, k=10, optimizer=optimizer, seed=3, exact_max_rows=500)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert np.unique(first[0]).size == 300
    if optimizer == "lazy":  # facility location is submodular: lazy greedy's gains never grow
        assert np.all(np.diff(first[1]) <= 1e-9)


def test_prefixes_are_nested() -> None:
    emb = clustered_rows(500, 16, centres=10, seed=12)
    short, _ = sparse_greedy(emb, 20, k=10)
    long, _ = sparse_greedy(emb, 120, k=10)
    np.testing.assert_array_equal(long[:20], short)


def test_sparse_fl_value_close_to_dense_on_clustered_data() -> None:
    emb = clustered_rows(1500, 32, centres=25, seed=13)
    picks, _ = sparse_greedy(emb, 150, k=10)
    dense_picks, _ = dense_greedy(emb @ emb.T, 150, "fl")
    assert facility_location_value(emb, picks) >= 0.98 * facility_location_value(emb, dense_picks)


@pytest.mark.parametrize("exact_max_rows", [0, 10_000])
def test_progress_counts_rows_then_picks(exact_max_rows: int) -> None:
    emb = unit_rows(120, 8, seed=14)
    seen: list[int] = []
    sparse_greedy(emb, 30, k=5, exact_max_rows=exact_max_rows, progress=seen.append)
    assert sum(seen) == 120 + 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 11}, "budget"),
        ({"budget": -1}, "budget"),
        ({"budget": 2, "function": "logdet"}, "function"),
        ({"budget": 2, "optimizer": "naive"}, "optimizer"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sparse_greedy(unit_rows(10, 4, seed=15), **kwargs)
