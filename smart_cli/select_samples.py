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

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, budgets, console, manifest
from smart_cli.artifacts import EmbeddingSet
from smart_cli.errors import DataError, UsageError
from smart_cli.submodular import FUNCTIONS, Objective, maximize

SAMPLE_FUNCTIONS = tuple(FUNCTIONS)
METADATA_KEY = b"smart_cli"
OPTIMIZERS = ("lazy", "stochastic")
#: Neighbours per row of the sparse path's kNN graph (``sparse.DEFAULT_K``; a test checks they
#: agree: importing ``sparse`` here would load numba for every command).
DEFAULT_KNN = 32
#: Peak bytes per kernel entry of submodlib's dense path, measured (peak RSS / n^2, n = 3,000 to
#: 20,000): facility location takes the float32 kernel as an array (~10 B); graph cut and log
#: determinant copy it through Python lists (``tolist``: 62-77 B).
DENSE_BYTES_PER_ENTRY = {"fl": 10, "gc": 72, "logdet": 80}
#: Most memory one dense kernel may take by default, whatever the machine has: keeps a default
#: run near the measured 3.6 GB of a 20,000-row FL group and bounds its time (dense lazy greedy
#: is O(n^2) per group).
DENSE_MEMORY_CAP = 2 << 30


@dataclass
class SampleConfig:
    """Defaults of ``smart-cli select-samples`` (the paper's: facility location, seed 23).

    ``function`` ``None`` means: what the tasks file implies (``"rows": "random"`` for the
    baselines and the random task selection), else ``fl``.
    """

    function: str | None = None
    lambda_: float | None = None
    seed: int = 23
    #: Largest group on the dense path; larger groups go to the kNN graph. ``None``: from memory
    #: (``default_max_dense_rows``); ``0``: every group with 0 < b < n on the sparse path.
    max_dense_rows: int | None = None
    knn: int = DEFAULT_KNN
    optimizer: str = "lazy"
    workers: int = 1

    def objective(self) -> Objective:
        """The function to maximise; also checks the options fit together (before any work)."""
        if self.function is not None and self.function not in SAMPLE_FUNCTIONS:
            raise UsageError(f"unknown --function {self.function!r}; choose from {', '.join(SAMPLE_FUNCTIONS)}")
        if self.max_dense_rows is not None and self.max_dense_rows < 0:
            raise UsageError(f"--max-dense-rows must be >= 0, got {self.max_dense_rows}")
        if self.knn < 1:
            raise UsageError(f"--knn must be at least 1, got {self.knn}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown --optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        return Objective.of(self.function or "fl", self.lambda_)

    def for_tasks(self, tasks_doc: dict) -> SampleConfig:
        """This config with ``function`` filled in from the tasks file when it was not given."""
        if self.function is not None:
            return self
        return dataclasses.replace(self, function=tasks_doc.get("rows") or "fl")


@dataclass
class Group:
    """One (task, template type) group: its rows (positions in EMB_DIR) and its budget."""

    task_code: int
    template_code: int
    positions: np.ndarray
    budget: int


def plan(es: EmbeddingSet, tasks_doc: dict) -> list[Group]:
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


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; free pages where there is no /proc)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 8 << 30  # unknown: assume a modest machine


def default_max_dense_rows(function: str, workers: int = 1, available: int | None = None) -> int:
    """Largest dense group by default: its kernel takes at most half the available memory shared
    among ``workers``, and at most ``DENSE_MEMORY_CAP``; rounded down to a multiple of 1,000 so
    that small changes in free memory do not change which path a group takes."""
    if function not in DENSE_BYTES_PER_ENTRY:
        return 0  # random: no kernel at all
    budget = min((available if available is not None else available_memory()) / 2 / max(1, workers), DENSE_MEMORY_CAP)
    rows = int(math.sqrt(max(budget, 0) / DENSE_BYTES_PER_ENTRY[function]))
    return rows // 1000 * 1000


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
    if path == "dense":
        idx, gains = maximize(emb, b, objective, rng)
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


