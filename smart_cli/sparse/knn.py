"""The kNN graph: every row's k nearest neighbours by inner product, the row itself included.

Defaults, measured with ``scripts/bench_sparse.py`` (d = 384, budget = n / 10, 2 cores):

- k = 32. Facility location value (exact, dense) relative to submodlib's dense lazy greedy:
  clustered data 1.000 at n = 15,000 and 20,000 (k = 8: 0.994); a harder hierarchical set at
  n = 15,000: 0.9975 (k = 16: 0.992, k = 64: 0.999). The graph costs ~20 bytes per edge at
  peak (kNN arrays, then the in-neighbour CSR): ~130 MB at n = 200,000.
- Exact graph up to ``exact_max_rows`` = 50,000 rows (every pair, in row blocks, with the
  machine-independent products of ``similarity``; O(n^2 d)): 5.9 s at 20,000 rows, 39.5 s at
  50,000 (faiss ``IndexFlatIP``, used before, took ~5 s and ~21 s, in bits of its own). Above it,
  inverted lists (``_ivf_knn``): nlist = 2 sqrt(n) spherical k-means centroids (our own,
  seeded, in the same arithmetic) trained on a subsample of 32 rows per list (10 iterations),
  each list scored against its 8 nearest lists: 1.4 s at 20,000 rows (recall@32 0.986 of the
  exact graph) and 2.8 s at 50,000 (0.998), measured on ``bench_sparse``'s clustered data.
  With faiss's k-means before: ~10 s at 200,000 rows, where the FL value equaled that over the
  exact graph (ratio 0.99999).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from smart_cli import similarity
from smart_cli.defaults import KNN, SEED

#: Neighbours per row by default (see the module docstring for the measurements behind it).
DEFAULT_K = KNN
#: Largest number of rows searched exactly; above it, inverted lists.
EXACT_MAX_ROWS = 50_000
#: Inverted lists per sqrt(n), lists probed, and training rows per list of the approximate index.
IVF_LISTS_PER_SQRT_N = 2.0
IVF_NPROBE = 8
IVF_TRAIN_ROWS_PER_LIST = 32
IVF_KMEANS_ITERS = 10
#: Most rows per block of the exact search: bounds the result buffers and paces progress reports.
SEARCH_BLOCK = 4096
#: Scores held at once by the approximate search (float32: 16 MB).
SCORE_BLOCK = 1 << 22


def as_f32(block: np.ndarray) -> np.ndarray:
    # float16 inputs are converted one block at a time.
    return np.ascontiguousarray(block, dtype=np.float32)


def _ensure_self(rows: np.ndarray, ids: np.ndarray, sims: np.ndarray, emb: np.ndarray) -> None:
    """Put a row's own index first in its list where the search missed it (exact duplicates)."""
    missing = np.flatnonzero(~(ids == rows[:, None]).any(axis=1))
    if missing.size == 0:
        return
    own = as_f32(emb[rows[missing]])
    ids[missing, 1:] = ids[missing, :-1]
    sims[missing, 1:] = sims[missing, :-1]
    ids[missing, 0] = rows[missing]
    sims[missing, 0] = similarity.rowwise(own, own)


