"""Greedy selection over a kNN graph, for groups too large for a dense n x n kernel.

A dense kernel costs n^2 memory (n = 60,000 does not fit 24 GB with submodlib) and submodlib's
own sparse mode scans all pairs exactly. Here a faiss kNN graph (k edges per row, each row holding
itself) replaces the kernel, and the greedy loop runs in numba:

- ``fl`` facility location, f(X) = sum_i max(0, max_{j in X, j in N(i)} s_ij). The gain of j
  only involves the rows that have j among their neighbours (its in-neighbours), so it costs
  O(in-degree) instead of O(n).
- ``gc`` graph cut, f(X) = sum_{i in V, j in X} s_ij - lambda * sum_{i, j in X} s_ij (ordered
  pairs, diagonal included: submodlib's definition), with both sums restricted to the edges of
  the symmetrised graph (i ~ j when either is among the other's neighbours). With k = n both
  functions equal submodlib's dense ones.

Optimizers: ``lazy`` (max-heap of stale upper bounds, ties to the lower index; only the first
``budget`` picks are computed) and ``stochastic`` (each step scores a random sample of
ceil(n / budget * ln(1 / 0.01)) unpicked rows, drawn from a numpy Generator seeded by ``seed``).
Like submodlib, lazy greedy trusts stale bounds even where graph cut is not submodular
(negative similarities); with k = n it makes submodlib's picks, save exact ties (lower index here).

Defaults, measured with ``scripts/bench_sparse.py`` (d = 384, budget = n / 10, 2 cores):

- k = 32. Facility location value (exact, dense) relative to submodlib's dense lazy greedy:
  clustered data 1.000 at n = 15,000 and 20,000 (k = 8: 0.994); a harder hierarchical set at
  n = 15,000: 0.9975 (k = 16: 0.992, k = 64: 0.999). The graph costs ~20 bytes per edge at
  peak (kNN arrays, then the in-neighbour CSR): ~130 MB at n = 200,000.
- Exact graph up to ``exact_max_rows`` = 50,000 rows (faiss ``IndexFlatIP`` in row blocks;
  O(n^2 d): ~5 s at 20,000 rows, ~21 s at 50,000). Above it, inverted lists (``_ivf_knn``):
  nlist = 2 sqrt(n) spherical k-means centroids trained on a seeded subsample of 32 rows per
  list (10 iterations), each list scored against its 8 nearest lists: ~1.5 s at 20,000-50,000
  rows (recall@32 0.985-0.998, FL 0.9999 x dense at 15,000-20,000), ~10 s at 200,000, where
  the FL value equals that over the exact graph (ratio 0.99999; exact took 670 s).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

#: Neighbours per row by default (see the module docstring for the measurements behind it).
DEFAULT_K = 32
#: Inverted lists per sqrt(n), lists probed, and training rows per list of the approximate index.
IVF_LISTS_PER_SQRT_N = 2.0
IVF_NPROBE = 8
IVF_TRAIN_ROWS_PER_LIST = 32
IVF_KMEANS_ITERS = 10
#: Rows per faiss search call: bounds the result buffers and paces progress reports.
SEARCH_BLOCK = 4096
#: Scores held at once by the approximate search (float32: 16 MB).
SCORE_BLOCK = 1 << 22
#: Stochastic greedy's epsilon: each step samples n / budget * ln(1 / eps) candidates.
STOCHASTIC_EPS = 0.01

_FUNCTIONS = {"fl": 0, "gc": 1}
_OPTIMIZERS = ("lazy", "stochastic")


# --------------------------------------------------------------------------- kNN graph


def _as_f32(block: np.ndarray) -> np.ndarray:
    # faiss takes C-contiguous float32 only; float16 inputs are converted one block at a time.
    return np.ascontiguousarray(block, dtype=np.float32)


def _ensure_self(rows: np.ndarray, ids: np.ndarray, sims: np.ndarray, emb: np.ndarray) -> None:
    """Put a row's own index first in its list where the search missed it (exact duplicates)."""
    missing = np.flatnonzero(~(ids == rows[:, None]).any(axis=1))
    if missing.size == 0:
        return
    own = _as_f32(emb[rows[missing]])
    ids[missing, 1:] = ids[missing, :-1]
    sims[missing, 1:] = sims[missing, :-1]
    ids[missing, 0] = rows[missing]
    sims[missing, 0] = np.einsum("ij,ij->i", own, own)


