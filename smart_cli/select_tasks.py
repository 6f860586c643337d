"""Stage 1: score tasks with a submodular function and turn the scores into per-task budgets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smart_cli import artifacts, budgets, console
from smart_cli.artifacts import EmbeddingSet
from smart_cli.baselines import BASELINES, select_baseline
from smart_cli.errors import DataError, UsageError
from smart_cli.submodular import FUNCTIONS, Objective, maximize

TASK_FUNCTIONS = (*FUNCTIONS, *BASELINES)


@dataclass
class TaskConfig:
    """Defaults of ``smart-cli select-tasks`` (the paper's: graph cut, lambda 0.4, seed 23).

    ``num_tasks`` may be ``None`` only for the baselines (``proportional``, ``equal``): all tasks.
    ``cap`` (rows per task, or ``"flan2022"``) applies to the baselines only.
    """

    num_tasks: int | None
    budget: int
    function: str = "gc"
    lambda_: float | None = None
    seed: int = 23
    cap: int | str | None = None

    def objective(self) -> Objective:
        """The function to maximise; also checks the options fit together (before any work)."""
        if self.function not in TASK_FUNCTIONS:
            raise UsageError(f"unknown --function {self.function!r}; choose from {', '.join(TASK_FUNCTIONS)}")
        if self.function in BASELINES:
            if self.lambda_ is not None:
                raise UsageError(f"--lambda does not apply to --function {self.function}")
            return Objective(self.function)  # a baseline: no submodular function, see baselines.py
        if self.num_tasks is None:
            raise UsageError(
                f"--num-tasks is required for --function {self.function} (only proportional and equal "
                "default to all tasks)"
            )
        if self.cap is not None:
            raise UsageError(f"--cap applies to --function proportional or equal, not {self.function}")
        return Objective.of(self.function, self.lambda_)


def task_means(es: EmbeddingSet, chunk_rows: int | None = None) -> np.ndarray:
    """Plain mean of each task's row embeddings, in one streaming pass over the memmap."""
    from scipy import sparse

    if chunk_rows is None:  # a float64 block of at most 256 MB, whatever the dimension
        chunk_rows = max(1, (256 << 20) // (8 * max(1, es.embeddings.shape[1])))
    n_tasks = len(es.task_names)
    sums = np.zeros((n_tasks, es.embeddings.shape[1]), dtype=np.float64)
    n = es.embeddings.shape[0]
    zeros: list[np.ndarray] = []
    with console.progress("task means", n) as advance:
        for lo in range(0, n, chunk_rows):
            hi = min(lo + chunk_rows, n)
            block = np.asarray(es.embeddings[lo:hi], dtype=np.float64)
            # The pass reads every vector anyway: refuse NaN and unrecorded zero rows here.
            zeros.append(es.check_block(block, np.arange(lo, hi)))
            codes = es.task_codes[lo:hi]
            onehot = sparse.csr_matrix((np.ones(hi - lo), (codes, np.arange(hi - lo))), shape=(n_tasks, hi - lo))
            sums += onehot @ block
            artifacts.release_pages(es.embeddings)  # the pass maps every page: do not keep them resident
            advance(hi - lo)
    es.check_zero_total(zeros)
    return sums / es.task_sizes()[:, None]


def check_request(cfg: TaskConfig, sizes: np.ndarray) -> None:
    """Refuse an impossible request before any work, saying the limit."""
    n_tasks = len(sizes)
    if cfg.num_tasks is None or not 1 <= cfg.num_tasks <= n_tasks:
        raise UsageError(f"--num-tasks must be between 1 and {n_tasks} (the number of tasks), got {cfg.num_tasks}")
    if cfg.budget < 1:
        raise UsageError(f"--budget must be at least 1, got {cfg.budget}")
    most = int(np.sort(sizes)[::-1][: cfg.num_tasks].sum())
    if cfg.budget > most:
        raise UsageError(f"--budget {cfg.budget:,} is more than any {cfg.num_tasks} tasks hold: at most {most:,} rows")


def select_tasks(es: EmbeddingSet, cfg: TaskConfig) -> dict:
    """Pick ``num_tasks`` tasks in greedy order and split ``budget`` rows among them."""
    objective = cfg.objective()
    if objective.name in BASELINES:
        return select_baseline(es, cfg)
    assert cfg.num_tasks is not None  # objective() refuses None outside the baselines
    sizes = es.task_sizes()
    check_request(cfg, sizes)
    rng = np.random.default_rng(cfg.seed)
    means = task_means(es) if objective.name != "random" else np.empty((len(sizes), 0))
    with console.progress(f"selecting tasks ({objective.name})", cfg.num_tasks) as advance:
        picks, gains = maximize(means, cfg.num_tasks, objective, rng)
        advance(cfg.num_tasks)
    picked_sizes = [int(sizes[i]) for i in picks]
    if sum(picked_sizes) < cfg.budget:
        raise DataError(
            f"the {cfg.num_tasks} selected tasks hold {sum(picked_sizes):,} rows, fewer than --budget "
            f"{cfg.budget:,}: use a budget of at most {sum(picked_sizes):,} or more tasks"
        )
    weights, task_budgets = budgets.task_budgets(gains.tolist(), picked_sizes, cfg.budget)
    params = {
        "function": objective.name,
        "lambda": objective.lambda_,
        "num_tasks": cfg.num_tasks,
        "budget": cfg.budget,
        "seed": cfg.seed,
    }
    tasks = [
        {"task": es.task_names[i], "gain": float(g), "weight": float(w), "budget": int(b), "size": s}
        for i, g, w, b, s in zip(picks, gains, weights, task_budgets, picked_sizes)
    ]
    return {
        "format": "smart-cli/tasks",
        "producer": artifacts.producer(),
        "embeddings": {"fingerprint": es.fingerprint, "rows": int(es.embeddings.shape[0]), "tasks": len(sizes)},
        "dataset": es.meta.get("dataset"),
        "columns": es.meta.get("columns"),
        **params,
        # The paper's random baseline draws random rows too: select-samples follows unless told.
        **({"rows": "random"} if objective.name == "random" else {}),
        "fingerprint": artifacts.fingerprint({"embeddings": es.fingerprint, **params}),
        "tasks": tasks,
    }


def summary_table(doc: dict, limit: int = 20):
    """A rich table of the chosen tasks and budgets, for stderr."""
    from rich.table import Table

    table = Table(title=f"{len(doc['tasks'])} tasks, {doc['budget']:,} rows ({doc['function']})")
    for name, justify in (
        ("#", "right"),
        ("task", "left"),
        ("gain", "right"),
        ("weight", "right"),
        ("budget", "right"),
        ("size", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rank, t in enumerate(doc["tasks"][:limit], 1):
        table.add_row(
            str(rank), t["task"], f"{t['gain']:.4f}", f"{t['weight']:.4f}", f"{t['budget']:,}", f"{t['size']:,}"
        )
    if len(doc["tasks"]) > limit:
        table.add_row("…", f"{len(doc['tasks']) - limit} more", "", "", "", "")
    return table


def load_tasks(path, es: EmbeddingSet | None = None) -> dict:
    """Read a ``TASKS.json`` and check it belongs to ``es`` and names tasks that exist."""
    doc = artifacts.read_json(path, "tasks file")
    if doc.get("format") != "smart-cli/tasks" or not isinstance(doc.get("tasks"), list):
        raise DataError(f"{path} is not a tasks file written by smart-cli select-tasks")
    _check_tasks_doc(path, doc)
    if es is not None:
        if (doc.get("embeddings") or {}).get("fingerprint") != es.fingerprint:
            raise DataError(
                f"{path} was made from other embeddings than {es.path} (fingerprints differ): "
                "run select-tasks again on this embeddings folder"
            )
        known = dict(zip(es.task_names, es.task_sizes().tolist()))
        unknown = [t["task"] for t in doc["tasks"] if t["task"] not in known]
        if unknown:
            raise DataError(f"{path} names tasks not in {es.path}: {', '.join(map(repr, unknown[:5]))}")
        for t in doc["tasks"]:
            if t["size"] != known[t["task"]]:
                raise DataError(
                    f"{path} says task {t['task']!r} has {t['size']:,} rows but {es.path} has "
                    f"{known[t['task']]:,}: they do not belong together"
                )
    return doc


def _check_tasks_doc(path, doc: dict) -> None:
    """Refuse a tasks file whose entries are malformed or whose budgets do not add up (an edited file)."""

    def count(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(doc.get("embeddings"), dict) or not isinstance(doc.get("fingerprint"), str):
        raise DataError(f"{path} lacks its provenance ('embeddings', 'fingerprint'): not written by smart-cli")
    if not doc["tasks"]:
        raise DataError(f"{path} lists no tasks")
    for t in doc["tasks"]:
        if not isinstance(t, dict) or not {"task", "budget", "size"} <= set(t):
            raise DataError(f"{path}: every task needs 'task', 'budget' and 'size'")
        if not isinstance(t["task"], str) or not count(t["budget"]) or not count(t["size"]):
            raise DataError(f"{path}: task {t['task']!r} needs a name and whole numbers >= 0 as budget and size")
        if t["budget"] > t["size"]:
            raise DataError(f"{path}: task {t['task']!r} has budget {t['budget']:,} but only {t['size']:,} rows")
    names = [t["task"] for t in doc["tasks"]]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path} lists tasks more than once: {', '.join(map(repr, twice[:5]))}")
    total = sum(t["budget"] for t in doc["tasks"])
    if not count(doc.get("budget")) or total != doc["budget"]:
        raise DataError(f"{path}: the tasks' budgets add up to {total:,}, not the file's budget {doc.get('budget')!r}")
