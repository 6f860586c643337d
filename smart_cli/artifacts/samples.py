"""``SAMPLES.parquet``, what ``select-samples`` writes and ``export`` reads.

One row per selected source row (``row``, ``task``, ``template_type``, ``rank``, ``gain``), and
in the schema's metadata (key ``smart_cli``) a JSON record of how they were chosen and what
export needs for the manifest. Artifact paths in it are stored relative to the samples file, so
the same layout in another folder gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from smart_cli.artifacts.files import absolute_paths, atomic_path, canonical_json, relative_paths
from smart_cli.errors import DataError

METADATA_KEY = b"smart_cli"


def with_metadata(table, meta: dict):
    """``table`` carrying ``meta`` as its smart_cli record."""
    return table.replace_schema_metadata({METADATA_KEY: canonical_json(meta).encode()})


def write_samples(table, path: str | Path) -> None:
    import pyarrow.parquet as pq

    meta = json.loads(table.schema.metadata[METADATA_KEY])
    if meta.get("paths"):
        meta["paths"] = relative_paths(meta["paths"], Path(path).resolve().parent)
        table = with_metadata(table, meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_samples(path: str | Path) -> tuple:
    """Read a ``samples.parquet`` and its provenance record."""
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
    meta["paths"] = absolute_paths(meta.get("paths"), path.resolve().parent)
    return table, meta


def samples_current(path: str | Path, meta: dict) -> bool:
    """``path`` is an intact samples file whose record is ``meta``, what a new run would write (its
    fingerprint, the embeddings and tasks it came from, every parameter, the tool's version)."""
    if not Path(path).is_file():
        return False
    try:
        table, have = read_samples(path)
    except DataError:
        return False
    want = json.loads(canonical_json(meta))
    return have == want and table.num_rows == want.get("budget")