def _refuse_sparse_logdet(es: EmbeddingSet, groups: list[Group], paths: list[str], max_dense_rows: int) -> None:
    """Log determinant has no kNN path: say so before any work, naming the largest group."""
    big = [g for g, p in zip(groups, paths) if p == "sparse"]
    if not big:
        return
    g = max(big, key=lambda g: len(g.positions))
    n = len(g.positions)
    gb = DENSE_BYTES_PER_ENTRY["logdet"] * n * n / 1e9
    raise UsageError(
        f"--function logdet has no sparse path, and {len(big):,} group(s) have more rows than --max-dense-rows "
        f"{max_dense_rows:,} (largest: task {es.task_names[g.task_code]!r}, {n:,} rows, ~{gb:,.1f} GB dense): "
        f"use --function fl or gc, or --max-dense-rows {n} where memory allows"
    )


def select_samples(es: EmbeddingSet, tasks_doc: dict, cfg: SampleConfig | None = None):
    """Select every group's rows; return a ``pyarrow.Table`` ready for ``samples.parquet``."""
    import pyarrow as pa

    cfg = (cfg or SampleConfig()).for_tasks(tasks_doc)
    objective = cfg.objective()
    groups = plan(es, tasks_doc)
    max_dense = cfg.max_dense_rows
    if max_dense is None:
        max_dense = default_max_dense_rows(objective.name, cfg.workers)
    paths = [route(g, objective, max_dense) for g in groups]
    if objective.name == "logdet":
        _refuse_sparse_logdet(es, groups, paths, max_dense)
    with console.progress(f"selecting rows ({objective.name})", sum(g.budget for g in groups)) as advance:
        results = _pick_all(es, groups, paths, objective, cfg, max_dense, advance)
    parts_pos = [pos for pos, _ in results]
    parts_gain = [gains for _, gains in results]
    parts_rank = [np.arange(len(pos), dtype=np.int32) for pos in parts_pos]
    positions = np.concatenate(parts_pos) if parts_pos else np.empty(0, dtype=np.int64)
    gains = np.concatenate(parts_gain) if parts_gain else np.empty(0)
    templates = [es.template_names[i] for i in es.template_codes[positions]]
    table = pa.table(
        {
            "row": pa.array(es.rows[positions], pa.int64()),
            "task": pa.array([es.task_names[i] for i in es.task_codes[positions]], pa.string()),
            "template_type": pa.array(templates, pa.string()),
            "rank": pa.array(np.concatenate(parts_rank) if parts_rank else np.empty(0, np.int32), pa.int32()),
            "gain": pa.array(gains, pa.float64(), from_pandas=True),
        }
    )
    params = {"function": objective.name, "lambda": objective.lambda_, "seed": cfg.seed}
    counts = {p: paths.count(p) for p in ("dense", "sparse", "whole", "empty", "random")}
    # The sparse path's parameters matter only where a group took it: a run on the reference
    # path keeps the reference fingerprint. ``workers`` never changes the output: not recorded.
    sparse_params = {"max_dense_rows": max_dense, "knn": cfg.knn, "optimizer": cfg.optimizer}
    meta = {
        "format": "smart-cli/samples",
        "producer": artifacts.producer(),
        "embeddings": tasks_doc["embeddings"],
        "tasks_fingerprint": tasks_doc["fingerprint"],
        "dataset": es.meta.get("dataset"),
        "columns": es.meta.get("columns"),
        **manifest.carried(es, tasks_doc),
        "budget": int(tasks_doc["budget"]),
        **params,
        **sparse_params,
        "groups": counts,
        "fingerprint": artifacts.fingerprint(
            {"tasks": tasks_doc["fingerprint"], **params, **(sparse_params if counts["sparse"] else {})}
        ),
    }
    if table.num_rows != tasks_doc["budget"]:
        raise DataError(f"selected {table.num_rows} rows but the budget is {tasks_doc['budget']}")
    return table.replace_schema_metadata({METADATA_KEY: artifacts.canonical_json(meta).encode()})


