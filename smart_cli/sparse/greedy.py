"""The sparse path's functions and optimizers: lazy and stochastic greedy over a CSR graph.

Functions, each a marginal gain and a state update on the graph (an :class:`Objective`):

- ``fl`` facility location, f(X) = sum_i max(0, max_{j in X, j in N(i)} s_ij). The gain of j
  only involves the rows that have j among their neighbours (its in-neighbours), so it costs
  O(in-degree) instead of O(n).
- ``gc`` graph cut, f(X) = sum_{i in V, j in X} s_ij - lambda * sum_{i, j in X} s_ij (ordered
  pairs, diagonal included: submodlib's definition), with both sums restricted to the edges of
  the symmetrised graph (i ~ j when either is among the other's neighbours). With k = n both
  functions equal submodlib's dense ones.

Optimizers:

- ``lazy``: max-heap of stale upper bounds, ties to the lower index; only the first ``budget``
  picks are computed. Like submodlib, lazy greedy trusts stale bounds even where graph cut is not
  submodular (negative similarities); with k = n it makes submodlib's picks, save exact ties
  (lower index here).
- ``stochastic``: each step scores a random sample of ceil(n / budget * ln(1 / 0.01)) unpicked
  rows, drawn from a numpy Generator seeded by ``seed``.

Each loop is a numba function built by a factory around one objective's gain and update and
compiled for that pair alone (``_lazy_loops``, ``_stochastic_loop``), so the objective is
chosen once, when the loop is built. The loops run in ~100 chunks, with progress reported
between them.

They live in one module on purpose: numba caches each compiled loop against this file, so an
edit to a gain or an update recompiles the loops built around it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.extending import register_jitable

#: Stochastic greedy's epsilon: each step samples n / budget * ln(1 / eps) candidates.
STOCHASTIC_EPS = 0.01

#: ``(indptr, nbr, wts)`` of the graph the objective walks (``graph.csr_graph``).
Graph = tuple[np.ndarray, np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- objectives


class Objective(NamedTuple):
    """A function to maximise, as the greedy loops see it."""

    #: ``gain(j, ptr, nbr, wts, state, base, lam)``: the marginal gain of row j.
    gain: Callable[..., float]
    #: ``update(j, ptr, nbr, wts, state)``: adds row j to the set ``state`` describes.
    update: Callable[..., None]
    #: Whether the CSR is the undirected graph (else the in-neighbours of the kNN lists).
    symmetric: bool
    #: ``base(ptr, nbr, wts, lam)``: a per-row array ``gain`` reads, or None where it reads none.
    base: Callable[..., np.ndarray] | None


# The gains and updates share one signature so that the loops can call any pair. ``state`` is,
# for FL, the best similarity covering each row so far; for GC, each row's similarity to the picks.


@register_jitable
def _fl_gain(
    j: int, ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, state: np.ndarray, base: np.ndarray, lam: float
) -> float:
    """Sum over in-neighbours i of max(0, s_ij - best_i)."""
    total = 0.0
    for p in range(ptr[j], ptr[j + 1]):
        diff = wts[p] - state[nbr[p]]
        if diff > 0.0:
            total += diff
    return total


@register_jitable
def _fl_update(j: int, ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, state: np.ndarray) -> None:
    """best_i = max(best_i, s_ij) for j's in-neighbours."""
    for p in range(ptr[j], ptr[j + 1]):
        t = nbr[p]
        if wts[p] > state[t]:
            state[t] = wts[p]


@register_jitable
def _gc_gain(
    j: int, ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, state: np.ndarray, base: np.ndarray, lam: float
) -> float:
    """base_j - 2 lam s(X, j)."""
    return base[j] - 2.0 * lam * state[j]


@register_jitable
def _gc_update(j: int, ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, state: np.ndarray) -> None:
    """s(X, t) += s_jt for j's neighbours."""
    for p in range(ptr[j], ptr[j + 1]):
        state[nbr[p]] += wts[p]


