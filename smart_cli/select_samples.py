"""Stage 2: pick representative, non-redundant rows inside every (task, template type) group.

Each group takes one of two paths. A group of at most ``max_dense_rows`` rows goes to the dense
reference path (submodlib's lazy greedy over the n x n cosine kernel); a larger one to the kNN
graph of ``sparse.py`` (facility location and graph cut; log determinant has no sparse path and
is refused for such a group). The default limit comes from the memory available: see
``default_max_dense_rows``. Groups can run in parallel processes (``workers``); every group has
its own seed, and results are assembled in plan order, so the output does not depend on
``workers``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, budgets, manifest, targeted
from smart_cli.artifacts import EmbeddingSet, OpenEmbeddings, TasksDoc
from smart_cli.dense_limit import (
    DENSE_BYTES_PER_ENTRY,
    DENSE_MEMORY_CAP,
    group_bytes,
    kernel_rows,
)
from smart_cli.errors import DataError, UsageError, param
from smart_cli.executor import Executor, InProcess, WorkerDied, for_workers
from smart_cli.order_cache import GroupOrders
from smart_cli.reporter import Reporter, or_silent
from smart_cli.sample_config import SampleConfig
from smart_cli.stage import Summary
from smart_cli.submodular import Objective, backend_param, kernel_param, maximize


@dataclass
class Group:
    """One (task, template type) group: its rows (positions in EMB_DIR) and its budget."""

    task_code: int
    template_code: int
    positions: np.ndarray
    budget: int


def plan(es: EmbeddingSet, tasks_doc: TasksDoc) -> list[Group]:
    """Groups of the selected tasks, in greedy task order then template order, with budgets."""
    n_templates = max(len(es.template_names), 1)
    keys = es.task_codes.astype(np.int64) * n_templates + es.template_codes
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=len(es.task_names) * n_templates)
    starts = np.concatenate([[0], np.cumsum(counts)])
    code_of = {name: i for i, name in enumerate(es.task_names)}
    groups: list[Group] = []
    for t in tasks_doc["tasks"]:
        code = code_of[t["task"]]
        per_template = {
            es.template_names[j]: int(counts[code * n_templates + j]) for j in range(len(es.template_names))
        }
        if int(t["budget"]) > sum(per_template.values()):
            raise DataError(f"task {t['task']!r} has budget {t['budget']} but only {sum(per_template.values())} rows")
        split = budgets.template_split(int(t["budget"]), per_template)
        for name, b in split.items():
            j = es.template_names.index(name)
            k = code * n_templates + j
            groups.append(Group(code, j, order[starts[k] : starts[k + 1]], b))
    return groups


def route(group: Group, objective: Objective, max_dense_rows: int) -> str:
    """Which path a group takes: ``empty`` (b = 0), ``whole`` (b = n), ``random``, ``dense`` or ``sparse``."""
    n, b = len(group.positions), group.budget
    if b == 0:
        return "empty"
    if b == n:
        return "whole"
    if objective.name == "random":
        return "random"
    return "dense" if n <= max_dense_rows else "sparse"


def group_seed(seed: int, group: Group) -> int:
    """The sparse path's seed for one group (kNN index, stochastic greedy): one stream per group."""
    # 31 bits: faiss takes its k-means seed as a C int.
    return int(np.random.SeedSequence([seed, group.task_code, group.template_code]).generate_state(1)[0] >> 1)


