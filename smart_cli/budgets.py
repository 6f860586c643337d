"""Budget arithmetic of SMART: pure functions, no I/O.

Every function here follows the reference semantics in ``SMART_SPEC.md`` exactly; the golden
tests in ``tests/test_budgets.py`` pin them on hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: FLAN 2022 template types, in the order the reference walks them.
FLAN_TEMPLATES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")


def taylor_softmax(gains: Sequence[float], temperature: float = 1.0) -> np.ndarray:
    """Second-order Taylor softmax: p_j = (1 + g + g^2/2) / sum_k (1 + g_k + g_k^2/2), g = gain/T.

    The numerator is never below 1/2, so every selected task keeps a positive weight.
    """
    g = np.asarray(gains, dtype=np.float64) / temperature
    if g.size == 0:
        return g
    numer = 1.0 + g + g * g / 2.0
    return numer / numer.sum()


def budget_split(budget: int, ratio: Sequence[float]) -> list[int]:
    """Split ``budget`` into integer parts proportional to ``ratio``.

    Each part is floor(budget * r / sum(ratio)); the remainder goes +1 at a time to the parts in
    order, from the first (the reference's "greedy order").
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if len(ratio) == 0:
        if budget:
            raise ValueError("cannot split a positive budget into zero parts")
        return []
    total = float(sum(ratio))
    if total <= 0:
        raise ValueError("ratios must sum to a positive number")
    parts = [math.floor(budget * r / total) for r in ratio]
    remainder = budget - sum(parts)
    for i in range(remainder):
        parts[i % len(parts)] += 1
    return parts


def cap_budgets(budgets: Sequence[int], sizes: Sequence[int]) -> list[int]:
    """Cap each budget at its task size and hand the excess out round-robin in greedy order.

    Each round gives +1 to every task (in order) that still has room, until nothing is left. The
    caller must make sure ``sum(sizes) >= sum(budgets)``.
    """
    if len(budgets) != len(sizes):
        raise ValueError("budgets and sizes must have the same length")
    capped = [min(b, s) for b, s in zip(budgets, sizes)]
    excess = sum(budgets) - sum(capped)
    if excess > sum(sizes) - sum(capped):
        raise ValueError("the tasks hold fewer rows than the budget")
    while excess > 0:
        room = [i for i, (b, s) in enumerate(zip(capped, sizes)) if b < s]
        # A whole round at once when every task with room can take one more: same result as
        # walking +1 by +1, without a Python loop per unit on big budgets.
        rounds = min(excess // len(room), min(sizes[i] - capped[i] for i in room))
        if rounds > 0:
            for i in room:
                capped[i] += rounds
            excess -= rounds * len(room)
            continue
        for i in room:
            if excess == 0:
                break
            capped[i] += 1
            excess -= 1
    return capped


def task_budgets(gains: Sequence[float], sizes: Sequence[int], budget: int) -> tuple[np.ndarray, list[int]]:
    """Weights (Taylor softmax of the raw gains) and capped integer budgets of the selected tasks."""
    weights = taylor_softmax(gains)
    raw = budget_split(budget, weights.tolist())
    return weights, cap_budgets(raw, sizes)


def template_split(budget: int, counts: dict[str | None, int]) -> dict[str | None, int]:
    """Split one task's budget across its template types in proportion to their row counts.

    FLAN template types follow the reference: zero-shot vs few-shot first (when the task has
    few-shot rows), then each half opt vs no-opt. Other template values (or none) are split by
    counts in one step, in sorted order. Zero-sized parts are skipped.
    """
    present = {t: n for t, n in counts.items() if n > 0}
    if budget > sum(present.values()):
        raise ValueError(f"budget {budget} exceeds the task's {sum(present.values())} rows")
    if not present:
        return {}
    if set(present) <= set(FLAN_TEMPLATES):
        zs = [t for t in FLAN_TEMPLATES[:2] if t in present]
        fs = [t for t in FLAN_TEMPLATES[2:] if t in present]
        halves = [h for h in (zs, fs) if h]
        half_budgets = _split_present(budget, [sum(present[t] for t in h) for h in halves])
        out: dict[str | None, int] = {}
        for half, b in zip(halves, half_budgets):
            out.update(zip(half, _split_present(b, [present[t] for t in half])))
        return out
    keys = sorted(present, key=lambda t: (t is None, t or ""))
    return dict(zip(keys, _split_present(budget, [present[t] for t in keys])))


def _split_present(budget: int, counts: list[int]) -> list[int]:
    return [budget] if len(counts) == 1 else budget_split(budget, counts)