def _exact_knn(emb: np.ndarray, ids: np.ndarray, sims: np.ndarray, progress: Callable[[int], None] | None) -> None:
    import faiss

    n, d = emb.shape
    index = faiss.IndexFlatIP(d)
    for start in range(0, n, SEARCH_BLOCK * 4):
        index.add(_as_f32(emb[start : start + SEARCH_BLOCK * 4]))
    for start in range(0, n, SEARCH_BLOCK):
        stop = min(n, start + SEARCH_BLOCK)
        dist, nbr = index.search(_as_f32(emb[start:stop]), ids.shape[1])
        _ensure_self(np.arange(start, stop), nbr, dist, emb)
        ids[start:stop] = nbr
        sims[start:stop] = dist
        if progress is not None:
            progress(stop - start)


def _train_centroids(emb: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids from a seeded subsample (faiss k-means seeded too)."""
    import faiss

    n, d = emb.shape
    n_train = min(n, nlist * IVF_TRAIN_ROWS_PER_LIST)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=n_train, replace=False))
    kmeans = faiss.Kmeans(
        d,
        nlist,
        niter=IVF_KMEANS_ITERS,
        seed=seed,
        spherical=True,
        min_points_per_centroid=1,  # small groups: fewer training rows per list is fine, no warning
        max_points_per_centroid=IVF_TRAIN_ROWS_PER_LIST + 1,  # the subsample above is the only one
    )
    kmeans.train(_as_f32(emb[rows]))
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def _single_threaded_blas() -> contextlib.AbstractContextManager:
    """Context in which BLAS runs on one thread: small products, many of them, in parallel
    Python threads. Multithreaded OpenBLAS on products this small measured ~18x slower on a
    busy 2-core machine (its threads spin against each other). Without threadpoolctl (it comes
    with scikit-learn, a sentence-transformers dependency) BLAS is left as it is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _ivf_knn(
    emb: np.ndarray, ids: np.ndarray, sims: np.ndarray, seed: int, progress: Callable[[int], None] | None
) -> None:
    """Approximate kNN over inverted lists from k-means.

    The rows of each list are scored, as one matrix product, against the rows of the
    IVF_NPROBE lists whose centroids are nearest to that list's centroid. Probing per list
    rather than per row lets BLAS do the scoring: faiss IndexIVFFlat's per-row scan took
    36-50 s at n = 200,000 here for the same recall, this ~10 s. Lists run on a thread per core.
    """
    import faiss

    n = emb.shape[0]
    kk = ids.shape[1]
    nlist = int(min(max(1, round(IVF_LISTS_PER_SQRT_N * math.sqrt(n))), max(1, n // IVF_TRAIN_ROWS_PER_LIST)))
    centroids = _train_centroids(emb, nlist, seed)
    label = np.empty(n, dtype=np.int64)
    for start in range(0, n, SEARCH_BLOCK * 4):
        block = _as_f32(emb[start : start + SEARCH_BLOCK * 4])
        _, nearest = faiss.knn(block, centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)
        label[start : start + block.shape[0]] = nearest[:, 0]
    order = np.argsort(label, kind="stable")  # rows grouped by list, ascending inside each
    bounds = np.searchsorted(label[order], np.arange(nlist + 1))
    sizes = np.diff(bounds)
    closeness = centroids @ centroids.T
    np.fill_diagonal(closeness, np.inf)  # a list always probes itself first

    def search_list(c: int) -> int:
        rows = order[bounds[c] : bounds[c + 1]]
        probe = np.argsort(-closeness[c], kind="stable")
        # At least IVF_NPROBE lists, and enough rows for k' neighbours.
        n_probe = max(min(IVF_NPROBE, nlist), int(np.searchsorted(np.cumsum(sizes[probe]), kk)) + 1)
        cand = np.sort(np.concatenate([order[bounds[p] : bounds[p + 1]] for p in probe[:n_probe]]))
        cand_emb = _as_f32(emb[cand])
        step = max(1, SCORE_BLOCK // cand.size)  # bounds the block of scores held at once
        for start in range(0, rows.size, step):
            block = rows[start : start + step]
            local, dist = _top_k(_as_f32(emb[block]) @ cand_emb.T, kk)
            nbr = cand[local]
            _ensure_self(block, nbr, dist, emb)
            ids[block] = nbr  # lists hold disjoint rows, so threads never write the same row
            sims[block] = dist
        return rows.size

    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    with _single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(search_list, np.flatnonzero(sizes)):
            if progress is not None:
                progress(done)


@njit(cache=True, nogil=True)
def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest scores in descending order; equal scores keep the lower column."""
    q, m = scores.shape
    cols = np.empty((q, k), dtype=np.int64)
    vals = np.empty((q, k), dtype=np.float32)
    for r in range(q):
        filled = 0
        for c in range(m):
            v = scores[r, c]
            if filled == k and v <= vals[r, k - 1]:
                continue  # columns come in ascending order, so a tie never displaces an earlier one
            pos = filled if filled < k else k - 1
            while pos > 0 and vals[r, pos - 1] < v:
                vals[r, pos] = vals[r, pos - 1]
                cols[r, pos] = cols[r, pos - 1]
                pos -= 1
            vals[r, pos] = v
            cols[r, pos] = c
            if filled < k:
                filled += 1
    return cols, vals


def knn_graph(
    emb: np.ndarray,
    k: int,
    *,
    exact_max_rows: int = 50_000,
    seed: int = 23,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row by inner product, each row's list holding the row itself.

    Parameters
    ----------
    emb : (n, d) float32 or float16 array of L2-normalised rows.
    k : neighbours per row; ``k' = min(k, n)`` are returned.
    exact_max_rows : up to this many rows, exact search (faiss ``IndexFlatIP`` in row blocks);
        above it, inverted lists (see ``_ivf_knn``).
    seed : seeds the k-means subsample and initialisation, so the graph is reproducible.
    progress : called with the number of rows searched since the previous call.

    Returns
    -------
    ids : (n, k') int32 (int64 when n >= 2**31) neighbour indices, most similar first.
    sims : (n, k') float32 inner products.
    """
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {emb.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = emb.shape[0]
    kk = min(k, n)
    ids = np.empty((n, kk), dtype=np.int32 if n < 2**31 else np.int64)
    sims = np.empty((n, kk), dtype=np.float32)
    if n == 0:
        return ids, sims
    if n <= exact_max_rows:
        _exact_knn(emb, ids, sims, progress)
    else:
        _ivf_knn(emb, ids, sims, seed, progress)
    return ids, sims


# --------------------------------------------------------------------------- graph layouts


@njit(cache=True)
def _transpose(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the in-neighbours: for column j, the rows i with j in N(i) (ascending) and s_ij."""
    n, k = ids.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        for c in range(k):
            indptr[ids[i, c] + 1] += 1
    for j in range(n):
        indptr[j + 1] += indptr[j]
    src = np.empty(n * k, dtype=np.int64)
    wts = np.empty(n * k, dtype=np.float32)
    fill = indptr[:-1].copy()
    for i in range(n):
        for c in range(k):
            j = ids[i, c]
            src[fill[j]] = i
            wts[fill[j]] = sims[i, c]
            fill[j] += 1
    return indptr, src, wts


@njit(cache=True)
def _symmetrise(
    ids: np.ndarray, sims: np.ndarray, t_ptr: np.ndarray, t_src: np.ndarray, t_wts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the undirected graph: out- and in-neighbours merged, each edge once."""
    n, k = ids.shape
    seen = np.full(n, -1, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        deg = 0
        for c in range(k):
            t = ids[j, c]
            if seen[t] != j:
                seen[t] = j
                deg += 1
        for p in range(t_ptr[j], t_ptr[j + 1]):
            t = t_src[p]
            if seen[t] != j:
                seen[t] = j
                deg += 1
        indptr[j + 1] = indptr[j] + deg
    nbr = np.empty(indptr[n], dtype=np.int64)
    wts = np.empty(indptr[n], dtype=np.float32)
    seen[:] = -1
    for j in range(n):
        q = indptr[j]
        for c in range(k):
            t = ids[j, c]
            if seen[t] != j:
                seen[t] = j
                nbr[q] = t
                wts[q] = sims[j, c]
                q += 1
        for p in range(t_ptr[j], t_ptr[j + 1]):
            t = t_src[p]
            if seen[t] != j:
                seen[t] = j
                nbr[q] = t
                wts[q] = t_wts[p]
                q += 1
    return indptr, nbr, wts


# --------------------------------------------------------------------------- greedy kernels


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


@njit(cache=True)
def _gain(
    code: int,
    j: int,
    ptr: np.ndarray,
    nbr: np.ndarray,
    wts: np.ndarray,
    state: np.ndarray,
    base: np.ndarray,
    lam: float,
) -> float:
    """FL: sum over in-neighbours i of max(0, s_ij - best_i). GC: base_j - 2 lam s(X, j)."""
    if code == 0:
        total = 0.0
        for p in range(ptr[j], ptr[j + 1]):
            diff = wts[p] - state[nbr[p]]
            if diff > 0.0:
                total += diff
        return total
    return base[j] - 2.0 * lam * state[j]


@njit(cache=True)
def _update(code: int, j: int, ptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, state: np.ndarray) -> None:
    """FL: best_i = max(best_i, s_ij) for j's in-neighbours. GC: s(X, t) += s_jt for j's neighbours."""
    for p in range(ptr[j], ptr[j + 1]):
        t = nbr[p]
        if code == 0:
            if wts[p] > state[t]:
                state[t] = wts[p]
        else:
            state[t] += wts[p]


@njit(cache=True)
def _lazy_init(
    code: int,
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
        size = _heap_push(keys, items, size, _gain(code, j, ptr, nbr, wts, state, base, lam), j)
    return size


@njit(cache=True)
def _lazy_steps(
    code: int,
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
            g = _gain(code, j, ptr, nbr, wts, state, base, lam)
            stamp[j] = done
            if size > 0 and not _better(g, j, keys[0], items[0]):
                size = _heap_push(keys, items, size, g, j)
                continue
        _update(code, j, ptr, nbr, wts, state)
        picks[done] = j
        gains[done] = g
        done += 1
    return size


@njit(cache=True)
def _stochastic_steps(
    code: int,
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
            g = _gain(code, j, ptr, nbr, wts, state, base, lam)
            if best < 0 or _better(g, j, best_g, best):
                best_g = g
                best = j
        _update(code, best, ptr, nbr, wts, state)
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


# --------------------------------------------------------------------------- public API


def _chunks(budget: int) -> list[tuple[int, int]]:
    # Fixed ~100 chunks so progress is reported while results stay independent of the callback.
    step = max(1, math.ceil(budget / 100))
    return [(s, min(budget, s + step)) for s in range(0, budget, step)]


def sparse_greedy(
    emb: np.ndarray,
    budget: int,
    *,
    function: str = "fl",
    lambda_: float = 0.4,
    k: int = DEFAULT_K,
    seed: int = 23,
    exact_max_rows: int = 50_000,
    optimizer: str = "lazy",
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximisation of ``function`` over the kNN graph of ``emb``.

    Parameters
    ----------
    emb : (n, d) float32 or float16 array of L2-normalised rows.
    budget : number of picks, ``0 <= budget <= n``; ``budget == n`` orders every row.
    function : ``"fl"`` (facility location) or ``"gc"`` (graph cut with ``lambda_``).
    lambda_ : graph cut's lambda (ignored by ``fl``).
    k : neighbours per row of the graph; ``k >= n`` gives the dense function exactly.
    seed : seeds the approximate kNN index and the stochastic optimizer.
    exact_max_rows : largest n searched exactly (see :func:`knn_graph`).
    optimizer : ``"lazy"`` or ``"stochastic"``.
    progress : called with increments of work done; the total is ``n + budget`` (rows searched
        for the graph, then picks), e.g. ``tqdm(total=n + budget).update``.

    Returns
    -------
    indices : int64 array of the picks in greedy order.
    gains : float64 array of each pick's marginal gain.
    """
    if function not in _FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(_FUNCTIONS)}")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {', '.join(_OPTIMIZERS)}")
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {emb.shape}")
    n = emb.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    if budget == 0:
        return picks, gains

    ids, sims = knn_graph(emb, k, exact_max_rows=exact_max_rows, seed=seed, progress=progress)
    code = _FUNCTIONS[function]
    ptr, nbr, wts = _transpose(ids, sims)
    if code == 1:
        ptr, nbr, wts = _symmetrise(ids, sims, ptr, nbr, wts)
    del ids, sims
    # FL: best similarity covering each row so far; GC: similarity of each row to the picks.
    state = np.zeros(n, dtype=np.float64)
    lam = float(lambda_)
    base = _gc_base(ptr, nbr, wts, lam) if code == 1 else state

    if optimizer == "lazy":
        keys = np.empty(n, dtype=np.float64)
        items = np.empty(n, dtype=np.int64)
        stamp = np.zeros(n, dtype=np.int64)  # pick count when each bound was computed
        size = _lazy_init(code, ptr, nbr, wts, state, base, lam, keys, items)
        for start, stop in _chunks(budget):
            size = _lazy_steps(
                code, ptr, nbr, wts, state, base, lam, keys, items, size, stamp, picks, gains, start, stop
            )
            if progress is not None:
                progress(stop - start)
    else:
        rng = np.random.default_rng(seed)
        sample = min(n, max(1, math.ceil(n / budget * math.log(1.0 / STOCHASTIC_EPS))))
        pool = np.arange(n, dtype=np.int64)
        where = np.arange(n, dtype=np.int64)
        for start, stop in _chunks(budget):
            draws = rng.random((stop - start) * sample)
            _stochastic_steps(
                code, ptr, nbr, wts, state, base, lam, pool, where, draws, sample, picks, gains, start, stop
            )
            if progress is not None:
                progress(stop - start)
    return picks, gains


def facility_location_value(emb: np.ndarray, selected: np.ndarray, block: int = 4096) -> float:
    """Exact dense facility location value, sum_i max(0, max_{j in selected} <e_i, e_j>).

    Computed in row blocks (each block x |selected| at most ~16M floats), never as n x n.
    """
    selected = np.asarray(selected, dtype=np.int64)
    if selected.size == 0 or emb.shape[0] == 0:
        return 0.0
    chosen = _as_f32(emb[selected])
    rows = max(1, min(block, (1 << 24) // chosen.shape[0]))
    total = 0.0
    for start in range(0, emb.shape[0], rows):
        best = (_as_f32(emb[start : start + rows]) @ chosen.T).max(axis=1)
        total += float(np.maximum(best, 0.0).sum(dtype=np.float64))
    return total