def pick(
    es: EmbeddingSet,
    group: Group,
    objective: Objective,
    seed: int,
    cfg: SampleConfig | None = None,
    max_dense_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and gains of the group's picks: all rows when b = n, else the greedy prefix."""
    cfg = cfg or SampleConfig()
    limit = max_dense_rows if max_dense_rows is not None else cfg.max_dense_rows
    path = route(group, objective, len(group.positions) if limit is None else limit)
    n, b = len(group.positions), group.budget
    if path == "whole":
        return group.positions, np.full(n, np.nan)
    if path == "empty":
        return group.positions[:0], np.empty(0)
    # A generator per group, so the picks do not depend on which groups ran before.
    rng = np.random.default_rng([seed, group.task_code, group.template_code])
    if path == "random":
        idx, gains = maximize(np.empty((n, 0), dtype=np.float32), b, objective, rng)
        return group.positions[idx], gains
    # Only this group's rows are read from the memory map (positions ascend within a group).
    emb = np.asarray(es.embeddings[group.positions], dtype=np.float32)
    artifacts.release_pages(es.embeddings)  # the copy is all this group needs
    es.check_block(emb, group.positions)  # NaN or edited vectors: refuse, do not select on them
    if isinstance(objective, targeted.QueryObjective):  # toward the query rows (targeted/)
        idx, gains = targeted.pick_rows(emb, b, objective, cfg, path, group_seed(seed, group))
    elif path == "dense":
        available = DENSE_MEMORY_CAP["smart"] * 2 if cfg.fixed_dense_limit else cfg.memory()
        kernel_limit = kernel_rows(objective.name, available, cfg.greedy_backend)
        cache = available // 2 // cfg.workers  # without a kernel: the columns it may keep
        idx, gains = maximize(
            emb,
            b,
            objective,
            rng,
            cfg.greedy_backend,
            kernel_rows=kernel_limit,
            cache_bytes=cache,
            device=cfg.device,
            kernel=cfg.kernel,
        )
    else:
        from smart_cli.sparse import sparse_greedy

        idx, gains = sparse_greedy(
            emb,
            b,
            function=objective.name,
            lambda_=objective.lambda_ if objective.lambda_ is not None else 0.0,
            k=cfg.knn,
            seed=group_seed(seed, group),
            optimizer=cfg.optimizer,
        )
    return group.positions[idx], gains


def _refuse_sparse_logdet(
    es: EmbeddingSet, groups: list[Group], paths: list[str], max_dense_rows: int, backend: str, name: str = "logdet"
) -> None:
    """Log determinant (and logdetmi) has no kNN path: say so before any work, naming the largest group."""
    big = [g for g, p in zip(groups, paths) if p == "sparse"]
    if not big:
        return
    g = max(big, key=lambda g: len(g.positions))
    n = len(g.positions)
    gb = DENSE_BYTES_PER_ENTRY[backend]["logdet"] * n * n / 1e9
    raise UsageError(
        f"{param('function')} {name} has no sparse path, and {len(big):,} group(s) have more rows than "
        f"{param('max_dense_rows')} {max_dense_rows:,} (largest: task {es.task_names[g.task_code]!r}, {n:,} rows, "
        f"~{gb:,.1f} GB dense): use {param('function')} fl or gc, or {param('max_dense_rows')} {n} where memory allows"
    )


def select_samples(
    es: EmbeddingSet,
    tasks_doc: TasksDoc,
    cfg: SampleConfig | None = None,
    *,
    tasks_path: str | Path | None = None,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
):
    """Select every group's rows; return a ``pyarrow.Table`` ready for ``samples.parquet``.

    ``tasks_path``: where the tasks file is, recorded for the manifest. ``executor``: runs the
    dense and sparse groups (default: as many processes as ``cfg.workers``).
    """
    import pyarrow as pa

    cfg, objective, groups, paths, max_dense = _prepare(es, tasks_doc, cfg)
    job = GroupJob(objective, cfg, max_dense)
    total = sum(g.budget for g in groups)
    with or_silent(reporter).progress(f"selecting rows ({objective.name})", total) as advance:
        results = _pick_all(es, groups, paths, job, executor or for_workers(cfg.workers, cfg.memory()), advance)
    parts_pos = [pos for pos, _ in results]
    positions = np.concatenate(parts_pos) if parts_pos else np.empty(0, dtype=np.int64)
    gains = np.concatenate([g for _, g in results]) if results else np.empty(0)
    ranks = [np.arange(len(p), dtype=np.int32) for p in parts_pos]
    table = pa.table(
        {
            "row": pa.array(es.rows[positions], pa.int64()),
            "task": pa.array([es.task_names[i] for i in es.task_codes[positions]], pa.string()),
            "template_type": pa.array([es.template_names[i] for i in es.template_codes[positions]], pa.string()),
            "rank": pa.array(np.concatenate(ranks) if ranks else np.empty(0, np.int32), pa.int32()),
            "gain": pa.array(gains, pa.float64(), from_pandas=True),
        }
    )
    if table.num_rows != tasks_doc["budget"]:
        raise DataError(f"selected {table.num_rows} rows but the budget is {tasks_doc['budget']}")
    meta = _record(es, tasks_doc, tasks_path, objective, cfg, max_dense, paths)
    return artifacts.with_metadata(table, meta)


def _prepare(es: EmbeddingSet, tasks_doc: TasksDoc, cfg: SampleConfig | None):
    """The config for these tasks, its objective, the groups, each one's path and the dense limit (no work yet)."""
    cfg = (cfg or SampleConfig()).for_tasks(tasks_doc)
    objective = cfg.objective()
    # The budget once, here: the dense limit, the pool and each group's kernel-or-not all read the
    # same number, not the memory free at the moment a worker starts a group.
    cfg = dataclasses.replace(cfg, max_memory=cfg.memory())
    cfg = targeted.prepare_samples(cfg, objective, es)  # a query: checked against es now
    groups = plan(es, tasks_doc)
    max_dense = cfg.dense_limit(objective.name)
    paths = [route(g, objective, max_dense) for g in groups]
    if targeted.sparse_refused(objective):
        _refuse_sparse_logdet(es, groups, paths, max_dense, cfg.greedy_backend, objective.name)
    return cfg, objective, groups, paths, max_dense


def prefill(es: EmbeddingSet, docs: list[TasksDoc], cfg: SampleConfig, *, reporter=None, executor=None) -> None:
    """Put in the order cache, in one pass, the longest prefix each group needs in any of ``docs``
    (the tasks files of a grid), so that selecting the samples of each is a lookup."""
    cfg, objective, _, _, max_dense = _prepare(es, docs[0], cfg)
    longest: dict[tuple[int, int], Group] = {}
    for g in (g for doc in docs for g in plan(es, doc) if 0 < g.budget < len(g.positions)):
        k = (g.task_code, g.template_code)
        if k not in longest or g.budget > longest[k].budget:
            longest[k] = g
    groups = list(longest.values())
    paths = [route(g, objective, max_dense) for g in groups]
    if cfg.no_cache or objective.name == "random" or not groups:
        return
    if targeted.sparse_refused(objective):
        _refuse_sparse_logdet(es, groups, paths, max_dense, cfg.greedy_backend, objective.name)
    job, total = GroupJob(objective, cfg, max_dense), sum(g.budget for g in groups)
    with or_silent(reporter).progress(f"filling the cache ({objective.name})", total) as advance:
        _pick_all(es, groups, paths, job, executor or for_workers(cfg.workers, cfg.memory()), advance)


def _record(es, tasks_doc: TasksDoc, tasks_path, objective: Objective, cfg: SampleConfig, max_dense: int, paths):
    """The samples file's provenance: what chose the rows, and what export needs for the manifest."""
    params = {"function": objective.name, "lambda": objective.lambda_, "seed": cfg.seed}
    params |= backend_param(cfg.greedy_backend) | kernel_param(cfg.kernel) | targeted.query_params(objective, cfg.query)
    counts = {p: paths.count(p) for p in ("dense", "sparse", "whole", "empty", "random")}
    # The sparse path's parameters matter only where a group took it: a run on the reference
    # path keeps the reference fingerprint. ``workers`` never changes the output: not recorded.
    sparse_params = {"max_dense_rows": max_dense, "knn": cfg.knn, "optimizer": cfg.optimizer}
    return {
        "format": "smart-cli/samples",
        "producer": artifacts.producer(),
        "embeddings": tasks_doc["embeddings"],
        "tasks_fingerprint": tasks_doc["fingerprint"],
        "dataset": es.meta.get("dataset"),
        "columns": es.meta.get("columns"),
        **manifest.carried(es, tasks_doc, tasks_path, cfg.query),
        "budget": int(tasks_doc["budget"]),
        **params,
        **sparse_params,
        "groups": counts,
        "fingerprint": artifacts.fingerprint(
            {"tasks": tasks_doc["fingerprint"], **params, **(sparse_params if counts["sparse"] else {})}
        ),
    }


# --------------------------------------------------------------------------- groups as work items


@dataclass(frozen=True)
class GroupJob:
    """What every group's selection shares (sent once per group to a worker: small)."""

    objective: Objective
    cfg: SampleConfig
    max_dense: int


def pick_group(es: EmbeddingSet, item: tuple[Group, GroupJob]) -> tuple[np.ndarray, np.ndarray]:
    group, job = item
    return pick(es, group, job.objective, job.cfg.seed, job.cfg, job.max_dense)


def _pick_all(es, groups, paths, job: GroupJob, executor: Executor, advance) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every group's picks, in plan order: the dense and sparse ones from the order cache or through ``executor``."""
    results: list = [None] * len(groups)
    orders = GroupOrders(es, job.objective, job.cfg)
    heavy = []
    for i, p in enumerate(paths):
        if p in ("dense", "sparse") and (hit := orders.get(groups[i], p)) is not None:
            results[i] = hit
            advance(len(hit[0]))
        elif p in ("dense", "sparse"):
            heavy.append(i)
    if len(heavy) < 2 and not getattr(executor, "remote", False):
        executor = InProcess()  # one heavy group gains nothing from a pool (a cluster may have the memory)
    for i, g in enumerate(groups):  # light groups (whole, empty, random) here, at once
        if paths[i] not in ("dense", "sparse"):
            results[i] = pick(es, g, job.objective, job.cfg.seed, job.cfg, job.max_dense)
            advance(len(results[i][0]))
    # Largest groups first, so no worker is left with a big one at the end.
    order = sorted(range(len(heavy)), key=lambda k: -len(groups[heavy[k]].positions))
    try:
        picked = executor.map(
            pick_group,
            [(groups[i], job) for i in heavy],
            OpenEmbeddings(str(es.path), es.meta),
            local=es,
            order=order,
            done=lambda k, result: advance(len(result[0])),
            weights=[group_bytes(len(groups[i].positions), es.embeddings.shape[1], paths[i], job) for i in heavy],
        )
    except WorkerDied as exc:
        raise DataError(_died_message(es, [groups[heavy[k]] for k in exc.items], job, executor)) from None
    for i, result in zip(heavy, picked):
        results[i] = result
        orders.put(groups[i], paths[i], result)
    return results


def _died_message(es: EmbeddingSet, running: list[Group], job: GroupJob, executor: Executor) -> str:
    """Which groups a killed worker may have been selecting, and how to run with less memory."""
    names = [
        f"task {es.task_names[g.task_code]!r} template {es.template_names[g.template_code]!r} "
        f"({len(g.positions):,} rows, {route(g, job.objective, job.max_dense)})"
        for g in running
    ]
    where = f" while selecting {' or '.join(names)}" if names else ""
    fewer = f"fewer {param('workers')} (now {executor.workers})"
    return (
        f"a worker process was killed{where} (out of memory, or a signal); nothing was written: "
        f"run again with {fewer}, a lower {param('max_memory')} (now {_gib(job.cfg.memory())}) "
        f"or a lower {param('max_dense_rows')} (now {job.max_dense:,})"
    )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f}G"


