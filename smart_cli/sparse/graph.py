"""Layouts of the kNN graph that the greedy loops walk: CSR of the in-neighbours, or of the
undirected graph (out- and in-neighbours merged)."""

from __future__ import annotations

import numpy as np
from numba import njit


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


def csr_graph(ids: np.ndarray, sims: np.ndarray, *, symmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, nbr, wts)`` of the in-neighbours of ``knn_graph``'s lists, or of the undirected graph."""
    ptr, nbr, wts = _transpose(ids, sims)
    if symmetric:
        ptr, nbr, wts = _symmetrise(ids, sims, ptr, nbr, wts)
    return ptr, nbr, wts
