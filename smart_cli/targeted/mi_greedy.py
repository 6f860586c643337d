"""Lazy greedy on submodular mutual information with a query set, making submodlib's picks.

``lazy_greedy(function, budget, ...)`` maximises, for candidates V (n rows) and query rows Q,
one of the mutual-information functions of PRISM (Kothawade et al., AAAI 2022), in the forms
submodlib-py 0.0.3's C++ computes them (read from its source, checked against the library in
``tests/test_targeted.py``). The names are PRISM's; two of submodlib's class names cross them:

- ``flmi``, PRISM's FLQMI (submodlib's ``FacilityLocationVariantMutualInformationFunction``,
  ``queryDiversityEta``): I(A; Q) = sum_{q in Q} max(0, max_{a in A} s_qa)
  + eta sum_{a in A} max(0+, max_q s_aq): query coverage plus relevance. Reads only the n x q
  similarities.
- ``flvmi``, PRISM's FLVMI (submodlib's ``FacilityLocationMutualInformationFunction``,
  ``magnificationEta``): I(A; Q) = sum_{i in V} min(max(0, max_{a in A} s_ia), c_i),
  c_i = max(0+, eta max_q s_iq). Needs the n x n kernel; saturates once every row is covered
  up to its query relevance c_i (one pick per cluster of relevant candidates).
- ``gcmi`` (``GraphCutMutualInformationFunction``): I(A; Q) = 2 lambda sum_{a in A} sum_q s_aq,
  modular (pure relevance); submodlib's is lambda = 0.5.
- ``logdetmi`` (``LogDeterminantMutualInformationFunction``, lambda and eta):
  log det(S_A + lambda I) - log det(S_A + lambda I - eta^2 S_AQ (S_Q + lambda I)^-1 S_AQ^T).

(0+ is the smallest positive float32, the C++ ``numeric_limits<float>::min()`` start of a max.)

The greedy loop is submodlib's: its ``std::priority_queue`` heap (the same sift steps as
``dense_greedy``, so equal bounds pop alike), singleton gains pushed from n - 1 down to 0, a
popped element re-scored and accepted when its gain is >= the next bound. Float32 terms are
summed into doubles in the C++ order, so fl/flv/gc gains agree with the library to the last bit
or nearly; logdetmi runs its Cholesky updates on the conditional kernel given Q (in doubles), so
its gains agree to rounding. ``budget == n`` is allowed (the last element gets its gain).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# The libstdc++ heap submodlib's LazyGreedy uses, replicated there step for step.
from smart_cli.dense_greedy import _is_symmetric, _pop, _push

#: The functions by name, with their code in the compiled loop.
CODES = {"flvmi": 0, "flmi": 1, "gcmi": 2, "logdetmi": 3}
_FLVMI, _FLMI, _GCMI, _LOGDETMI = 0, 1, 2, 3
#: ``std::numeric_limits<float>::min()``: where submodlib starts its maxima over the query.
FLT_MIN = np.float32(np.finfo(np.float32).tiny)


def row_caps(query_sims: np.ndarray, eta: float, block: int = 1 << 14) -> np.ndarray:
    """max(0+, max_q float32(eta s_iq)) for every row (flvmi's caps; with eta 1, flmi's relevance)."""
    eta32 = np.float32(eta)
    out = np.empty(query_sims.shape[0], dtype=np.float32)
    for lo in range(0, query_sims.shape[0], block):
        part = np.asarray(query_sims[lo : lo + block], dtype=np.float32)
        if eta32 != 1:
            part = part * eta32
        out[lo : lo + block] = np.maximum(part.max(axis=1, initial=-np.inf), FLT_MIN)
    return out


@njit(cache=True, error_model="numpy")
def _gain(code, j, kt, caps, best, qk, simq, eta32, scale, d, du) -> float:
    """The marginal gain of ``j`` given the current state."""
    if code == _FLVMI:
        g = 0.0
        row = kt[j]
        for i in range(best.shape[0]):
            b = best[i]
            c = caps[i]
            g += min(max(b, row[i]), c) - min(b, c)
        return g
    if code == _FLMI:
        g = 0.0
        row = qk[j]
        for t in range(simq.shape[0]):
            g += max(simq[t], row[t]) - simq[t]
        return g + float(np.float32(eta32 * caps[j]))  # a float32 product, as submodlib's
    if code == _GCMI:
        return caps[j] * scale  # caps holds sum_q s_jq (float64) for gcmi
    return math.log(d[j] * d[j]) - math.log(du[j] * du[j])


@njit(cache=True, error_model="numpy")
def _chol_update(m, d, c, picked, count, p) -> None:
    """Fold pick ``p`` (the ``count``-th, from 1) into every unpicked row's Schur complement of ``m``."""
    r = count - 1
    dp = d[p]
    for i in range(d.shape[0]):
        if picked[i]:
            continue
        dot = 0.0
        for s in range(r):
            dot += c[s, p] * c[s, i]
        e = (np.float64(m[p, i]) - dot) / dp
        c[r, i] = e
        d[i] = math.sqrt(d[i] * d[i] - e * e)


@njit(cache=True, error_model="numpy")
def _take(code, j, count, kt, best, qk, simq, km, cond, d, c, du, cu, picked) -> None:
    """Add ``j`` (the ``count``-th pick) to the set."""
    picked[j] = True
    if code == _FLVMI:
        row = kt[j]
        for i in range(best.shape[0]):
            if row[i] > best[i]:
                best[i] = row[i]
    elif code == _FLMI:
        row = qk[j]
        for t in range(simq.shape[0]):
            if row[t] > simq[t]:
                simq[t] = row[t]
    elif code == _LOGDETMI:
        _chol_update(km, d, c, picked, count, j)
        _chol_update(cond, du, cu, picked, count, j)


