"""Golden tests of the spec's budget formulas on hand-computed cases, plus property tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_cli.budgets import budget_split, cap_budgets, task_budgets, taylor_softmax, template_split


def test_taylor_softmax_golden():
    # (1 + g + g^2/2): g=0 -> 1, g=1 -> 2.5, g=-1 -> 0.5
    np.testing.assert_allclose(taylor_softmax([0.0, 1.0, -1.0]), [1 / 4, 2.5 / 4, 0.5 / 4])


def test_taylor_softmax_temperature():
    np.testing.assert_allclose(taylor_softmax([2.0, 0.0], temperature=2.0), [2.5 / 3.5, 1 / 3.5])


@pytest.mark.parametrize(
    ("budget", "ratio", "expected"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (7, [0.5, 0.3, 0.2], [4, 2, 1]),
        (5, [3, 3], [3, 2]),
        (0, [1, 2], [0, 0]),
        (4, [5, 5], [2, 2]),
        (3, [10], [3]),
    ],
)
def test_budget_split_golden(budget, ratio, expected):
    assert budget_split(budget, ratio) == expected


@pytest.mark.parametrize(
    ("budgets", "sizes", "expected"),
    [
        ([10, 5, 1], [4, 6, 10], [4, 6, 6]),
        ([9, 0, 0], [3, 2, 10], [3, 2, 4]),
        ([2, 2], [5, 5], [2, 2]),
        ([6, 6, 6], [2, 10, 10], [2, 8, 8]),
        ([7, 0, 0, 0], [1, 2, 2, 9], [1, 2, 2, 2]),
    ],
)
def test_cap_budgets_golden(budgets, sizes, expected):
    assert cap_budgets(budgets, sizes) == expected


def test_cap_refuses_too_little_room():
    with pytest.raises(ValueError):
        cap_budgets([5, 5], [3, 3])


@pytest.mark.parametrize(
    ("budget", "counts", "expected"),
    [
        # zs 40 vs fs 60 -> 4/6; zs 30:10 -> 3/1; fs 40:20 -> 4/2
        (
            10,
            {"zs_opt": 30, "zs_noopt": 10, "fs_opt": 40, "fs_noopt": 20},
            {"zs_opt": 3, "zs_noopt": 1, "fs_opt": 4, "fs_noopt": 2},
        ),
        (5, {"zs_opt": 3, "zs_noopt": 3}, {"zs_opt": 3, "zs_noopt": 2}),
        (3, {"fs_noopt": 10}, {"fs_noopt": 3}),
        (4, {"zs_opt": 0, "zs_noopt": 5, "fs_opt": 5}, {"zs_noopt": 2, "fs_opt": 2}),
        (7, {"zs_opt": 2, "fs_opt": 5, "fs_noopt": 5}, {"zs_opt": 2, "fs_opt": 3, "fs_noopt": 2}),
        (3, {None: 7}, {None: 3}),
        (5, {"a": 5, "b": 5}, {"a": 3, "b": 2}),
    ],
)
def test_template_split_golden(budget, counts, expected):
    assert template_split(budget, counts) == expected


def reference_budgets(gains, sizes, total):
    """The spec's procedure written out step by step, one unit at a time."""
    numer = [1 + g + g * g / 2 for g in gains]
    p = [x / sum(numer) for x in numer]
    parts = [math.floor(total * x / sum(p)) for x in p]
    for i in range(total - sum(parts)):
        parts[i % len(parts)] += 1
    excess = 0
    for i, s in enumerate(sizes):
        if parts[i] > s:
            excess += parts[i] - s
            parts[i] = s
    while excess > 0:
        for i, s in enumerate(sizes):
            if parts[i] < s:
                parts[i] += 1
                excess -= 1
                if excess == 0:
                    break
    return parts


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-3, 50, allow_nan=False), st.integers(1, 400)), min_size=1, max_size=25),
    st.integers(1, 10_000),
)
def test_task_budgets_properties(tasks, budget):
    gains = [g for g, _ in tasks]
    sizes = [s for _, s in tasks]
    budget = min(budget, sum(sizes))
    weights, out = task_budgets(gains, sizes, budget)
    assert sum(out) == budget
    assert all(0 <= b <= s for b, s in zip(out, sizes))
    assert out == reference_budgets(gains, sizes, budget)
    assert math.isclose(weights.sum(), 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=4, max_size=4), st.data())
def test_template_split_properties(counts, data):
    named = dict(zip(["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"], counts))
    if sum(counts) == 0:
        return
    budget = data.draw(st.integers(0, sum(counts)))
    out = template_split(budget, named)
    assert sum(out.values()) == budget
    assert all(0 <= out[t] <= named[t] for t in out)


def reference_template_split(budget, counts):
    """The spec's stage-2 split written out: zero- vs few-shot by counts, then opt vs no-opt by counts."""

    def split(total, named):
        named = [(name, c) for name, c in named if c > 0]
        if len(named) == 1:
            return {named[0][0]: total}
        parts = [math.floor(total * c / sum(c for _, c in named)) for _, c in named]
        for i in range(total - sum(parts)):
            parts[i % len(parts)] += 1
        return {name: p for (name, _), p in zip(named, parts)}

    zs = [("zs_opt", counts["zs_opt"]), ("zs_noopt", counts["zs_noopt"])]
    fs = [("fs_opt", counts["fs_opt"]), ("fs_noopt", counts["fs_noopt"])]
    if sum(c for _, c in fs) == 0:
        return split(budget, zs)
    halves = split(budget, [("zs", sum(c for _, c in zs)), ("fs", sum(c for _, c in fs))])
    out = {}
    for half, named in (("zs", zs), ("fs", fs)):
        if half in halves:
            out.update(split(halves[half], named))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=4, max_size=4), st.data())
def test_template_split_agrees_with_reference(counts, data):
    named = dict(zip(["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"], counts))
    if sum(counts) == 0:
        return
    budget = data.draw(st.integers(0, sum(counts)))
    assert template_split(budget, named) == reference_template_split(budget, named)
