"""Stage 2: pick representative, non-redundant rows inside every (task, template type) group."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from smart_cli import artifacts, budgets, console, manifest
from smart_cli.artifacts import EmbeddingSet
from smart_cli.errors import DataError, UsageError
from smart_cli.submodular import FUNCTIONS, Objective, maximize

SAMPLE_FUNCTIONS = tuple(FUNCTIONS)
METADATA_KEY = b"smart_cli"


@dataclass
class SampleConfig:
    """Defaults of ``smart-cli select-samples`` (the paper's: facility location, seed 23).

    ``function`` ``None`` means: what the tasks file implies (``"rows": "random"`` for the
    baselines and the random task selection), else ``fl``.
    """

    function: str | None = None
    lambda_: float | None = None
    seed: int = 23

    def objective(self) -> Objective:
        if self.function is not None and self.function not in SAMPLE_FUNCTIONS:
            raise UsageError(f"unknown --function {self.function!r}; choose from {', '.join(SAMPLE_FUNCTIONS)}")
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


def pick(es: EmbeddingSet, group: Group, objective: Objective, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and gains of the group's picks: all rows when b = n, else the greedy prefix."""
    n, b = len(group.positions), group.budget
    if b == n:
        return group.positions, np.full(n, np.nan)
    if b == 0:
        return group.positions[:0], np.empty(0)
    # A generator per group, so the picks do not depend on which groups ran before.
    rng = np.random.default_rng([seed, group.task_code, group.template_code])
    emb = np.asarray(es.embeddings[group.positions], dtype=np.float32)
    es.check_block(emb, group.positions)  # NaN or edited vectors: refuse, do not select on them
    idx, gains = maximize(emb, b, objective, rng)
    return group.positions[idx], gains


def select_samples(es: EmbeddingSet, tasks_doc: dict, cfg: SampleConfig | None = None):
    """Select every group's rows; return a ``pyarrow.Table`` ready for ``samples.parquet``."""
    import pyarrow as pa

    cfg = (cfg or SampleConfig()).for_tasks(tasks_doc)
    objective = cfg.objective()
    groups = plan(es, tasks_doc)
    parts_pos, parts_gain, parts_rank = [], [], []
    with console.progress(f"selecting rows ({objective.name})", sum(g.budget for g in groups)) as advance:
        for g in groups:
            pos, gains = pick(es, g, objective, cfg.seed)
            parts_pos.append(pos)
            parts_gain.append(gains)
            parts_rank.append(np.arange(len(pos), dtype=np.int32))
            advance(len(pos))
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
        "fingerprint": artifacts.fingerprint({"tasks": tasks_doc["fingerprint"], **params}),
    }
    if table.num_rows != tasks_doc["budget"]:
        raise DataError(f"selected {table.num_rows} rows but the budget is {tasks_doc['budget']}")
    return table.replace_schema_metadata({METADATA_KEY: artifacts.canonical_json(meta).encode()})


def write_samples(table, path) -> None:
    import pyarrow.parquet as pq

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
    return table, meta
