"""Targeted mixtures: SMART toward a domain given a handful of its examples (``--query QEMB``).

Both stages maximise submodular mutual information with the query rows (PRISM; submodlib's
flvmi, flmi, gcmi and logdetmi) instead of a representativeness function:

- ``mi_greedy.py``: the functions' lazy greedy (numba), making submodlib's picks and gains;
- ``dense.py``: kernels from the vectors, and submodlib itself as the reference backend;
- ``sparse.py``: groups too large for an n x n kernel (kNN graph with capped weights; n x q);
- ``query.py``: the query ``EMB_DIR``, its checks against the collection and its identity;
- ``selection.py``: what the two stages call (objective, parameters, task order, group picks).
"""

from smart_cli.targeted.selection import (
    KERNEL_OF,
    QueryObjective,
    pick_rows,
    prepare_samples,
    query_objective,
    query_params,
    sparse_refused,
    task_order,
)

__all__ = [
    "KERNEL_OF",
    "QueryObjective",
    "pick_rows",
    "prepare_samples",
    "query_objective",
    "query_params",
    "sparse_refused",
    "task_order",
]
