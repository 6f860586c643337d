"""What a targeted mixture bought: query coverage and relevance, against untargeted SMART of the same
M' and N' and against random rows. Pure computations over an ``EMB_DIR`` and a query's vectors,
shared by ``smart-cli report`` and ``scripts/bench_targeted.py``.

- query coverage: mean over the query rows of the best cosine to any row of the mixture;
- relevance of a row: its best cosine to any query row (a task's: the mean over its mixture rows).
"""

from __future__ import annotations

import numpy as np

from smart_cli import budgets, defaults, similarity
from smart_cli.artifacts import EmbeddingSet
from smart_cli.targeted.dense import unit_rows

#: Rows scored against the query at once.
BLOCK = 1 << 14
#: Groups up to this size take the dense FL path in ``smart_positions`` (larger: the kNN graph).
DENSE_ROWS = 4000


def best_to(query: np.ndarray, emb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """For every query row, its best cosine to the rows ``positions`` of ``emb`` (read in blocks)."""
    query = unit_rows(query)
    best = np.full(len(query), -np.inf, dtype=np.float32)
    for lo in range(0, len(positions), BLOCK):
        block = unit_rows(np.asarray(emb[np.sort(positions[lo : lo + BLOCK])]))
        np.maximum(best, similarity.cross(query, block).max(axis=1), out=best)
    return best


def relevance(query: np.ndarray, emb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Every row's best cosine to any query row, in the order of ``positions``."""
    query = unit_rows(query)
    out = np.empty(len(positions), dtype=np.float32)
    for lo in range(0, len(positions), BLOCK):
        pos = positions[lo : lo + BLOCK]
        order = np.argsort(pos, kind="stable")
        block = unit_rows(np.asarray(emb[pos[order]]))
        out[lo + order] = similarity.cross(block, query).max(axis=1)
    return out


def smart_positions(es: EmbeddingSet, num_tasks: int, budget: int, means: np.ndarray | None = None) -> np.ndarray:
    """The rows untargeted SMART picks with its defaults (graph cut lambda 0.4 over the task means,
    facility location inside every (task, template) group; kNN graph above ``DENSE_ROWS``)."""
    from smart_cli.sparse import sparse_greedy
    from smart_cli.submodular import Objective, maximize
    from smart_cli.task_means import task_means

    means = task_means(es) if means is None else means
    rng = np.random.default_rng(defaults.SEED)
    picks, gains = maximize(means, num_tasks, Objective.of(defaults.TASK_FUNCTION), rng)
    sizes = es.task_sizes()
    budget = min(budget, int(sizes[picks].sum()))
    _, task_budgets = budgets.task_budgets(gains.tolist(), [int(sizes[i]) for i in picks], budget)
    fl, out = Objective.of(defaults.SAMPLE_FUNCTION), []
    order = np.argsort(es.task_codes, kind="stable")  # each task's rows, ascending, in one sort
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for code, b in zip(picks.tolist(), task_budgets):
        rows = order[starts[code] : starts[code + 1]]
        templates = es.template_codes[rows]
        counts = {es.template_names[t]: int((templates == t).sum()) for t in np.unique(templates)}
        for name, part in budgets.template_split(int(b), counts).items():
            group = rows[templates == es.template_names.index(name)]
            if part == 0 or part == len(group):
                out.append(group[:part])
                continue
            emb = np.asarray(es.embeddings[group], dtype=np.float32)
            if len(group) <= DENSE_ROWS:
                idx, _ = maximize(emb, part, fl, rng)
            else:
                idx, _ = sparse_greedy(emb, part, function="fl", seed=defaults.SEED)
            out.append(group[idx])
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def compare(
    es: EmbeddingSet,
    positions: np.ndarray,
    query: np.ndarray,
    num_tasks: int,
    draws: int = 3,
    seed: int = defaults.SEED,
) -> dict:
    """Query coverage and mean relevance of the mixture ``positions``, of untargeted SMART with the same
    M' and N', and of ``draws`` sets of N' random rows of the collection; per-task relevance."""
    smart = smart_positions(es, num_tasks, len(positions))
    rng = np.random.default_rng([seed, 5])
    randoms = [rng.choice(len(es.task_codes), size=len(positions), replace=False) for _ in range(draws)]
    rel = relevance(query, es.embeddings, positions)
    tasks = {}
    for code in np.unique(es.task_codes[positions]).tolist():
        mine = es.task_codes[positions] == code
        tasks[es.task_names[code]] = {"rows": int(mine.sum()), "relevance": float(rel[mine].mean())}
    return {
        "query_rows": int(len(query)),
        "ours": {"coverage": float(best_to(query, es.embeddings, positions).mean()), "relevance": float(rel.mean())},
        "smart": {
            "coverage": float(best_to(query, es.embeddings, smart).mean()),
            "relevance": float(relevance(query, es.embeddings, smart).mean()),
            "tasks": sorted({es.task_names[c] for c in es.task_codes[smart].tolist()}),
        },
        "random": {
            "coverage": float(np.mean([best_to(query, es.embeddings, r).mean() for r in randoms])),
            "relevance": float(np.mean([relevance(query, es.embeddings, r).mean() for r in randoms])),
        },
        "tasks": tasks,
    }
