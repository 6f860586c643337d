"""Several datasets read as one: ``embed A B C`` mixes them into one EMB_DIR.

The sources are concatenated in the order given, so a row's index in the whole is its index in
its own dataset plus the rows of the datasets before it; ``rows.parquet`` also records each row's
source (``dataset``: its position in the list). ``meta.json`` records every source's identity,
with the sha256 of its files where they are local, and ``export`` and ``verify`` reopen them the
same way. One source keeps the identity it always had, so existing folders keep their fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import data
from smart_cli.errors import DataError, param

#: ``--task-from`` values: where a row's task comes from, other than a column.
TASK_FROM = ("dataset",)


def as_list(dataset: str | Sequence[str]) -> list[str]:
    return [dataset] if isinstance(dataset, str) else list(dataset)


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
    specs: Sequence[str], split: str, *, trust_remote_code: bool = False, name=None, revision=None
) -> tuple[Any, dict]:
    """The sources as one dataset, and its identity (one source: the identity it always had)."""
    import datasets

    parts = [data.load(s, split, trust_remote_code=trust_remote_code, name=name, revision=revision) for s in specs]
    if len(parts) == 1:
        return parts[0], data.identity(specs[0], split, parts[0], name=name, revision=revision)
    first = parts[0]
    for spec, part in zip(specs[1:], parts[1:]):
        if part.features != first.features:
            raise DataError(
                f"{spec} does not have the columns of {specs[0]} ({', '.join(part.column_names)} against "
                f"{', '.join(first.column_names)}, or other types): datasets embedded together need the same columns"
            )
    whole = datasets.concatenate_datasets(parts)
    sources = [{**data.identity(s, split, p), "sha256": files_sha256(s)} for s, p in zip(specs, parts)]
    identity = {
        "spec": " ".join(specs),
        "path": None,
        "local": all(s["local"] for s in sources),
        "split": split,
        "num_rows": len(whole),
        "sources": sources,
    }
    return whole, identity


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
