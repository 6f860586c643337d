"""The sparse path of targeted selection, for groups too large for an n x n kernel.

- ``flmi`` and ``gcmi`` read only the n x q similarities to the query: the dense engine runs
  them exactly at any size (gcmi keeps n sums, flmi the n x q matrix: 4 n q bytes).
- ``flvmi`` over the group's kNN graph (``smart_cli.sparse``): flvmi is facility location on the
  kernel with row i's similarities capped at c_i = max(0+, eta max_q s_iq) (when every row's best
  so far is at most its cap, min(max(b, s), c) - min(b, c) = max(0, min(s, c) - b), bit for bit),
  so the in-neighbour graph's weights are capped per row and the untargeted sparse engine
  (lazy or stochastic greedy) maximises it. Only the n caps are kept of the n x q similarities.
- ``logdetmi`` has no sparse path (the stage refuses such a group before any work).
"""

from __future__ import annotations

import numpy as np

from smart_cli import similarity
from smart_cli.targeted import mi_greedy
from smart_cli.targeted.dense import query_similarities, unit_rows

#: Rows scored against the query at once (block x q float32).
BLOCK = 1 << 14


def blockwise(rows: np.ndarray, query: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` of every row's similarities to the query, computed a block of rows at a time."""
    out = [reduce(query_similarities(rows[lo : lo + BLOCK], query)) for lo in range(0, rows.shape[0], BLOCK)]
    return np.concatenate(out) if out else np.empty(0)


def capped_graph(rows: np.ndarray, caps: np.ndarray, k: int, seed: int):
    """The in-neighbour CSR of the rows' kNN graph, each weight s_ij capped at row i's cap."""
    from smart_cli.sparse import knn_graph
    from smart_cli.sparse.graph import csr_graph

    ptr, src, wts = csr_graph(*knn_graph(rows, k, seed=seed), symmetric=False)
    np.minimum(wts, caps[src], out=wts)
    return ptr, src, wts


def sparse_greedy(
    rows: np.ndarray,
    query: np.ndarray,
    budget: int,
    function: str,
    *,
    eta: float,
    lambda_: float,
    k: int,
    seed: int,
    optimizer: str = "lazy",
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy order and gains of ``budget`` of ``rows`` without their n x n kernel."""
    query = unit_rows(query)
    if function == "flvmi":
        from smart_cli.sparse.greedy import OBJECTIVES, RUNNERS

        if budget == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        caps = blockwise(rows, query, lambda s: mi_greedy.row_caps(s, eta))
        graph = capped_graph(rows, caps.astype(np.float32), k, seed)
        return RUNNERS[optimizer](OBJECTIVES["fl"], graph, 0.0, budget, seed, None)
    if function in ("flmi", "gcmi"):
        sims = query_similarities(rows, query)
        return mi_greedy.lazy_greedy(function, budget, query_sims=sims, eta=eta, lambda_=lambda_)
    raise ValueError(f"{function} has no sparse path")


def flvmi_value(rows: np.ndarray, query: np.ndarray, picks: np.ndarray, eta: float) -> float:
    """The exact (dense) flvmi value of ``picks``: sum_i min(max(0, max_{a in picks} s_ia), c_i), in blocks."""
    picks = np.asarray(picks, dtype=np.int64)
    if picks.size == 0:
        return 0.0
    query, chosen = unit_rows(query), unit_rows(rows[picks])
    total = 0.0
    for lo in range(0, rows.shape[0], BLOCK):
        block = unit_rows(rows[lo : lo + BLOCK])
        best = np.maximum(similarity.cross(block, chosen).max(axis=1), 0.0)
        caps = mi_greedy.row_caps(similarity.cross(block, query), eta)
        total += float(np.minimum(best, caps).sum(dtype=np.float64))
    return total
