"""Lazy greedy over a dense float32 kernel that makes submodlib's ``LazyGreedy`` picks, bit for bit.

``lazy_greedy(kernel, budget, function, lambda_)`` maximises facility location (``fl``), graph
cut (``gc``, ``separate_rep=False``: f(X) = sum_{i in V, j in X} s_ij - lambda sum_{i, j in X}
s_ij) or log determinant (``logdet``, log det(S_X + lambda I)) and returns the picks in greedy
order with their gains: the same picks, and the same gains to the last bit, as submodlib-py 0.0.3
with ``stopIfZeroGain=False, stopIfNegativeGain=False``. It reads the caller's kernel in place.

What submodlib does, and what this module therefore does (from its C++ source):

- The heap is ``std::priority_queue<std::pair<double, long long>>``: the larger bound first,
  equal bounds to the larger index. Its libstdc++ sift-up and sift-down are replicated step by
  step (``_push``, ``_pop``), so even equal or NaN bounds pop in the same order. The singleton
  gains are pushed in the ground set's iteration order: n - 1 down to 0 (a libstdc++
  ``unordered_set`` filled with 0 .. n - 1 after ``reserve(n)``).
- A popped element's gain is recomputed and accepted when it is >= the next bound (NaN never
  is); otherwise it goes back with its new gain as its bound.
- Sums are doubles, added in the ground set's order (row n - 1 first). Facility location keeps
  each row's best similarity so far as a float32 starting at 0 (negative similarities never
  count) and adds the float32 difference s_ij - best_i where it is positive. Graph cut's lambda
  is a float32, its gain tm_j - (2 lambda) ts_j - float32(lambda s_jj) with tm_j = sum_i s_ij and
  ts_j = sum_{x in X} s_jx. Log determinant runs an incremental Cholesky factor in doubles, one
  pick behind: ``_ld_update`` folds the previous pick into every unpicked row, and the gain folds
  in the last one.

``budget == n`` is allowed (submodlib refuses it): the last element is taken with its marginal
gain, as ``submodular.lazy_greedy`` appends it for the submodlib backend. Arithmetic follows
IEEE as in C++ (``error_model="numpy"``: x / 0 is inf, log of a negative NaN), and where NaN
gains make submodlib's loop endless (log determinant with lambda 0 past the kernel's rank) this
raises ``ValueError`` instead.

Facility location's gain is an O(n) sum that cannot be reordered without changing its last bit;
instead a re-evaluation scores the popped element and the heap's next stale entries in one pass
(eight independent sums, one per lane), and keeps each gain until a pick makes it stale.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: The functions, by name, with their code in the compiled loop.
FUNCTIONS = {"fl": 0, "gc": 1, "logdet": 2}
_FL, _GC, _LOGDET = 0, 1, 2
#: Facility-location gains scored in one pass over the rows.
_LANES = 8


# --------------------------------------------------------------------------- heap (libstdc++'s)


@njit(cache=True, error_model="numpy", inline="always")
def _less(bound_a: float, idx_a: int, bound_b: float, idx_b: int) -> bool:
    """``std::less<std::pair<double, long long>>``."""
    return bound_a < bound_b or (not bound_b < bound_a and idx_a < idx_b)


@njit(cache=True, error_model="numpy")
def _sift_up(hb: np.ndarray, hi: np.ndarray, hole: int, bound: float, idx: int) -> None:
    """``std::__push_heap`` with top index 0: move parents down while they are less than the value."""
    while hole > 0:
        parent = (hole - 1) // 2
        if not _less(hb[parent], hi[parent], bound, idx):
            break
        hb[hole] = hb[parent]
        hi[hole] = hi[parent]
        hole = parent
    hb[hole] = bound
    hi[hole] = idx


@njit(cache=True, error_model="numpy")
def _push(hb: np.ndarray, hi: np.ndarray, size: int, bound: float, idx: int) -> int:
    _sift_up(hb, hi, size, bound, idx)
    return size + 1


@njit(cache=True, error_model="numpy")
def _pop(hb: np.ndarray, hi: np.ndarray, size: int) -> int:
    """``std::pop_heap`` and ``pop_back`` (``std::__adjust_heap`` from the root); the caller read the top."""
    size -= 1
    if size == 0:
        return 0
    bound, idx = hb[size], hi[size]
    hole = child = 0
    while child < (size - 1) // 2:
        child = 2 * (child + 1)
        if _less(hb[child], hi[child], hb[child - 1], hi[child - 1]):
            child -= 1
        hb[hole], hi[hole] = hb[child], hi[child]
        hole = child
    if size % 2 == 0 and child == (size - 2) // 2:
        child = 2 * (child + 1)
        hb[hole], hi[hole] = hb[child - 1], hi[child - 1]
        hole = child - 1
    _sift_up(hb, hi, hole, bound, idx)
    return size


# --------------------------------------------------------------------------- the functions


@njit(cache=True, error_model="numpy")
def _singletons(k: np.ndarray, code: int, lam: float, tm: np.ndarray, ts: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Every element's gain on the empty set, in one pass over the rows (row n - 1 first).

    Fills graph cut's column sums ``tm`` and log determinant's ``d`` on the way.
    """
    n = k.shape[0]
    out = np.zeros(n)
    if code == _LOGDET:
        for j in range(n):
            d[j] = math.sqrt(np.float64(k[j, j]) + lam)
            out[j] = math.log(d[j] * d[j])
        return out
    for i in range(n - 1, -1, -1):
        row = k[i]
        if code == _FL:
            for j in range(n):  # a select, not a branch: + 0.0 leaves a sum >= +0 as it is
                v = row[j]
                out[j] += v if v > np.float32(0.0) else np.float32(0.0)
        else:
            for j in range(n):
                tm[j] += row[j]
    if code == _GC:
        for j in range(n):
            out[j] = _gc_gain(k, tm, ts, lam, j)
    return out