def _exact_knn(emb: np.ndarray, ids: np.ndarray, sims: np.ndarray, progress: Callable[[int], None] | None) -> None:
    """Every row against every row, a block of rows at a time (the similarities of ``similarity``)."""
    n = emb.shape[0]
    right = similarity.Right.of(emb)
    step = max(1, min(SEARCH_BLOCK, SCORE_BLOCK // n))
    for start in range(0, n, step):
        stop = min(n, start + step)
        nbr, dist = _top_k(similarity.cross(emb[start:stop], right), ids.shape[1])
        _ensure_self(np.arange(start, stop), nbr, dist, emb)
        ids[start:stop] = nbr
        sims[start:stop] = dist
        if progress is not None:
            progress(stop - start)


def _nearest(rows: np.ndarray, centroids: similarity.Right) -> np.ndarray:
    """Index of each row's most similar centroid (the first of equals), a block at a time."""
    label = np.empty(rows.shape[0], dtype=np.int64)
    step = max(1, SCORE_BLOCK // max(1, centroids.rows.shape[0]))
    for start in range(0, rows.shape[0], step):
        label[start : start + step] = similarity.cross(as_f32(rows[start : start + step]), centroids).argmax(axis=1)
    return label


def _train_centroids(emb: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids from a seeded subsample, in arithmetic that is the same anywhere.

    Starts from ``nlist`` distinct training rows drawn with ``seed``; each round assigns rows to
    their most similar centroid and moves each centroid to its rows' normalised sum (float64,
    in row order); a centroid left without rows keeps its place.
    """
    n = emb.shape[0]
    n_train = min(n, nlist * IVF_TRAIN_ROWS_PER_LIST)
    rng = np.random.default_rng(seed)
    train = as_f32(emb[np.sort(rng.choice(n, size=n_train, replace=False))])
    centroids = train[np.sort(rng.choice(n_train, size=nlist, replace=False))].copy()
    for _ in range(IVF_KMEANS_ITERS):
        label = _nearest(train, similarity.Right.of(centroids))
        sums = np.zeros((nlist, train.shape[1]), dtype=np.float64)
        np.add.at(sums, label, train.astype(np.float64))
        norm = similarity.norms(sums)
        moved = norm > 0
        centroids[moved] = (sums[moved] / norm[moved, None]).astype(np.float32)
    return centroids


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


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _ivf_knn(
    emb: np.ndarray, ids: np.ndarray, sims: np.ndarray, seed: int, progress: Callable[[int], None] | None
) -> None:
    """Approximate kNN over inverted lists from k-means.

    The rows of each list are scored, as one matrix product, against the rows of the
    IVF_NPROBE lists whose centroids are nearest to that list's centroid. Probing per list
    rather than per row lets BLAS do the scoring: faiss IndexIVFFlat's per-row scan took
    36-50 s at n = 200,000 here for the same recall, this ~10 s. Lists run on a thread per core.
    """
    n = emb.shape[0]
    kk = ids.shape[1]
    nlist = int(min(max(1, round(IVF_LISTS_PER_SQRT_N * math.sqrt(n))), max(1, n // IVF_TRAIN_ROWS_PER_LIST)))
    centroids = _train_centroids(emb, nlist, seed)
    label = _nearest(emb, similarity.Right.of(centroids))
    order = np.argsort(label, kind="stable")  # rows grouped by list, ascending inside each
    bounds = np.searchsorted(label[order], np.arange(nlist + 1))
    sizes = np.diff(bounds)
    closeness = similarity.gram(centroids).astype(np.float64)
    np.fill_diagonal(closeness, np.inf)  # a list always probes itself first

    def search_list(c: int) -> int:
        rows = order[bounds[c] : bounds[c + 1]]
        probe = np.argsort(-closeness[c], kind="stable")
        # At least IVF_NPROBE lists, and enough rows for k' neighbours.
        n_probe = max(min(IVF_NPROBE, nlist), int(np.searchsorted(np.cumsum(sizes[probe]), kk)) + 1)
        cand = np.sort(np.concatenate([order[bounds[p] : bounds[p + 1]] for p in probe[:n_probe]]))
        cand_emb = similarity.Right.of(emb[cand])
        step = max(1, SCORE_BLOCK // cand.size)  # bounds the block of scores held at once
        for start in range(0, rows.size, step):
            block = rows[start : start + step]
            local, dist = _top_k(similarity.cross(emb[block], cand_emb, one_thread=True), kk)
            nbr = cand[local]
            _ensure_self(block, nbr, dist, emb)
            ids[block] = nbr  # lists hold disjoint rows, so threads never write the same row
            sims[block] = dist
        return rows.size

    with _single_threaded_blas(), ThreadPoolExecutor(max_workers=_cores()) as pool:
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
    exact_max_rows: int = EXACT_MAX_ROWS,
    seed: int = SEED,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row by inner product, each row's list holding the row itself.

    Parameters
    ----------
    emb : (n, d) float32 or float16 array of L2-normalised rows.
    k : neighbours per row; ``k' = min(k, n)`` are returned.
    exact_max_rows : up to this many rows, exact search (every pair, in row blocks);
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
