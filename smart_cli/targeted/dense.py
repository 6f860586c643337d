"""The dense path of targeted selection: kernels from the vectors, then lazy greedy (ours or submodlib's).

Pure: arrays in, arrays out. ``maximize`` is what both stages call for a ground set small enough
for its n x n kernel (the task means; a (task, template) group under the dense limit).
"""

from __future__ import annotations

import numpy as np

from smart_cli import similarity
from smart_cli.submodular import cosine_kernel, run_submodlib
from smart_cli.targeted import mi_greedy

#: The functions that read the candidates' n x n kernel (the others only the n x q similarities).
NEEDS_KERNEL = ("flvmi", "logdetmi")


unit_rows = similarity.unit_rows


def query_similarities(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row to every query row: the n x q float32 matrix (raw, in [-1, 1]),
    each entry the same bits on any machine (``similarity``)."""
    return similarity.cross(unit_rows(rows), unit_rows(query))


def submodlib_lazy_greedy(
    function: str,
    budget: int,
    *,
    query_sims: np.ndarray,
    kernel: np.ndarray | None = None,
    query_kernel: np.ndarray | None = None,
    eta: float = 1.0,
    lambda_: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The same as ``mi_greedy.lazy_greedy``, computed by submodlib itself (budget < n for the
    library; at budget == n the last element is appended with its marginal gain)."""
    import submodlib.functions as fns

    qk = np.ascontiguousarray(query_sims, dtype=np.float32)
    n, q = qk.shape
    if function == "flvmi":
        fn = fns.facilityLocationMutualInformation.FacilityLocationMutualInformationFunction(
            n=n, num_queries=q, data_sijs=np.asarray(kernel, np.float32), query_sijs=qk, magnificationEta=eta
        )
    elif function == "flmi":
        fn = fns.facilityLocationVariantMutualInformation.FacilityLocationVariantMutualInformationFunction(
            n=n, num_queries=q, query_sijs=qk, queryDiversityEta=eta
        )
    elif function == "gcmi":
        # submodlib's graph-cut MI has no lambda: its gains are sum_q s_jq (lambda 0.5 here).
        fn = fns.graphCutMutualInformation.GraphCutMutualInformationFunction(n=n, num_queries=q, query_sijs=qk)
    elif function == "logdetmi":
        fn = fns.logDeterminantMutualInformation.LogDeterminantMutualInformationFunction(
            n=n,
            num_queries=q,
            lambdaVal=lambda_,
            data_sijs=np.asarray(kernel, np.float32),
            query_sijs=qk,
            query_query_sijs=np.asarray(query_kernel, np.float32),
            magnificationEta=eta,
        )
    else:
        raise ValueError(f"unknown function {function!r}")
    idx, gains = run_submodlib(fn, n, budget)
    scale = 2.0 * lambda_ if function == "gcmi" else 1.0
    return idx, gains * scale


def maximize(
    rows: np.ndarray,
    query: np.ndarray,
    budget: int,
    function: str,
    *,
    eta: float,
    lambda_: float,
    backend: str = "smart",
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy order and gains of ``budget`` of ``rows`` under ``function`` with the ``query`` rows."""
    query = unit_rows(query)
    kernel = cosine_kernel(rows) if function in NEEDS_KERNEL else None
    sims = query_similarities(rows, query)
    query_kernel = similarity.gram(query) if function == "logdetmi" else None
    run = mi_greedy.lazy_greedy if backend == "smart" else submodlib_lazy_greedy
    return run(function, budget, query_sims=sims, kernel=kernel, query_kernel=query_kernel, eta=eta, lambda_=lambda_)