@njit(cache=True)
def _gc_base(ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, lam: float) -> np.ndarray:
    """Graph cut's gain on the empty set: sum_{t ~ j} s_tj - lam * s_jj."""
    n = ptr.shape[0] - 1
    base = np.zeros(n, dtype=np.float64)
    for j in range(n):
        for p in range(ptr[j], ptr[j + 1]):
            base[j] += wts[p]
            if nbr[p] == j:
                base[j] -= lam * wts[p]
    return base


FACILITY_LOCATION = Objective(gain=_fl_gain, update=_fl_update, symmetric=False, base=None)
GRAPH_CUT = Objective(gain=_gc_gain, update=_gc_update, symmetric=True, base=_gc_base)
#: The functions ``sparse_greedy`` maximises, by name.
OBJECTIVES = {"fl": FACILITY_LOCATION, "gc": GRAPH_CUT}


# --------------------------------------------------------------------------- heap


@njit(cache=True, inline="always")
def _better(ga: float, ia: int, gb: float, ib: int) -> bool:
    # Larger gain first; equal gains go to the lower index, so results do not depend on heap order.
    return ga > gb or (ga == gb and ia < ib)


@njit(cache=True)
def _heap_push(keys: np.ndarray, items: np.ndarray, size: int, g: float, j: int) -> int:
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if not _better(g, j, keys[parent], items[parent]):
            break
        keys[pos] = keys[parent]
        items[pos] = items[parent]
        pos = parent
    keys[pos] = g
    items[pos] = j
    return size + 1


