"""What a mixture covers, computed in blocks over the embeddings memmap: pure numpy, no files.

* coverage (facility location, normalised): the mean over evaluation rows of the best cosine
  similarity to any mixture row;
* near-duplicate rate: the share of mixture rows whose nearest *other* mixture row is more
  similar than a threshold.

Similarities are computed block by block (a block of queries against a block of targets), so
memory stays at a few blocks whatever the sizes; the caller subsamples the evaluation rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from smart_cli import budgets, similarity

Q_BLOCK = 2048
T_BLOCK = 8192


def gather(emb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rows of a (memory-mapped) matrix as float32, read in position order for a sequential scan."""
    positions = np.asarray(positions, dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    out = np.empty((len(positions), emb.shape[1]), dtype=np.float32)
    out[order] = np.asarray(emb[positions[order]], dtype=np.float32)
    return out


def best_similarity(
    emb: np.ndarray,
    queries: np.ndarray,
    targets: np.ndarray,
    *,
    exclude_self: bool = False,
    q_block: int = Q_BLOCK,
    t_block: int = T_BLOCK,
) -> np.ndarray:
    """For every query row, its best cosine similarity to a target row (rows are unit-norm).

    ``exclude_self`` skips the pair of a row with itself (same position), for nearest-other.
    """
    queries = np.asarray(queries, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    if len(queries) == 0 or len(targets) == 0:
        return best
    q = gather(emb, queries)
    for t0 in range(0, len(targets), t_block):
        tpos = targets[t0 : t0 + t_block]
        t = gather(emb, tpos)
        t_order = np.argsort(tpos, kind="stable")
        t_sorted = tpos[t_order]
        for q0 in range(0, len(queries), q_block):
            sims = similarity.cross(q[q0 : q0 + q_block], t)
            if exclude_self:
                qpos = queries[q0 : q0 + q_block]
                at = np.minimum(np.searchsorted(t_sorted, qpos), len(t_sorted) - 1)
                hit = np.flatnonzero(t_sorted[at] == qpos)
                sims[hit, t_order[at[hit]]] = -np.inf
            np.maximum(best[q0 : q0 + q_block], sims.max(axis=1), out=best[q0 : q0 + q_block])
    return best


def coverage(emb: np.ndarray, evaluation: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """Best similarity of every evaluation row to the mixture (its mean is the coverage)."""
    return best_similarity(emb, evaluation, mixture)


def near_duplicate_rate(
    emb: np.ndarray, mixture: np.ndarray, threshold: float, rng: np.random.Generator, max_rows: int
) -> float:
    """Share of mixture rows (at most ``max_rows`` sampled) whose nearest other mixture row is > threshold."""
    if len(mixture) < 2:
        return 0.0
    probe = subsample(mixture, max_rows, rng)
    return float(np.mean(best_similarity(emb, probe, mixture, exclude_self=True) > threshold))


def subsample(positions: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``k`` of ``positions``, drawn without replacement, in ascending order."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) <= k:
        return np.sort(positions)
    return np.sort(rng.choice(positions, size=k, replace=False))


def groups(task_codes: np.ndarray, template_codes: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Positions of every (task, template) group, ascending."""
    n_templates = int(template_codes.max()) + 1 if len(template_codes) else 1
    keys = task_codes.astype(np.int64) * n_templates + template_codes
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    return {(int(k // n_templates), int(k % n_templates)): order[s:e] for k, s, e in zip(uniq, starts, ends)}


def random_rows(
    group_rows: Mapping[tuple[int, int], np.ndarray],
    counts: Mapping[tuple[int, int], int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Random rows with the given count in every (task, template) group."""
    parts = [rng.choice(group_rows[g], size=c, replace=False) for g, c in sorted(counts.items()) if c > 0]
    return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def group_counts(
    group_rows: Mapping[tuple[int, int], np.ndarray], template_names: list, task_budgets: Mapping[int, int]
) -> dict[tuple[int, int], int]:
    """Each task's budget split over its template types as select-samples splits it."""
    by_task: dict[int, dict] = {}
    for task, template in group_rows:
        by_task.setdefault(task, {})[template] = len(group_rows[(task, template)])
    out: dict[tuple[int, int], int] = {}
    for task, b in task_budgets.items():
        sizes = by_task.get(task, {})
        split = budgets.template_split(int(b), {template_names[j]: n for j, n in sizes.items()})
        index = {template_names[j]: j for j in sizes}
        out.update({(task, index[name]): c for name, c in split.items()})
    return out


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components of the rows of ``x`` (numpy SVD), signs fixed for stability."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    if x.shape[0] < 2:
        return np.zeros((x.shape[0], 2))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    comps = u[:, :2] * s[:2]
    if comps.shape[1] < 2:
        comps = np.pad(comps, ((0, 0), (0, 2 - comps.shape[1])))
    # An SVD's signs are arbitrary: make the largest entry of each component positive.
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), [0, 1]])
    return comps * np.where(signs == 0, 1, signs)
