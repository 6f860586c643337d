"""What ``select-tasks`` and ``select-samples`` call when given ``--query``: the objective and its
checks, what the artifacts record, stage 1's task order and stage 2's picks inside one group.

Stage 1 scores the tasks' mean embeddings against the query rows; its gains then go through
SMART's Taylor softmax, budget split and caps unchanged. Stage 2 runs inside every (task,
template) group against the same query rows, on the dense path (n x n kernel) or, above the
dense limit, on the sparse one (``targeted.sparse``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from smart_cli import defaults
from smart_cli.artifacts import EmbeddingSet
from smart_cli.errors import DataError, UsageError, param
from smart_cli.submodular import Objective
from smart_cli.targeted.query import load_query

#: The untargeted function whose memory model sets each MI function's default dense limit.
KERNEL_OF = {"flvmi": "fl", "flmi": "fl", "gcmi": "fl", "logdetmi": "logdet"}
#: Which parameters each function reads.
USES_ETA = ("flvmi", "flmi", "logdetmi")
USES_LAMBDA = ("gcmi", "logdetmi")


@dataclass(frozen=True)
class QueryObjective(Objective):
    """A mutual-information function with the query rows: its name, lambda (gcmi, logdetmi) and eta."""

    eta: float | None = None


def _number(name: str, value: Any) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise UsageError(f"{param(name)} must be a finite number >= 0, got {value!r}")


def query_objective(
    function: str | None, lambda_: float | None, eta: float | None, query: Any
) -> QueryObjective | None:
    """The targeted objective, or None where there is no query (and nothing asks for one).

    ``function`` None with a query means ``defaults.QUERY_FUNCTION``. Refuses: an MI function or
    ``eta`` without a query, a query with a function that ignores it, a parameter the function
    does not read, logdetmi's eta above 1 (its kernel is then not positive definite).
    """
    fn = param("function")
    if query is None:
        if function in defaults.MI_FUNCTIONS:
            raise UsageError(f"{fn} {function} selects toward a query set: give {param('query')} QEMB")
        if eta is not None:
            raise UsageError(f"{param('eta')} applies only with {param('query')} (functions flvmi, flmi, logdetmi)")
        return None
    name = function or defaults.QUERY_FUNCTION
    if name not in defaults.MI_FUNCTIONS:
        choices = ", ".join(defaults.MI_FUNCTIONS)
        raise UsageError(f"{param('query')} selects by mutual information: {fn} must be one of {choices}, not {name}")
    if lambda_ is not None and name not in USES_LAMBDA:
        raise UsageError(f"{param('lambda_')} does not apply to {fn} {name} (only gcmi and logdetmi)")
    if eta is not None and name not in USES_ETA:
        raise UsageError(f"{param('eta')} does not apply to {fn} {name} (only flvmi, flmi and logdetmi)")
    for pname, value in (("lambda_", lambda_), ("eta", eta)):
        if value is not None:
            _number(pname, value)
    if name == "logdetmi" and eta is not None and eta > 1:
        raise UsageError(
            f"{param('eta')} must be at most 1 for logdetmi (its kernel is not positive definite above), got {eta}"
        )
    lam = (lambda_ if lambda_ is not None else defaults.MI_LAMBDA[name]) if name in USES_LAMBDA else None
    return QueryObjective(
        name,
        None if lam is None else float(lam),
        float(eta if eta is not None else defaults.ETA) if name in USES_ETA else None,
    )


def query_params(objective: Objective, query: Any, es: EmbeddingSet | None = None) -> dict:
    """What an artifact records and fingerprints of the query: nothing for untargeted selection
    (so its files keep their bytes); else eta and the query's identity (checked against ``es``)."""
    if not isinstance(objective, QueryObjective):
        return {}
    ref, _ = load_query(query, es)
    return {**({"eta": objective.eta} if objective.eta is not None else {}), "query": ref}


def maximize(rows: np.ndarray, query: np.ndarray, budget: int, objective: QueryObjective, backend: str):
    """The dense path's picks and gains (lambda and eta filled in), a usage error where greedy cannot go on."""
    from smart_cli.targeted.dense import maximize as dense

    eta = objective.eta if objective.eta is not None else defaults.ETA
    lam = objective.lambda_ if objective.lambda_ is not None else 1.0
    try:
        return dense(rows, query, budget, objective.name, eta=eta, lambda_=lam, backend=backend)
    except ValueError as exc:  # logdetmi with lambda 0 beyond the kernel's rank
        raise DataError(f"{param('function')} {objective.name}: {exc}; use a larger {param('lambda_')}") from None


def task_order(es: EmbeddingSet, cfg: Any, objective: QueryObjective, reporter) -> tuple[np.ndarray, np.ndarray]:
    """The first M' tasks by greedy mutual information of their means with the query rows, and
    the gains; the full order is kept in ``EMB_DIR/cache/`` keyed by the query's identity too."""
    from smart_cli.order_cache import OrderCache, task_key
    from smart_cli.task_means import task_means

    ref, query = load_query(cfg.query, es)
    m, n = cfg.num_tasks, len(es.task_names)
    cache = OrderCache(es.path, "tasks", enabled=not cfg.no_cache)
    key = {**task_key(es, objective, cfg), "query": ref, "eta": objective.eta}
    key["options"] = {k: v for k, v in key["options"].items() if k not in ("query", "eta")}  # the path: not content
    hit = cache.get(key, m)
    if hit is not None:
        return hit
    budget = n if cache.enabled else m
    means = task_means(es, reporter=reporter)
    with reporter.progress(f"selecting tasks ({objective.name} with {len(query):,} query rows)", budget) as advance:
        picks, gains = maximize(means, query, budget, objective, cfg.greedy_backend)
        advance(budget)
    cache.put(key, picks, gains)
    return picks[:m], gains[:m]


def pick_rows(
    rows: np.ndarray, budget: int, objective: QueryObjective, cfg: Any, path: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One group's picks (positions in ``rows``) and gains against the query rows of ``cfg.query``."""
    _, query = load_query(cfg.query)
    if path == "dense":
        return maximize(rows, query, budget, objective, cfg.greedy_backend)
    from smart_cli.targeted.sparse import sparse_greedy

    eta = objective.eta if objective.eta is not None else defaults.ETA
    lam = objective.lambda_ if objective.lambda_ is not None else 1.0
    return sparse_greedy(
        rows, query, budget, objective.name, eta=eta, lambda_=lam, k=cfg.knn, seed=seed, optimizer=cfg.optimizer
    )


def prepare_samples(cfg: Any, objective: Objective, es: EmbeddingSet) -> Any:
    """``cfg`` for a targeted select-samples run: the query checked against ``es`` before any work,
    and the group order cache off (its key holds the query's path, not its content)."""
    if not isinstance(objective, QueryObjective):
        return cfg
    import dataclasses

    load_query(cfg.query, es)
    return dataclasses.replace(cfg, no_cache=True)


def sparse_refused(objective: Objective) -> bool:
    """Whether a group above the dense limit must be refused (log determinant, targeted or not)."""
    return objective.name in ("logdet", "logdetmi")