@njit(cache=True)
def _heap_pop(keys: np.ndarray, items: np.ndarray, size: int) -> int:
    """Drop the top; the caller reads it first. Returns the new size."""
    size -= 1
    g = keys[size]
    j = items[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _better(keys[child + 1], items[child + 1], keys[child], items[child]):
            child += 1
        if not _better(keys[child], items[child], g, j):
            break
        keys[pos] = keys[child]
        items[pos] = items[child]
        pos = child
    keys[pos] = g
    items[pos] = j
    return size


# --------------------------------------------------------------------------- loop factories
# Memoised per objective, so each loop is compiled (or loaded from numba's cache) once per process.


@functools.cache
def _lazy_loops(objective: Objective) -> tuple[Callable[..., int], Callable[..., int]]:
    """Lazy greedy's heap fill and steps for ``objective``."""
    gain, update = objective.gain, objective.update

    @njit(cache=True)
    def init(
        ptr: np.ndarray,
        nbr: np.ndarray,
        wts: np.ndarray,
        state: np.ndarray,
        base: np.ndarray,
        lam: float,
        keys: np.ndarray,
        items: np.ndarray,
    ) -> int:
        size = 0
        for j in range(ptr.shape[0] - 1):
            size = _heap_push(keys, items, size, gain(j, ptr, nbr, wts, state, base, lam), j)
        return size

    @njit(cache=True)
    def steps(
        ptr: np.ndarray,
        nbr: np.ndarray,
        wts: np.ndarray,
        state: np.ndarray,
        base: np.ndarray,
        lam: float,
        keys: np.ndarray,
        items: np.ndarray,
        size: int,
        stamp: np.ndarray,
        picks: np.ndarray,
        gains: np.ndarray,
        done: int,
        stop: int,
    ) -> int:
        """Lazy greedy from pick ``done`` to ``stop``; returns the heap size (state lives in the arrays)."""
        while done < stop:
            g = keys[0]
            j = items[0]
            size = _heap_pop(keys, items, size)
            if stamp[j] != done:
                # Stale bound: refresh it; keep j only if it still beats the best remaining bound.
                g = gain(j, ptr, nbr, wts, state, base, lam)
                stamp[j] = done
                if size > 0 and not _better(g, j, keys[0], items[0]):
                    size = _heap_push(keys, items, size, g, j)
                    continue
            update(j, ptr, nbr, wts, state)
            picks[done] = j
            gains[done] = g
            done += 1
        return size

    return init, steps


@functools.cache
def _stochastic_loop(objective: Objective) -> Callable[..., None]:
    """Stochastic greedy's steps for ``objective``."""
    gain, update = objective.gain, objective.update

    @njit(cache=True)
    def steps(
        ptr: np.ndarray,
        nbr: np.ndarray,
        wts: np.ndarray,
        state: np.ndarray,
        base: np.ndarray,
        lam: float,
        pool: np.ndarray,
        where: np.ndarray,
        draws: np.ndarray,
        sample: int,
        picks: np.ndarray,
        gains: np.ndarray,
        done: int,
        stop: int,
    ) -> None:
        """Stochastic greedy; ``pool[:n - done]`` holds the unpicked rows, ``draws`` ``sample`` floats per step."""
        n = pool.shape[0]
        offset = 0
        while done < stop:
            left = n - done
            m = min(sample, left)
            # Partial Fisher-Yates: pool[:m] becomes a uniform sample without replacement.
            for t in range(m):
                r = t + int(draws[offset + t] * (left - t))
                if r >= left:
                    r = left - 1
                a = pool[t]
                b = pool[r]
                pool[t] = b
                pool[r] = a
                where[b] = t
                where[a] = r
            offset += sample
            best_g = -np.inf
            best = -1
            for t in range(m):
                j = pool[t]
                g = gain(j, ptr, nbr, wts, state, base, lam)
                if best < 0 or _better(g, j, best_g, best):
                    best_g = g
                    best = j
            update(best, ptr, nbr, wts, state)
            picks[done] = best
            gains[done] = best_g
            # Remove the pick by swapping the last unpicked row into its place.
            last = pool[left - 1]
            slot = where[best]
            pool[slot] = last
            where[last] = slot
            pool[left - 1] = best
            where[best] = left - 1
            done += 1

    return steps


# --------------------------------------------------------------------------- optimizers


def _chunks(budget: int) -> list[tuple[int, int]]:
    # Fixed ~100 chunks so progress is reported while results stay independent of the callback.
    step = max(1, math.ceil(budget / 100))
    return [(s, min(budget, s + step)) for s in range(0, budget, step)]


def _start(objective: Objective, graph: Graph, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """The state of the empty set, and the objective's base (the state itself where it has none)."""
    state = np.zeros(graph[0].shape[0] - 1, dtype=np.float64)
    base = objective.base(*graph, lam) if objective.base is not None else state
    return state, base


def lazy_greedy(
    objective: Objective,
    graph: Graph,
    lam: float,
    budget: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``budget`` picks of lazy greedy and their gains (``seed`` is unused: no randomness)."""
    init, steps = _lazy_loops(objective)
    state, base = _start(objective, graph, lam)
    n = state.shape[0]
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    keys = np.empty(n, dtype=np.float64)
    items = np.empty(n, dtype=np.int64)
    stamp = np.zeros(n, dtype=np.int64)  # pick count when each bound was computed
    size = init(*graph, state, base, lam, keys, items)
    for start, stop in _chunks(budget):
        size = steps(*graph, state, base, lam, keys, items, size, stamp, picks, gains, start, stop)
        if progress is not None:
            progress(stop - start)
    return picks, gains


def stochastic_greedy(
    objective: Objective,
    graph: Graph,
    lam: float,
    budget: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``budget`` picks of stochastic greedy, sampled from a Generator seeded by ``seed``, and their gains."""
    steps = _stochastic_loop(objective)
    state, base = _start(objective, graph, lam)
    n = state.shape[0]
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sample = min(n, max(1, math.ceil(n / budget * math.log(1.0 / STOCHASTIC_EPS))))
    pool = np.arange(n, dtype=np.int64)
    where = np.arange(n, dtype=np.int64)
    for start, stop in _chunks(budget):
        draws = rng.random((stop - start) * sample)
        steps(*graph, state, base, lam, pool, where, draws, sample, picks, gains, start, stop)
        if progress is not None:
            progress(stop - start)
    return picks, gains


#: The optimizers by their names in ``defaults.OPTIMIZERS``.
RUNNERS = {"lazy": lazy_greedy, "stochastic": stochastic_greedy}