@njit(cache=True, error_model="numpy")
def _lazy(code, budget, n, kt, caps, qk, eta32, scale, km, cond, d, du, picks, gains) -> int:
    """Fills ``picks`` and ``gains``; returns how many it made (fewer: NaN gains cycle)."""
    best = np.zeros(n if code == _FLVMI else 0, dtype=np.float32)
    simq = np.zeros(qk.shape[1] if code == _FLMI else 0, dtype=np.float32)
    rows = budget if code == _LOGDETMI else 0
    c = np.zeros((rows, n))
    cu = np.zeros((rows, n))
    picked = np.zeros(n, dtype=np.bool_)
    bound = np.empty(n)
    hb, hi = np.empty(n), np.empty(n, dtype=np.int64)
    size = 0
    for j in range(n - 1, -1, -1):
        bound[j] = _gain(code, j, kt, caps, best, qk, simq, eta32, scale, d, du)
        size = _push(hb, hi, size, bound[j], j)
    fresh = np.zeros(n, dtype=np.int64)
    count, pops = 0, 0
    while count < budget:
        pops += 1
        if pops > 16 * n + 1024:
            return count
        j = hi[0]
        size = _pop(hb, hi, size)
        if fresh[j] != count:
            bound[j] = _gain(code, j, kt, caps, best, qk, simq, eta32, scale, d, du)
            fresh[j] = count
        g = bound[j]
        if size > 0 and not g >= hb[0]:
            size = _push(hb, hi, size, g, j)
            continue
        picks[count], gains[count] = j, g
        count, pops = count + 1, 0
        _take(code, j, count, kt, best, qk, simq, km, cond, d, c, du, cu, picked)
    return count


def conditional_kernel(kernel: np.ndarray, query_sims: np.ndarray, query_kernel: np.ndarray, lam: float, eta: float):
    """(S + lambda I) - eta^2 S_VQ (S_Q + lambda I)^-1 S_QV in doubles: log determinant given Q."""
    q = query_kernel.shape[0]
    cross = (np.asarray(query_sims, dtype=np.float32) * np.float32(eta)).astype(np.float64)
    inner = np.asarray(query_kernel, dtype=np.float64) + lam * np.eye(q)
    solved = np.linalg.solve(inner, cross.T) if q else np.zeros((0, cross.shape[0]))
    cond = np.asarray(kernel, dtype=np.float64) - cross @ solved
    cond[np.diag_indices_from(cond)] += lam
    return cond


def lazy_greedy(
    function: str,
    budget: int,
    *,
    query_sims: np.ndarray,
    kernel: np.ndarray | None = None,
    query_kernel: np.ndarray | None = None,
    eta: float = 1.0,
    lambda_: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``budget`` picks (int64) of lazy greedy on ``function`` and their gains (float64).

    ``query_sims``: the n x q similarities of the candidates to the query rows (float32);
    ``kernel``: the candidates' n x n kernel (``flvmi``, ``logdetmi``); ``query_kernel``: the
    query's q x q kernel (``logdetmi``). ``eta`` as in submodlib (flmi, flvmi, logdetmi);
    ``lambda_``: gcmi's 2 lambda scale, logdetmi's diagonal.
    """
    if function not in CODES:
        raise ValueError(f"unknown function {function!r}; choose from {', '.join(CODES)}")
    code = CODES[function]
    qk = np.ascontiguousarray(query_sims, dtype=np.float32)
    n = qk.shape[0]
    if qk.ndim != 2 or qk.shape[1] == 0:
        raise ValueError(f"query similarities must be n x q with q >= 1, got shape {qk.shape}")
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    empty2, empty1 = np.zeros((0, 0), dtype=np.float32), np.zeros(0)
    kt, km, cond, d, du = empty2, empty2, np.zeros((0, 0)), empty1, empty1
    if code in (_FLVMI, _LOGDETMI):
        if kernel is None or kernel.shape != (n, n):
            raise ValueError(f"{function} needs the n x n kernel of the candidates")
        km = np.ascontiguousarray(kernel, dtype=np.float32)
        kt = km if _is_symmetric(km) else km.T  # column j read as row j where the kernel allows
    if code == _FLVMI:
        caps = row_caps(qk, eta)  # float32, as submodlib's terms are float32 differences
    elif code == _FLMI:
        caps = row_caps(qk, 1.0)
    elif code == _GCMI:
        caps = _row_sums(qk)
    else:
        if query_kernel is None or query_kernel.shape != (qk.shape[1],) * 2:
            raise ValueError("logdetmi needs the q x q kernel of the query")
        caps = empty1
        cond = conditional_kernel(km, qk, query_kernel, lambda_, eta)
        d = np.sqrt(np.diag(km).astype(np.float64) + lambda_)
        du = np.sqrt(np.diag(cond).copy())
    picks = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    if budget:
        eta32, scale = np.float32(eta), 2.0 * float(lambda_)
        made = _lazy(code, budget, n, kt, caps, qk, eta32, scale, km, cond, d, du, picks, gains)
        if made < budget:
            raise ValueError(f"lazy greedy on {function} does not terminate after {made} picks: NaN gains")
    return picks, gains


@njit(cache=True)
def _row_sums(qk: np.ndarray) -> np.ndarray:
    """sum_q s_jq in doubles, q ascending (submodlib's order)."""
    out = np.zeros(qk.shape[0])
    for j in range(qk.shape[0]):
        for t in range(qk.shape[1]):
            out[j] += qk[j, t]
    return out