@dataclass(frozen=True)
class SamplesSummary(Summary):
    command = "select-samples"
    rows: int
    function: str
    sha256: str

    def message(self) -> str:
        return f"selected {self.rows:,} rows into {self.out}"


@dataclass(frozen=True)
class SampleInputs:
    """select-samples reads two artifacts: ``EMB_DIR`` (or it opened) and ``TASKS.json`` chosen from it."""

    embeddings: Path | EmbeddingSet
    tasks: Path


def run(
    inputs: SampleInputs,
    out: Path,
    cfg: SampleConfig,
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> SamplesSummary:
    """Select the rows of every task in ``inputs.tasks`` into ``SAMPLES.parquet`` at ``out``."""
    cfg.objective()
    es = artifacts.as_embeddings(inputs.embeddings)
    doc = artifacts.load_tasks(inputs.tasks, es)
    function = cfg.for_tasks(doc).objective().name
    if Path(out).is_file():  # the same inputs and parameters as the file records: keep it (and its mtime)
        cfg_, objective, _, paths, max_dense = _prepare(es, doc, cfg)
        if artifacts.samples_current(out, _record(es, doc, inputs.tasks, objective, cfg_, max_dense, paths)):
            or_silent(reporter).log(f"{out} is up to date (same embeddings, tasks and parameters)", "green")
            rows = int(doc["budget"])
            return SamplesSummary(out=Path(out), rows=rows, function=function, sha256=artifacts.sha256_file(out))
    table = select_samples(es, doc, cfg, tasks_path=inputs.tasks, reporter=reporter, executor=executor)
    artifacts.write_samples(table, out)
    return SamplesSummary(out=Path(out), rows=table.num_rows, function=function, sha256=artifacts.sha256_file(out))
