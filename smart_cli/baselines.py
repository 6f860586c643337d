"""The paper's baseline mixtures: examples-proportional and equal mixing, random rows inside tasks.

Both write the same ``tasks.json`` as SMART's stage 1, so every later stage runs unchanged. They
mix over all tasks by default; ``--num-tasks M`` restricts them to the M largest tasks (ties in
order of first appearance). Tasks are listed largest first; a task that gets no row (a budget
rounded down to 0) is left out of the list. ``"rows": "random"`` in the file tells
``select-samples`` to draw random rows unless it is given ``--function``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from smart_cli import artifacts, budgets, defaults
from smart_cli.errors import UsageError, param

BASELINES = defaults.BASELINES
#: FLAN 2022's examples-per-task caps, by task source (Longpre et al. 2023).
FLAN2022_CAPS = {"flan2021": 30_000, "t0": 20_000, "cot": 100_000, "niv2": 5_000, "dialog": 200_000}
_SOURCE_ALIASES = {"flan": "flan2021", "p3": "t0", "natinst": "niv2", "niv2": "niv2", "dialogue": "dialog"}


def source_key(name: str | None) -> str | None:
    """A task source as a key of ``FLAN2022_CAPS``: ``Flan2021``, ``flan2021_submix_original`` -> ``flan2021``."""
    if name is None:
        return None
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    key = re.sub(r"(submix)?(original)?$", "", key)
    key = _SOURCE_ALIASES.get(key, key)
    return key if key in FLAN2022_CAPS else None


def parse_cap(value: int | str | None) -> int | str | None:
    """``None``, a positive number of rows, or the preset ``flan2022``."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() == "flan2022":
        return "flan2022"
    try:
        cap = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{param('cap')} must be a number of rows or 'flan2022', got {value!r}") from None
    if cap < 1:
        raise UsageError(f"{param('cap')} must be at least 1, got {cap}")
    return cap


def limits(sizes: Sequence[int], sources: Sequence[str | None] | None, cap: int | str | None) -> list[int]:
    """Rows each task may give: its size, capped by ``cap`` (a number or FLAN 2022's per-source caps)."""
    if cap is None:
        return [int(s) for s in sizes]
    if cap != "flan2022":
        return [min(int(s), int(cap)) for s in sizes]
    if sources is None:
        raise UsageError(
            f"{param('cap')} flan2022 needs each task's source: embed again with {param('source_column')} naming the "
            "column of flan2021 / t0 / niv2 / cot / dialog"
        )
    unknown = sorted({str(s) for s in sources if source_key(s) is None})
    if unknown:
        raise UsageError(
            f"{param('cap')} flan2022 does not know the source(s) {', '.join(unknown[:5])}; "
            f"known: {', '.join(FLAN2022_CAPS)}; use {param('cap')} N instead"
        )
    return [min(int(s), FLAN2022_CAPS[source_key(src) or ""]) for s, src in zip(sizes, sources)]


def proportional_budgets(budget: int, limits: Sequence[int]) -> list[int]:
    """Budgets proportional to the (capped) task sizes: ``budget_split``, then capped at the limits."""
    _check_room(budget, limits)
    if budget == 0:
        return [0] * len(limits)
    return budgets.cap_budgets(budgets.budget_split(budget, [float(x) for x in limits]), list(limits))


def equal_budgets(budget: int, limits: Sequence[int]) -> list[int]:
    """N'/M per task, water-filled: a task that cannot hold its share gives all its rows and the rest
    is spread evenly over the tasks with room, so budgets of tasks with room differ by at most one
    (the extra +1 goes to the first tasks in order)."""
    _check_room(budget, limits)
    lim = np.asarray(limits, dtype=np.int64)
    if budget == 0 or lim.size == 0:
        return [0] * len(lim)
    lo, hi = 0, int(lim.max())  # the largest level L with sum(min(lim, L)) <= budget
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(lim, mid).sum()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    out = np.minimum(lim, lo)
    remainder = budget - int(out.sum())
    room = np.flatnonzero(lim > lo)[:remainder]
    out[room] += 1
    return [int(b) for b in out]


def _check_room(budget: int, limits: Sequence[int]) -> None:
    if budget > sum(limits):
        raise UsageError(f"{param('budget')} {budget:,} is more than the tasks can give: at most {sum(limits):,} rows")


def order_by_size(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Task indices largest first, ties in order of first appearance."""
    arr = np.asarray(sizes, dtype=np.int64)
    return np.lexsort((np.arange(len(arr)), -arr))


def baseline_params(cfg, n_tasks: int) -> dict:
    """The parameters a baseline's ``TASKS.json`` records (and fingerprints), for ``n_tasks`` tasks in all."""
    num_tasks = n_tasks if cfg.num_tasks is None else cfg.num_tasks
    cap = parse_cap(cfg.cap)
    return {
        "function": cfg.function,
        "lambda": None,
        "num_tasks": num_tasks,
        "budget": cfg.budget,
        "seed": cfg.seed,
        "cap": cap,
    }


def select_baseline(es: artifacts.EmbeddingSet, cfg) -> artifacts.TasksDoc:
    """A ``tasks.json`` document for ``cfg.function`` in ``BASELINES`` (``cfg`` is a ``TaskConfig``)."""
    sizes = es.task_sizes()
    n_tasks = len(sizes)
    num_tasks = n_tasks if cfg.num_tasks is None else cfg.num_tasks
    if not 1 <= num_tasks <= n_tasks:
        raise UsageError(f"{param('num_tasks')} must be between 1 and {n_tasks} (the number of tasks), got {num_tasks}")
    if cfg.budget < 1:
        raise UsageError(f"{param('budget')} must be at least 1, got {cfg.budget}")
    cap = parse_cap(cfg.cap)
    picks = order_by_size(sizes)[:num_tasks]
    sources = artifacts.task_sources(es)
    picked_sources = None if sources is None else [sources[i] for i in picks]
    room = limits([int(sizes[i]) for i in picks], picked_sources, cap)
    if cfg.function == "proportional":
        task_budgets = proportional_budgets(cfg.budget, room)
        weights = np.asarray(room, dtype=np.float64) / max(sum(room), 1)
    else:
        task_budgets = equal_budgets(cfg.budget, room)
        weights = np.full(len(room), 1.0 / len(room))
    params = baseline_params(cfg, n_tasks)
    tasks: list[artifacts.TaskEntry] = [
        # No submodular score: every gain is 1, as for the random baseline.
        {"task": es.task_names[i], "gain": 1.0, "weight": float(w), "budget": int(b), "size": int(sizes[i])}
        for i, w, b in zip(picks, weights, task_budgets)
        if b > 0
    ]
    return artifacts.tasks_document(es, params, tasks, rows="random")
