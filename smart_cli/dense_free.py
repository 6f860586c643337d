"""The exact dense lazy greedy without an n x n kernel: similarities computed as they are needed.

``lazy_greedy(rows, budget, function, lambda_)`` gives the picks and gains of
``dense_greedy.lazy_greedy(cosine_kernel(rows), ...)`` bit for bit, for facility location and
graph cut, holding O(n d) memory instead of the 4 n^2 bytes of the kernel: each entry comes from
``similarity``, whose bits do not depend on how the product is blocked, so a column computed
alone equals the kernel's column, and the sums run in the dense engine's order.

- The singleton gains are one pass over row blocks of the product, the last block first and the
  rows of each block from the last, as the dense engine reads its rows (row n - 1 first).
- Facility location re-scores a popped element from its column (computed from the vectors, the
  most recent ones kept); a pick's column updates each row's best similarity.
- Graph cut's gains need only the column sums (the first pass) and, per pick, one column.

The cost is the kernel's product once (the first pass) plus a column per re-evaluation: see
the README ("Dense greedy: submodlib's picks, faster") for times per group size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from numba import njit

from smart_cli import similarity
from smart_cli.dense_greedy import _FL, _GC, FUNCTIONS, _pop, _push
from smart_cli.dense_limit import KERNEL_FREE  # log determinant keeps its kernel

#: Float32 scores held at once by the first pass (rows of the product per block: this / n).
PASS_ENTRIES = 1 << 24
#: Bytes of kernel columns kept for elements that come back to the heap's top.
CACHE_BYTES = 1 << 30


@njit(cache=True, error_model="numpy")
def _add_block(block: np.ndarray, code: int, out: np.ndarray) -> None:
    """Add a block of kernel rows to the column sums, its last row first (positive parts for FL)."""
    for i in range(block.shape[0] - 1, -1, -1):
        row = block[i]
        if code == _FL:
            for j in range(row.shape[0]):
                if row[j] > np.float32(0.0):
                    out[j] += row[j]
        else:
            for j in range(row.shape[0]):
                out[j] += row[j]


@njit(cache=True, error_model="numpy")
def _raise_best(best: np.ndarray, col: np.ndarray) -> None:
    for i in range(best.shape[0]):
        if col[i] > best[i]:
            best[i] = col[i]


@njit(cache=True, error_model="numpy")
def _add_column(ts: np.ndarray, col: np.ndarray) -> None:
    for i in range(ts.shape[0]):
        ts[i] += col[i]


def _column_sums(right: similarity.Right, code: int, progress: Callable[[int], None] | None) -> np.ndarray:
    n = right.rows.shape[0]
    out = np.zeros(n)
    step = max(1, PASS_ENTRIES // max(1, n))
    for stop in range(n, 0, -step):
        start = max(0, stop - step)
        _add_block(similarity.cross(right.rows[start:stop], right), code, out)
        if progress is not None:
            progress(stop - start)
    return out


@njit(cache=True, error_model="numpy")
def _fl_gain(col: np.ndarray, best: np.ndarray) -> float:
    """One lane of ``dense_greedy._fl_gains``: sum_i max(0, s_ij - best_i) from i = n - 1, the same bits."""
    g = 0.0
    for i in range(best.shape[0] - 1, -1, -1):
        if col[i] > best[i]:
            g += col[i] - best[i]
    return g


class _Columns:
    """Kernel columns (= rows: it is symmetric) computed from the vectors, the most recently used
    kept up to ``capacity`` bytes: the elements near the heap's top come back pick after pick."""

    def __init__(self, rows: np.ndarray, capacity: int):
        self.rows = rows
        self.columns = similarity.Columns.of(rows)
        self.keep = max(16, capacity // max(1, 4 * rows.shape[0]))
        self.held: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, j: int) -> np.ndarray:
        col = self.held.pop(j, None)
        if col is None:
            col = self.columns.against(self.rows[j])
            if len(self.held) >= self.keep:
                self.held.popitem(last=False)
        self.held[j] = col
        return col


def lazy_greedy(
    rows: np.ndarray,
    budget: int,
    function: str,
    lambda_: float | None = None,
    progress: Callable[[int], None] | None = None,
    cache_bytes: int = CACHE_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """First ``budget`` picks of lazy greedy over the cosine kernel of unit ``rows``, and their gains.

    The same as ``dense_greedy.lazy_greedy(similarity.gram(rows), ...)``; ``progress`` is called
    with rows of the first pass as they are scored; ``cache_bytes`` bounds the columns kept.
    """
    if function not in KERNEL_FREE:
        raise ValueError(f"no kernel-free engine for {function!r}; choose from {', '.join(KERNEL_FREE)}")
    code = FUNCTIONS[function]
    right = similarity.Right.of(rows)
    n = right.rows.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    if code == _GC and lambda_ is None:
        raise ValueError("gc needs a lambda")
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    if budget == 0:
        return picks, gains
    sums = _column_sums(right, code, progress)
    unit = right.rows
    lam32 = np.float32(lambda_ or 0.0)
    diag = similarity.rowwise(unit, unit)
    # Graph cut: the dense engine's _gc_gain with ts = 0 (its 2 lambda ts term is + 0.0 then).
    bound = sums - (lam32 * diag).astype(np.float64) if code == _GC else sums
    _loop(_Columns(unit, cache_bytes), code, lam32, sums, diag, bound, picks, gains)
    return picks, gains


def _loop(columns: _Columns, code, lam32, tm, diag, bound, picks, gains) -> None:
    """The dense engine's loop (``dense_greedy._lazy``), one column per re-evaluation.

    The dense engine scores a popped element together with up to seven stale ones below it (eight
    sums in one pass over the kernel); here each is scored when it is popped. The heap sees the
    same bounds in the same order either way: a gain computed early is the gain computed at its
    pop, since the set does not change in between.
    """
    n = bound.shape[0]
    hb, hi = np.empty(n), np.empty(n, dtype=np.int64)
    size = 0
    for j in range(n - 1, -1, -1):
        size = _push(hb, hi, size, bound[j], j)
    fresh = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.float32)
    ts = np.zeros(n)
    count = 0
    two_lam = np.float64(np.float32(2.0) * lam32)
    while count < len(picks):
        j = int(hi[0])
        size = _pop(hb, hi, size)
        if fresh[j] != count:
            if code == _FL:
                bound[j] = _fl_gain(columns.get(j), best)
            else:
                bound[j] = tm[j] - two_lam * ts[j] - np.float64(lam32 * diag[j])
            fresh[j] = count
        g = bound[j]
        if size > 0 and not g >= hb[0]:
            size = _push(hb, hi, size, g, j)
            continue
        if code == _FL:
            _raise_best(best, columns.get(j))
        else:
            _add_column(ts, columns.get(j))
        picks[count], gains[count] = j, g
        count += 1