# --------------------------------------------------------------------------- groups in parallel

#: Environment variables that size the thread pools of BLAS, OpenMP (faiss) and numba.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_WORKER: dict = {}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _thread_env(threads: int):
    """Thread-pool sizes for worker processes: they read these when their libraries load."""
    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(threads) for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker(path: str, meta: dict, threads: int) -> None:
    """Open EMB_DIR's memory map once per worker process (arrays never cross the pipe)."""
    from smart_cli.artifacts import EMBEDDINGS

    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    emb = np.load(Path(path) / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
    empty = np.empty(0, dtype=np.int32)
    _WORKER["es"] = EmbeddingSet(Path(path), meta, emb, empty.astype(np.int64), [], empty, [], empty)


def _pick_in_worker(group: Group, objective: Objective, seed: int, cfg: SampleConfig, max_dense: int):
    return pick(_WORKER["es"], group, objective, seed, cfg, max_dense)


def _pick_all(es, groups, paths, objective, cfg, max_dense, advance) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every group's picks, in plan order; dense and sparse groups in ``cfg.workers`` processes."""
    results: list = [None] * len(groups)
    heavy = [i for i, p in enumerate(paths) if p in ("dense", "sparse")]
    if cfg.workers > 1 and len(heavy) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        workers = min(cfg.workers, len(heavy))
        threads = max(1, _cores() // workers)
        # spawn, not fork: numba, faiss and OpenMP do not survive a fork of a process using them.
        with (
            _thread_env(threads),
            ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(str(es.path), es.meta, threads),
            ) as pool,
        ):
            # Largest groups first, so no worker is left with a big one at the end.
            order = sorted(heavy, key=lambda i: -len(groups[i].positions))
            futures = {pool.submit(_pick_in_worker, groups[i], objective, cfg.seed, cfg, max_dense): i for i in order}
            submitted = set(heavy)
            for i, g in enumerate(groups):
                if i not in submitted:
                    results[i] = pick(es, g, objective, cfg.seed, cfg, max_dense)
                    advance(len(results[i][0]))
            try:
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    advance(len(results[futures[fut]][0]))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results
    for i, g in enumerate(groups):
        results[i] = pick(es, g, objective, cfg.seed, cfg, max_dense)
        advance(len(results[i][0]))
    return results


def write_samples(table, path) -> None:
    import pyarrow.parquet as pq

    # Artifact paths are stored relative to the samples file, so the same layout in another
    # folder gives the same bytes; read_samples resolves them back.
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    if meta.get("paths"):
        meta["paths"] = manifest.relative_paths(meta["paths"], Path(path).resolve().parent)
        table = table.replace_schema_metadata({METADATA_KEY: artifacts.canonical_json(meta).encode()})
    with artifacts.atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_samples(path):
    """Read a ``samples.parquet`` and its provenance record."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(f"samples file not found: {path}")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path} is not readable parquet: {exc}") from exc
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None or not {"row", "task"} <= set(table.column_names):
        raise DataError(f"{path} is not a samples file written by smart-cli select-samples")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: its smart_cli metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{path}: its smart_cli metadata is not a JSON object")
    if table.column("row").null_count or not pa.types.is_integer(table.schema.field("row").type):
        raise DataError(f"{path}: 'row' must hold source row indices (integers, no nulls)")
    if isinstance(meta.get("budget"), int) and table.num_rows != meta["budget"]:
        raise DataError(f"{path} has {table.num_rows:,} rows but records a budget of {meta['budget']:,}: it was edited")
    meta["paths"] = manifest.absolute_paths(meta.get("paths"), path.resolve().parent)
    return table, meta
