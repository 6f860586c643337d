"""Our lazy greedy wrapper against direct submodlib calls on the same kernels."""

from __future__ import annotations

import numpy as np
import pytest
import submodlib.functions as fns
from sklearn.metrics.pairwise import cosine_similarity

from smart_cli.errors import UsageError
from smart_cli.submodular import Objective, cosine_kernel, lazy_greedy, maximize


def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def direct(name: str, kernel: np.ndarray, budget: int):
    n = kernel.shape[0]
    if name == "fl":
        fn = fns.facilityLocation.FacilityLocationFunction(n=n, mode="dense", sijs=kernel, separate_rep=False)
    elif name == "gc":
        fn = fns.graphCut.GraphCutFunction(n=n, mode="dense", ggsijs=kernel, lambdaVal=0.4, separate_rep=False)
    else:
        fn = fns.logDeterminant.LogDeterminantFunction(n=n, mode="dense", lambdaVal=1, sijs=kernel)
    return fn.maximize(budget=budget, optimizer="LazyGreedy", show_progress=False)


def test_cosine_kernel_matches_sklearn():
    x = np.random.default_rng(1).normal(size=(30, 5))
    np.testing.assert_allclose(cosine_kernel(x), cosine_similarity(x), atol=1e-6)


@pytest.mark.parametrize("name", ["fl", "gc", "logdet"])
@pytest.mark.parametrize("budget", [1, 5, 19])
def test_lazy_greedy_agrees_with_submodlib(name, budget):
    kernel = cosine_kernel(unit_rows(20))
    idx, gains = lazy_greedy(kernel, budget, Objective.of(name))
    ref = direct(name, kernel, budget)
    assert idx.tolist() == [i for i, _ in ref]
    np.testing.assert_allclose(gains, [g for _, g in ref], rtol=1e-6)


@pytest.mark.parametrize("name", ["fl", "gc", "logdet"])
def test_budget_equal_to_n_appends_the_last_element(name):
    kernel = cosine_kernel(unit_rows(12, seed=3))
    idx, gains = lazy_greedy(kernel, 12, Objective.of(name))
    ref = direct(name, kernel, 11)
    assert sorted(idx.tolist()) == list(range(12))
    assert idx[:11].tolist() == [i for i, _ in ref]
    if name == "gc":
        # gain of the last element by the formula f(V) - f(V minus last), diagonal included
        last = idx[-1]
        others = idx[:-1]
        expected = kernel[:, last].sum() - 0.4 * (2 * kernel[last, others].sum() + kernel[last, last])
        assert gains[-1] == pytest.approx(expected, rel=1e-4)


def test_single_element_and_zero_budget():
    kernel = np.ones((1, 1), dtype=np.float32)
    idx, gains = lazy_greedy(kernel, 1, Objective.of("fl"))
    assert idx.tolist() == [0] and gains[0] == pytest.approx(1.0)
    idx, _ = lazy_greedy(kernel, 0, Objective.of("fl"))
    assert idx.size == 0


def test_random_is_seeded_and_distinct():
    emb = unit_rows(50)
    a, ga = maximize(emb, 10, Objective.of("random"), np.random.default_rng(5))
    b, _ = maximize(emb, 10, Objective.of("random"), np.random.default_rng(5))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 10 and (ga == 1).all()


def test_unknown_function():
    with pytest.raises(UsageError, match="unknown function"):
        Objective.of("nope")