@njit(cache=True, error_model="numpy")
def _fl_gains(kt: np.ndarray, best: np.ndarray, lanes: np.ndarray, out: np.ndarray) -> None:
    """Facility location's gains of the eight elements ``lanes``: sum_i max(0, s_ij - best_i) from i = n - 1.

    Eight independent sums keep the adder busy (each sum's order is fixed, so a single one waits
    on its previous add); more lanes gained nothing measurable (the columns stream from memory).
    """
    c0, c1, c2, c3 = kt[lanes[0]], kt[lanes[1]], kt[lanes[2]], kt[lanes[3]]
    c4, c5, c6, c7 = kt[lanes[4]], kt[lanes[5]], kt[lanes[6]], kt[lanes[7]]
    g0 = g1 = g2 = g3 = g4 = g5 = g6 = g7 = np.float64(0.0)
    z = np.float32(0.0)
    # Selects, not branches (the signs are unpredictable): adding + 0.0 leaves each sum, which
    # starts at + 0 and only grows, bit for bit as it is.
    for i in range(best.shape[0] - 1, -1, -1):
        b = best[i]
        g0 += c0[i] - b if c0[i] > b else z
        g1 += c1[i] - b if c1[i] > b else z
        g2 += c2[i] - b if c2[i] > b else z
        g3 += c3[i] - b if c3[i] > b else z
        g4 += c4[i] - b if c4[i] > b else z
        g5 += c5[i] - b if c5[i] > b else z
        g6 += c6[i] - b if c6[i] > b else z
        g7 += c7[i] - b if c7[i] > b else z
    out[0], out[1], out[2], out[3] = g0, g1, g2, g3
    out[4], out[5], out[6], out[7] = g4, g5, g6, g7


@njit(cache=True, error_model="numpy", inline="always")
def _gc_gain(k: np.ndarray, tm: np.ndarray, ts: np.ndarray, lam: float, j: int) -> float:
    lam32 = np.float32(lam)
    return tm[j] - np.float64(np.float32(2.0) * lam32) * ts[j] - np.float64(lam32 * k[j, j])


@njit(cache=True, error_model="numpy")
def _ld_gain(k: np.ndarray, d: np.ndarray, c: np.ndarray, j: int, count: int, prev: int) -> float:
    """log of the Schur complement of s_jj + lambda, the last pick ``prev`` folded in here."""
    if count == 0:
        return math.log(d[j] * d[j])
    dot = 0.0
    for r in range(count - 1):
        dot += c[r, prev] * c[r, j]
    e = (np.float64(k[prev, j]) - dot) / d[prev]
    return math.log(d[j] * d[j] - e * e)


@njit(cache=True, error_model="numpy")
def _ld_update(k: np.ndarray, d: np.ndarray, c: np.ndarray, picked: np.ndarray, count: int, prev: int) -> None:
    """Fold pick ``prev`` (the ``count``-th) into every unpicked row's factor: row ``count - 1`` of ``c``."""
    m = count - 1
    acc = np.zeros(d.shape[0])
    for r in range(m):
        w = c[r, prev]
        row = c[r]
        for i in range(d.shape[0]):
            acc[i] += w * row[i]
    krow = k[prev]
    dp = d[prev]
    for i in range(d.shape[0]):
        if not picked[i]:
            e = (np.float64(krow[i]) - acc[i]) / dp
            c[m, i] = e
            d[i] = math.sqrt(d[i] * d[i] - e * e)


@njit(cache=True, error_model="numpy")
def _take(k: np.ndarray, kt: np.ndarray, code: int, j: int, count: int, prev: int, state: tuple) -> None:
    """Add ``j`` to the set (its ``count``-th pick; ``prev`` the one before)."""
    best, ts, d, c, picked = state
    if code == _FL:
        col = kt[j]
        for i in range(best.shape[0]):
            if col[i] > best[i]:
                best[i] = col[i]
    elif code == _GC:
        col = kt[j]
        for i in range(ts.shape[0]):
            ts[i] += col[i]
    elif count > 0:
        _ld_update(k, d, c, picked, count, prev)
    picked[j] = True


# --------------------------------------------------------------------------- the loop


