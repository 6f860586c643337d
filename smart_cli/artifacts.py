"""The on-disk contract between stages: atomic writes, fingerprints, and the embeddings folder.

``EMB_DIR`` holds ``embeddings.npy`` (one L2-normalised row per dataset row), ``rows.parquet``
(``row``, ``task``, ``template_type``) and ``meta.json`` (what produced them). Later artifacts
record the fingerprint of the artifact they were built from, so a stage can refuse inputs that
do not belong together.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import __version__
from smart_cli.errors import DataError

EMBEDDINGS = "embeddings.npy"
ROWS = "rows.parquet"
META = "meta.json"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output directory {path.parent}: {exc.strerror}") from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(canonical_json(obj), encoding="utf-8")


def read_json(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{what} {path} is not a JSON object")
    return obj


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-serialisable description of inputs and parameters."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def producer() -> dict:
    return {"name": "smart-cli", "version": __version__}


@dataclass
class EmbeddingSet:
    """An opened ``EMB_DIR``: memory-mapped vectors plus the task and template of every row."""

    path: Path
    meta: dict
    embeddings: np.ndarray  # (n, d) memmap, float32 or float16
    rows: np.ndarray  # (n,) int64 source row indices
    task_names: list[str]  # tasks in order of first appearance
    task_codes: np.ndarray  # (n,) int32 index into task_names
    template_names: list[str | None]
    template_codes: np.ndarray  # (n,) int32 index into template_names

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def task_sizes(self) -> np.ndarray:
        return np.bincount(self.task_codes, minlength=len(self.task_names))


def _codes(column) -> tuple[list, np.ndarray]:
    """Dictionary-encode an arrow column: values in order of first appearance, int32 codes."""
    import pyarrow as pa

    encoded = column.combine_chunks().dictionary_encode() if column.num_chunks else pa.array([], pa.string())
    if len(encoded) == 0:
        return [], np.empty(0, dtype=np.int32)
    values = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        # A null template is a group of its own, after the named ones.
        values.append(None)
        indices = indices.fill_null(len(values) - 1)
    return values, indices.to_numpy(zero_copy_only=False).astype(np.int32)


def open_embeddings(path: str | Path) -> EmbeddingSet:
    """Open and cross-check an ``EMB_DIR`` written by ``smart-cli embed``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"embeddings directory not found: {path}")
    meta = read_json(path / META, "embedding metadata")
    for key in ("fingerprint", "rows", "dim"):
        if key not in meta:
            raise DataError(f"{path / META} lacks {key!r}: not written by smart-cli embed")
    try:
        emb = np.load(path / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path / EMBEDDINGS} not found") from exc
    except (ValueError, OSError) as exc:
        raise DataError(f"{path / EMBEDDINGS} is truncated or corrupt: {exc}") from exc
    if emb.ndim != 2 or emb.shape != (meta["rows"], meta["dim"]):
        raise DataError(
            f"{path / EMBEDDINGS} has shape {emb.shape} but {path / META} says "
            f"({meta['rows']}, {meta['dim']}): they do not belong together"
        )
    try:
        table = pq.read_table(path / ROWS)
    except FileNotFoundError as exc:
        raise DataError(f"{path / ROWS} not found") from exc
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path / ROWS} is not readable parquet: {exc}") from exc
    missing = {"row", "task", "template_type"} - set(table.column_names)
    if missing:
        raise DataError(f"{path / ROWS} lacks columns {sorted(missing)}")
    if table.num_rows != emb.shape[0]:
        raise DataError(
            f"{path / ROWS} has {table.num_rows} rows but {path / EMBEDDINGS} has {emb.shape[0]}: "
            "they do not belong together"
        )
    if meta.get("rows_sha256") and sha256_file(path / ROWS) != meta["rows_sha256"]:
        raise DataError(f"{path / ROWS} does not match {path / META} (checksum differs)")
    task_names, task_codes = _codes(table.column("task"))
    template_names, template_codes = _codes(table.column("template_type"))
    return EmbeddingSet(
        path=path,
        meta=meta,
        embeddings=emb,
        rows=table.column("row").to_numpy().astype(np.int64),
        task_names=[str(t) for t in task_names],
        task_codes=task_codes,
        template_names=template_names,
        template_codes=template_codes,
    )
