"""Stage 1: score tasks with a submodular function and turn the scores into per-task budgets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, budgets, defaults
from smart_cli.artifacts import EmbeddingSet, TaskEntry, TasksDoc
from smart_cli.baselines import baseline_params, select_baseline
from smart_cli.errors import DataError, UsageError, param
from smart_cli.executor import Executor
from smart_cli.order_cache import OrderCache, task_key
from smart_cli.reporter import Reporter, or_silent
from smart_cli.stage import Summary
from smart_cli.submodular import FUNCTIONS, Objective, backend_param, check_backend, maximize
from smart_cli.targeted import QueryObjective, query_objective, query_params
from smart_cli.targeted import task_order as query_task_order
from smart_cli.task_means import stage1_means

TASK_FUNCTIONS = (*FUNCTIONS, *defaults.MI_FUNCTIONS, *defaults.BASELINES)


@dataclass
class TaskConfig:
    """Defaults of ``smart-cli select-tasks`` (the paper's: graph cut, lambda 0.4, seed 23).

    ``num_tasks`` may be ``None`` only for the baselines (``proportional``, ``equal``): all tasks.
    ``cap`` (rows per task, or ``"flan2022"``) applies to the baselines only. ``function`` None:
    ``gc``, or with a ``query`` (an ``EMB_DIR`` of target examples) ``flmi`` (``targeted/``).
    """

    num_tasks: int | None
    budget: int
    function: str | None = None
    lambda_: float | None = None
    seed: int = defaults.SEED
    cap: int | str | None = None
    #: Neither read nor write ``EMB_DIR/cache/`` (the full task order of earlier runs; same output).
    no_cache: bool = False
    #: The dense lazy greedy: ``smart`` (this package's engine) or ``submodlib`` (the library); same picks.
    greedy_backend: str = defaults.GREEDY_BACKENDS[0]
    #: Targeted selection: an ``EMB_DIR`` of target examples, and eta of flmi, flvmi, logdetmi.
    query: str | Path | None = None
    eta: float | None = None

    def objective(self) -> Objective:
        """The function to maximise; also checks the options fit together (before any work)."""
        function = param("function")
        check_backend(self.greedy_backend)
        name = self.function or (defaults.QUERY_FUNCTION if self.query is not None else defaults.TASK_FUNCTION)
        if name not in TASK_FUNCTIONS:
            raise UsageError(f"unknown {function} {name!r}; choose from {', '.join(TASK_FUNCTIONS)}")
        targeted = query_objective(name, self.lambda_, self.eta, self.query)  # None without a query
        if name in defaults.BASELINES:
            if self.lambda_ is not None:
                raise UsageError(f"{param('lambda_')} does not apply to {function} {name}")
            return Objective(name)  # a baseline: no submodular function, see baselines.py
        if self.num_tasks is None:
            raise UsageError(
                f"{param('num_tasks')} is required for {function} {name} (only proportional and equal "
                "default to all tasks)"
            )
        if self.cap is not None:
            raise UsageError(f"{param('cap')} applies to {function} proportional or equal, not {name}")
        return targeted or Objective.of(name, self.lambda_)


def check_request(cfg: TaskConfig, sizes: np.ndarray) -> None:
    """Refuse an impossible request before any work, saying the limit."""
    n_tasks = len(sizes)
    num_tasks, budget = param("num_tasks"), param("budget")
    if cfg.num_tasks is None or not 1 <= cfg.num_tasks <= n_tasks:
        raise UsageError(f"{num_tasks} must be between 1 and {n_tasks} (the number of tasks), got {cfg.num_tasks}")
    if cfg.budget < 1:
        raise UsageError(f"{budget} must be at least 1, got {cfg.budget}")
    most = int(np.sort(sizes)[::-1][: cfg.num_tasks].sum())
    if cfg.budget > most:
        raise UsageError(f"{budget} {cfg.budget:,} is more than any {cfg.num_tasks} tasks hold: at most {most:,} rows")


def select_tasks(es: EmbeddingSet, cfg: TaskConfig, reporter: Reporter | None = None) -> TasksDoc:
    """Pick ``num_tasks`` tasks in greedy order and split ``budget`` rows among them."""
    objective = cfg.objective()
    if objective.name in defaults.BASELINES:
        return select_baseline(es, cfg)
    assert cfg.num_tasks is not None  # objective() refuses None outside the baselines
    reporter = or_silent(reporter)
    sizes = es.task_sizes()
    check_request(cfg, sizes)
    picks, gains = task_order(es, cfg, objective, reporter)
    picked_sizes = [int(sizes[i]) for i in picks]
    if sum(picked_sizes) < cfg.budget:
        raise DataError(
            f"the {cfg.num_tasks} selected tasks hold {sum(picked_sizes):,} rows, fewer than {param('budget')} "
            f"{cfg.budget:,}: use a budget of at most {sum(picked_sizes):,} or more tasks"
        )
    weights, task_budgets = budgets.task_budgets(gains.tolist(), picked_sizes, cfg.budget)
    params = task_params(es, cfg, objective)
    tasks: list[TaskEntry] = [
        {"task": es.task_names[i], "gain": float(g), "weight": float(w), "budget": int(b), "size": s}
        for i, g, w, b, s in zip(picks, gains, weights, task_budgets, picked_sizes)
    ]
    # The paper's random baseline draws random rows too: select-samples follows unless told.
    return artifacts.tasks_document(es, params, tasks, rows="random" if objective.name == "random" else None)


def task_order(es: EmbeddingSet, cfg: TaskConfig, objective: Objective, reporter: Reporter) -> tuple:
    """The first M' greedy picks and their gains: a prefix of the full order (M' = all tasks), computed
    once per function and parameters and kept in ``EMB_DIR/cache/``, unless ``cfg.no_cache``.

    Greedy orders are nested, M' = all included (``submodular.lazy_greedy`` appends the last task
    with its gain, which is the next greedy pick), so the prefix equals a direct run of M'. Not
    ``random``: ``Generator.choice`` of M' tasks is not a prefix of M' + 1 draws.
    """
    assert cfg.num_tasks is not None
    if isinstance(objective, QueryObjective):  # toward a query set: mutual information (targeted/)
        return query_task_order(es, cfg, objective, reporter)
    m, n = cfg.num_tasks, len(es.task_names)
    cache = OrderCache(es.path, "tasks", enabled=not cfg.no_cache and objective.name != "random")
    key = task_key(es, objective, cfg)
    hit = cache.get(key, m)
    if hit is not None:
        return hit
    budget = n if cache.enabled else m
    means = stage1_means(es, reporter=reporter) if objective.name != "random" else np.empty((n, 0))
    with reporter.progress(f"selecting tasks ({objective.name})", budget) as advance:
        picks, gains = maximize(means, budget, objective, np.random.default_rng(cfg.seed), cfg.greedy_backend)
        advance(budget)
    cache.put(key, picks, gains)
    return picks[:m], gains[:m]


def task_params(es: EmbeddingSet, cfg: TaskConfig, objective: Objective) -> dict:
    """The parameters ``TASKS.json`` records and fingerprints (known before any work)."""
    if objective.name in defaults.BASELINES:
        return baseline_params(cfg, len(es.task_names))
    return {
        "function": objective.name,
        "lambda": objective.lambda_,
        "num_tasks": cfg.num_tasks,
        "budget": cfg.budget,
        "seed": cfg.seed,
        **backend_param(cfg.greedy_backend),
        **query_params(objective, cfg.query, es),  # nothing without a query: the same bytes as before
    }


def show_tasks(reporter: Reporter, doc: TasksDoc, limit: int = 20) -> None:
    """The chosen tasks and their budgets as a table."""
    columns = [("#", "right"), ("task", "left"), ("gain", "right"), ("weight", "right")]
    columns += [("budget", "right"), ("size", "right")]
    rows = [
        [str(rank), t["task"], f"{t['gain']:.4f}", f"{t['weight']:.4f}", f"{t['budget']:,}", f"{t['size']:,}"]
        for rank, t in enumerate(doc["tasks"][:limit], 1)
    ]
    if len(doc["tasks"]) > limit:
        rows.append(["…", f"{len(doc['tasks']) - limit} more", "", "", "", ""])
    reporter.table(f"{len(doc['tasks'])} tasks, {doc['budget']:,} rows ({doc['function']})", columns, rows)


@dataclass(frozen=True)
class TasksSummary(Summary):
    command = "select-tasks"
    tasks: int
    budget: int
    function: str
    fingerprint: str
    sha256: str


def run(
    inputs: Path | EmbeddingSet,
    out: Path,
    cfg: TaskConfig,
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> TasksSummary:
    """Select tasks from the ``EMB_DIR`` ``inputs`` into ``TASKS.json`` at ``out``."""
    reporter = or_silent(reporter)
    objective = cfg.objective()  # an unknown function is a usage error before the embeddings are opened
    es = artifacts.as_embeddings(inputs)
    fingerprint = artifacts.fingerprint({"embeddings": es.fingerprint, **task_params(es, cfg, objective)})
    doc = artifacts.tasks_current(out, es, fingerprint) if Path(out).is_file() else None
    if doc is not None:  # the same embeddings and parameters as the file records: keep it (and its mtime)
        reporter.log(f"{out} is up to date (same embeddings and parameters)", "green")
    else:
        doc = select_tasks(es, cfg, reporter)
        artifacts.write_tasks(out, doc)
    show_tasks(reporter, doc)
    return TasksSummary(
        out=Path(out),
        tasks=len(doc["tasks"]),
        budget=doc["budget"],
        function=doc["function"],
        fingerprint=doc["fingerprint"],
        sha256=artifacts.sha256_file(out),
    )
