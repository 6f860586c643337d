"""An independent, literal implementation of the spec's reference semantics, for agreement tests.

Written from SMART_SPEC.md without the package's code paths: pandas grouping, sklearn cosine,
direct submodlib calls, and budgets handed out one unit at a time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import submodlib.functions as fns
from sklearn.metrics.pairwise import cosine_similarity

FLAN = ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"]


def split(budget, ratio):
    parts = [math.floor(budget * r / sum(ratio)) for r in ratio]
    for i in range(budget - sum(parts)):
        parts[i % len(parts)] += 1
    return parts


def task_budgets(gains, sizes, total):
    numer = [1 + g + g * g / 2 for g in gains]
    parts = split(total, [x / sum(numer) for x in numer])
    excess = 0
    for i, s in enumerate(sizes):
        if parts[i] > s:
            excess += parts[i] - s
            parts[i] = s
    while excess > 0:
        for i, s in enumerate(sizes):
            if parts[i] < s:
                parts[i] += 1
                excess -= 1
                if excess == 0:
                    break
    return parts


def greedy(kind, kernel, budget):
    n = kernel.shape[0]
    kernel = kernel.astype(np.float32)
    if kind == "fl":
        fn = fns.facilityLocation.FacilityLocationFunction(n=n, mode="dense", sijs=kernel, separate_rep=False)
    else:
        fn = fns.graphCut.GraphCutFunction(n=n, mode="dense", ggsijs=kernel, lambdaVal=0.4, separate_rep=False)
    return fn.maximize(budget=budget, optimizer="LazyGreedy", show_progress=False)


def template_budgets(budget, counts):
    zs, fs = counts[0] + counts[1], counts[2] + counts[3]
    out = [0, 0, 0, 0]
    if fs == 0:
        halves = [(budget, (0, 1))]
    elif zs == 0:
        halves = [(budget, (2, 3))]
    else:
        b_zs, b_fs = split(budget, [zs, fs])
        halves = [(b_zs, (0, 1)), (b_fs, (2, 3))]
    for b, (i, j) in halves:
        if counts[i] and counts[j]:
            out[i], out[j] = split(b, [counts[i], counts[j]])
        else:
            out[i if counts[i] else j] = b
    return out


def reference_mixture(emb_dir, num_tasks, budget, task_fn="gc", sample_fn="fl"):
    """(tasks in greedy order, their budgets, set of selected source rows)."""
    emb = np.load(f"{emb_dir}/embeddings.npy", allow_pickle=False).astype(np.float32)
    rows = pd.read_parquet(f"{emb_dir}/rows.parquet")
    tasks = list(pd.unique(rows["task"]))
    means = np.stack([emb[(rows["task"] == t).to_numpy()].mean(axis=0) for t in tasks])
    picks = greedy(task_fn, cosine_similarity(means), num_tasks)
    chosen = [tasks[i] for i, _ in picks]
    sizes = [int((rows["task"] == t).sum()) for t in chosen]
    budgets = task_budgets([g for _, g in picks], sizes, budget)
    selected = set()
    for task, b in zip(chosen, budgets):
        in_task = rows[rows["task"] == task]
        if in_task["template_type"].isna().all():  # no template column: the task is one group
            parts = [(in_task, b)]
        else:
            counts = [int((in_task["template_type"] == tt).sum()) for tt in FLAN]
            parts = [(in_task[in_task["template_type"] == tt], tb) for tt, tb in zip(FLAN, template_budgets(b, counts))]
        for group, tb in parts:
            if tb == 0:
                continue
            if tb == len(group):
                selected.update(group["row"].tolist())
                continue
            positions = group.index.to_numpy()
            vectors = emb[positions].astype(np.float64)  # unit rows: cosine is the plain product
            # The products of the float32 rows, exact in float64 and rounded once (the kernel the README
            # defines): a float32 product's last bits depend on the BLAS and the CPU, and so do its ties.
            order = greedy(sample_fn, (vectors @ vectors.T).astype(np.float32), tb)
            selected.update(int(group["row"].iloc[i]) for i, _ in order)
    return chosen, budgets, selected