@njit(cache=True, error_model="numpy")
def _refresh_fl(kt, best, j, hi, size, fresh, bound, count, lanes, scores) -> None:
    """Score ``j`` and the next stale heap entries (top and the levels below) against the current set.

    ``lanes`` (int64) and ``scores`` (float64), ``_LANES`` each, are the caller's scratch, made once."""
    lanes[:] = j
    used = 1
    for p in range(min(size, 2 * _LANES - 1)):
        if used == _LANES:
            break
        if fresh[hi[p]] != count:
            lanes[used] = hi[p]
            used += 1
    _fl_gains(kt, best, lanes, scores)
    for t in range(used):
        bound[lanes[t]] = scores[t]
        fresh[lanes[t]] = count


@njit(cache=True, error_model="numpy")
def _lazy(k, kt, budget, code, lam, picks, gains) -> int:
    """Fills ``picks`` and ``gains``; returns how many it made (fewer: the loop did not terminate)."""
    n = k.shape[0]
    best = np.zeros(n if code == _FL else 0, dtype=np.float32)
    tm = np.zeros(n if code == _GC else 0)
    ts = np.zeros(n if code == _GC else 0)
    d = np.zeros(n if code == _LOGDET else 0)
    c = np.zeros((max(budget - 1, 0), n) if code == _LOGDET else (0, 0))
    state = (best, ts, d, c, np.zeros(n, dtype=np.bool_))
    bound = _singletons(k, code, lam, tm, ts, d)
    hb, hi = np.empty(n), np.empty(n, dtype=np.int64)
    size = 0
    for j in range(n - 1, -1, -1):
        size = _push(hb, hi, size, bound[j], j)
    lanes, scores = np.empty(_LANES, dtype=np.int64), np.empty(_LANES)  # _refresh_fl's scratch
    fresh = np.zeros(n, dtype=np.int64)  # the pick count at which bound[j] was computed
    count, prev, pops = 0, -1, 0
    while count < budget:
        # Between picks each element is refreshed at most once, and a fresh top is accepted unless
        # NaN is involved: this many pops means NaN bounds cycle, where submodlib never ends.
        pops += 1
        if pops > 16 * n + 1024:
            return count
        j = hi[0]
        size = _pop(hb, hi, size)
        if fresh[j] != count:
            if code == _FL:
                _refresh_fl(kt, best, j, hi, size, fresh, bound, count, lanes, scores)
            elif code == _GC:
                bound[j] = _gc_gain(k, tm, ts, lam, j)
            else:
                bound[j] = _ld_gain(k, d, c, j, count, prev)
            fresh[j] = count
        g = bound[j]
        if size > 0 and not g >= hb[0]:
            size = _push(hb, hi, size, g, j)
            continue
        _take(k, kt, code, j, count, prev, state)
        picks[count], gains[count] = j, g
        count, prev, pops = count + 1, j, 0
    return count


@njit(cache=True, error_model="numpy")
def _is_symmetric(k: np.ndarray) -> bool:
    """Whether k equals its transpose bit for bit (so column j can be read as row j), tile by tile."""
    n = k.shape[0]
    bits = k.view(np.int32)
    for i0 in range(0, n, 64):
        for j0 in range(i0, n, 64):
            for i in range(i0, min(i0 + 64, n)):
                for j in range(max(j0, i + 1), min(j0 + 64, n)):
                    if bits[i, j] != bits[j, i]:
                        return False
    return True


def lazy_greedy(
    kernel: np.ndarray, budget: int, function: str, lambda_: float | None = None, symmetric: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``budget`` picks (int64) of lazy greedy on ``function`` over ``kernel`` and their gains (float64).

    ``kernel`` is the n x n similarity matrix, read in place when it is C-contiguous float32 (else
    converted once); ``lambda_`` is graph cut's or log determinant's lambda (ignored for ``fl``).
    ``symmetric``: whether the kernel equals its transpose bit for bit, where the caller knows
    (``similarity.gram`` makes it so); ``None``: checked here (a pass over the kernel).
    """
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(FUNCTIONS)}")
    k = np.ascontiguousarray(kernel, dtype=np.float32)
    n = k.shape[0]
    if k.ndim != 2 or k.shape[1] != n:
        raise ValueError(f"kernel must be square, got shape {k.shape}")
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    code = FUNCTIONS[function]
    if code != _FL and lambda_ is None:
        raise ValueError(f"{function} needs a lambda")
    # Graph cut's lambda is a C++ float in submodlib, log determinant's a double.
    lam = float(np.float32(lambda_)) if code == _GC else float(lambda_ or 0.0)
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    if budget:
        # Column j is read as row j where the kernel is symmetric (contiguous); else as a strided view.
        same = symmetric if symmetric is not None else code == _LOGDET or _is_symmetric(k)
        kt = k if code == _LOGDET or same else k.T
        made = _lazy(k, kt, budget, code, lam, picks, gains)
        if made < budget:
            # submodlib loops forever here: a NaN gain is never accepted and keeps coming back.
            raise ValueError(
                f"lazy greedy on {function} does not terminate after {made} picks: NaN gains "
                "(log determinant with lambda 0 beyond the kernel's rank?)"
            )
    return picks, gains
