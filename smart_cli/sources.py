"""Several datasets read as one: ``embed A B C`` mixes them into one EMB_DIR.

The sources are concatenated in the order given, so a row's index in the whole is its index in
its own dataset plus the rows of the datasets before it; ``rows.parquet`` also records each row's
source (``dataset``: its position in the list). ``meta.json`` records every source's identity,
with the sha256 of its files where they are local, and ``export`` and ``verify`` reopen them the
same way. One source keeps the identity it always had, so existing folders keep their fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import data
from smart_cli.errors import DataError, UsageError, param

#: ``--task-from`` values: where a row's task comes from, other than a column.
TASK_FROM = ("dataset",)
#: What a recipe's ``dataset:`` entry may set, and the column roles its ``columns`` may name.
ENTRY_KEYS = ("path", "name", "split", "revision", "columns", "task_from")
COLUMN_ROLES = {
    "prompt_column": "prompt",
    "response_column": "response",
    "task_column": "task",
    "template_column": "template",
    "messages_column": "messages",
    "source_column": "source",
}


@dataclass(frozen=True)
class Entry:
    """One dataset of several, with what it sets for itself (a recipe's ``dataset:`` list entry)."""

    path: str
    name: str | None = None
    split: str | None = None
    revision: str | None = None
    #: (role, its own column name) where it differs: ``(("messages", "conversations"),)``.
    columns: tuple[tuple[str, str], ...] = ()
    task_from: str | None = None

    @property
    def plain(self) -> bool:
        return self == Entry(self.path)


def entry(value: Any) -> Entry:
    """A ``dataset:`` entry: a path, or a mapping of ``ENTRY_KEYS`` (a clear error for anything else)."""
    if isinstance(value, Entry):
        return value
    if isinstance(value, str):
        return Entry(value)
    where = "recipe section 'dataset'"
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), str):
        raise UsageError(f"{where}: every entry is a path, or a mapping with a 'path', got {value!r}")
    unknown = sorted(set(value) - set(ENTRY_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; an entry may set {', '.join(ENTRY_KEYS)}")
    columns = value.get("columns") or {}
    if not isinstance(columns, Mapping) or not all(
        k in COLUMN_ROLES and isinstance(v, str) for k, v in columns.items()
    ):
        raise UsageError(f"{where}: 'columns' maps {', '.join(COLUMN_ROLES)} to column names, got {columns!r}")
    if value.get("task_from") not in (None, *TASK_FROM):
        raise UsageError(f"{where}: 'task_from' must be {' or '.join(TASK_FROM)}, got {value['task_from']!r}")
    for key in ("name", "split", "revision"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise UsageError(f"{where}: {key!r} must be a string, got {value[key]!r}")
    pairs = tuple(sorted((COLUMN_ROLES[k], v) for k, v in columns.items()))
    return Entry(
        value["path"], value.get("name"), value.get("split"), value.get("revision"), pairs, value.get("task_from")
    )


def _adapt(part, rename: Mapping[str, str], set_task: Sequence[str] | None):
    """A source in the shape of the others: its columns renamed, its task set where it comes from its name."""
    if rename:
        part = part.rename_columns(dict(rename))
    if set_task:
        column, value = set_task
        if column in part.column_names:
            part = part.remove_columns([column])
        part = part.add_column(column, [value] * len(part))
    return part


def as_list(dataset) -> list:
    return [dataset] if isinstance(dataset, (str, Entry, Mapping)) else list(dataset)


def name_of(spec: str) -> str:
    """A source's short name, for ``--task-from dataset``: a file's stem, a folder's name, a hub id."""
    path = Path(spec)
    if path.exists() or data._data_files(spec):
        return path.stem if path.suffix else path.name
    return spec


def files_sha256(spec: str) -> str | None:
    """One sha256 over the local files of ``spec`` in order (None for a hub dataset)."""
    files = data._data_files(spec)
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def load(
    specs: Sequence[str | Entry],
    split: str,
    *,
    trust_remote_code: bool = False,
    name=None,
    revision=None,
    columns: Mapping[str, str | None] | None = None,
) -> tuple[Any, dict]:
    """The sources as one dataset, and its identity (one plain source: the identity it always had).

    ``columns``: role -> this run's column name, which entries' own ``columns`` are renamed to.
    """
    import datasets

    entries = [entry(s) for s in specs]
    if len(entries) == 1 and entries[0].plain:
        ds = data.load(entries[0].path, split, trust_remote_code=trust_remote_code, name=name, revision=revision)
        return ds, data.identity(entries[0].path, split, ds, name=name, revision=revision)
    parts, sources = [], []
    for e in entries:
        part, identity = _load_entry(e, split, trust_remote_code, name, revision, columns or {})
        parts.append(part)
        sources.append(identity)
    paths = [e.path for e in entries]
    first = parts[0]
    for spec, part in zip(paths[1:], parts[1:]):
        if part.features != first.features:
            raise DataError(
                f"{spec} does not have the columns of {paths[0]} ({', '.join(part.column_names)} against "
                f"{', '.join(first.column_names)}, or other types): datasets embedded together need the same columns"
            )
    whole = datasets.concatenate_datasets(parts)
    identity = {
        "spec": " ".join(paths),
        "path": None,
        "local": all(s["local"] for s in sources),
        "split": split,
        "num_rows": len(whole),
        "sources": sources,
    }
    return whole, identity


def _load_entry(e: Entry, split: str, trust: bool, name, revision, columns: Mapping[str, str | None]):
    """One entry's rows in this run's shape, and its identity (with how it was reshaped)."""
    split = e.split or split
    name, revision = e.name or name, e.revision or revision
    part = data.load(e.path, split, trust_remote_code=trust, name=name, revision=revision)
    rename = {own: str(columns[role]) for role, own in e.columns if columns.get(role) and own != columns[role]}
    task = columns.get("task") or data.Columns().task
    set_task = [task, name_of(e.path)] if e.task_from == "dataset" else None
    part = _adapt(part, rename, set_task)
    identity = {**data.identity(e.path, split, part, name=name, revision=revision), "sha256": files_sha256(e.path)}
    return part, {**identity, **({"rename": rename} if rename else {}), **({"set_task": set_task} if set_task else {})}


def reopen(identity: dict, override: str | None, where: str) -> Any:
    """The dataset(s) an artifact was made from, checked to be the same size as then."""
    sources = identity.get("sources")
    if not sources:
        return _reopen_one(identity, override, where)
    if override:
        raise DataError(f"{where} was made from {len(sources)} datasets: {param('dataset')} cannot name them all")
    import datasets

    return datasets.concatenate_datasets([_reopen_one(s, None, where) for s in sources])


def _reopen_one(identity: dict, override: str | None, where: str) -> Any:
    spec = override or identity.get("read_from") or identity.get("path") or identity.get("spec")
    if not spec:
        raise DataError(f"{where} does not record its source dataset: pass {param('dataset')}")
    # A glob ('shards/*.parquet') is local too: it exists when it still matches files.
    if not override and identity.get("local") and not (Path(spec).exists() or data._data_files(spec)):
        raise DataError(
            f"dataset not found: {spec}, which {where} was selected from; pass {param('dataset')} if it moved"
        )
    ds = data.load(spec, identity.get("split") or "train", name=identity.get("name"), revision=_pin(identity))
    ds = _adapt(ds, identity.get("rename") or {}, identity.get("set_task"))
    expected = identity.get("num_rows")
    if expected is not None and len(ds) != expected:
        raise DataError(
            f"{spec} has {len(ds):,} rows but {where} was selected from a dataset of {expected:,}: "
            f"they do not belong together (pass the dataset embed read with {param('dataset')})"
        )
    return ds


def _pin(identity: dict) -> str | None:
    """The hub revision to read again: the one asked for (``main`` is not a pin)."""
    revision = identity.get("revision")
    return None if identity.get("local") or revision in (None, "main") else revision


def row_tasks(ds, columns: dict, identity: dict, rows: Sequence[int] | np.ndarray) -> list[str | None]:
    """Each row's task as ``embed`` recorded it: from the task column, or (``task_from: dataset``)
    the name of the source the row comes from."""
    if columns.get("task_from") != "dataset":
        return data.label_strings(ds, columns.get("task", "task_name"), list(rows)).to_pylist()
    sources = identity.get("sources") or [identity]
    names = [name_of(str(s.get("spec"))) for s in sources]
    ends = np.cumsum([int(s.get("num_rows") or 0) for s in sources])
    return [names[int(np.searchsorted(ends, r, side="right"))] for r in rows]


def source_index(identity: dict, n: int) -> np.ndarray:
    """Each of the ``n`` rows' source (its position in the list)."""
    sources = identity.get("sources") or [identity]
    sizes = [int(s.get("num_rows") or 0) for s in sources]
    return np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)[:n]
