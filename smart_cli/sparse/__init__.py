"""Greedy selection over a kNN graph, for groups too large for a dense n x n kernel.

A dense kernel costs n^2 memory (n = 60,000 does not fit 24 GB with submodlib) and submodlib's
own sparse mode scans all pairs exactly. Here a kNN graph (k edges per row, each row holding
itself) replaces the kernel, and the greedy loop runs in numba:

- ``knn.py``: the graph, exact or over inverted lists, and the measurements behind its defaults.
- ``graph.py``: its CSR layouts (in-neighbours; undirected).
- ``greedy.py``: the optimizers, ``lazy`` and ``stochastic``, each compiled once per objective.

:func:`sparse_greedy` ties them together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from smart_cli import similarity
from smart_cli.defaults import LAMBDA, OPTIMIZERS, SEED
from smart_cli.sparse.graph import csr_graph
from smart_cli.sparse.greedy import OBJECTIVES, RUNNERS, STOCHASTIC_EPS
from smart_cli.sparse.knn import (
    DEFAULT_K,
    EXACT_MAX_ROWS,
    IVF_KMEANS_ITERS,
    IVF_LISTS_PER_SQRT_N,
    IVF_NPROBE,
    IVF_TRAIN_ROWS_PER_LIST,
    SCORE_BLOCK,
    SEARCH_BLOCK,
    knn_graph,
)

__all__ = [
    "DEFAULT_K",
    "EXACT_MAX_ROWS",
    "IVF_KMEANS_ITERS",
    "IVF_LISTS_PER_SQRT_N",
    "IVF_NPROBE",
    "IVF_TRAIN_ROWS_PER_LIST",
    "SCORE_BLOCK",
    "SEARCH_BLOCK",
    "STOCHASTIC_EPS",
    "facility_location_value",
    "knn_graph",
    "sparse_greedy",
]


def sparse_greedy(
    emb: np.ndarray,
    budget: int,
    *,
    function: str = "fl",
    lambda_: float = LAMBDA["gc"],
    k: int = DEFAULT_K,
    seed: int = SEED,
    exact_max_rows: int = EXACT_MAX_ROWS,
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
    if function not in OBJECTIVES:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(OBJECTIVES)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {emb.shape}")
    n = emb.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    if budget == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)

    objective = OBJECTIVES[function]
    # Unpacked straight into the CSR build, so the kNN lists are freed as soon as it returns.
    graph = csr_graph(
        *knn_graph(emb, k, exact_max_rows=exact_max_rows, seed=seed, progress=progress),
        symmetric=objective.symmetric,
    )
    return RUNNERS[optimizer](objective, graph, float(lambda_), budget, seed, progress)


def facility_location_value(emb: np.ndarray, selected: np.ndarray, block: int = 4096) -> float:
    """Exact dense facility location value, sum_i max(0, max_{j in selected} <e_i, e_j>).

    Computed in row blocks (each block x |selected| at most ~16M floats), never as n x n.
    """
    selected = np.asarray(selected, dtype=np.int64)
    if selected.size == 0 or emb.shape[0] == 0:
        return 0.0
    chosen = similarity.Right.of(emb[selected])
    rows = max(1, min(block, (1 << 24) // chosen.rows.shape[0]))
    total = 0.0
    for start in range(0, emb.shape[0], rows):
        best = similarity.cross(emb[start : start + rows], chosen).max(axis=1)
        total += float(np.maximum(best, 0.0).sum(dtype=np.float64))
    return total
