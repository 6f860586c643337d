"""``EMB_DIR``, the folder ``embed`` writes and every later stage reads.

It holds ``embeddings.npy`` (one L2-normalised row per dataset row), ``rows.parquet`` (``row``,
``task``, ``template_type`` and optionally ``source``) and ``meta.json`` (what produced them,
written last: its presence marks a complete folder).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli.artifacts.files import read_json, sha256_file
from smart_cli.errors import DataError

EMBEDDINGS = "embeddings.npy"
ROWS = "rows.parquet"
META = "meta.json"
#: Stage 1's task means where ``embed`` estimated them with another model (``embed/teacher.py``).
TASK_MEANS = "task_means.npy"
#: The affine map that carried a static folder's rows into the transformer's space (``backends/mapped.py``).
STATIC_MAP = "static_map.npy"
#: ``--row-map tokens``: the token vectors in the transformer's space, the bias last (``backends/token_mapped.py``).
STATIC_TOKENS = "static_tokens.npy"
# What an unfinished ``embed`` leaves: the vectors so far and how many rows they cover.
PARTIAL = ".embeddings.partial.npy"
PROGRESS = ".embed-progress.json"
#: embeddings.npy up to this size is checked in full (sha256, NaN, zero rows) whenever it is
#: opened; larger files get shape, dtype and size checks here and a streaming NaN check where
#: their rows are read (task means, each group's rows).
VERIFY_BYTES = 1 << 30


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

    def check_block(self, block: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Refuse NaN or infinite rows of ``block`` (rows ``positions`` of the file); return the zero rows.

        All-zero rows are refused too, unless ``embed`` recorded some (``zero_rows`` in meta.json:
        a text with no known token, e.g. an empty prompt under the static backend); then the
        caller compares their total with the record.
        """
        bad, zero = bad_rows(block)
        where = self.path / EMBEDDINGS
        if len(bad):
            first = int(positions[bad[0]])
            raise DataError(
                f"{where} has NaN or infinite values in {plural(len(bad), 'row')} (first: row {first}): "
                "it is corrupt; run smart-cli embed again"
            )
        if len(zero) and not self.meta.get("zero_rows"):
            raise DataError(zero_message(where, len(zero), int(positions[zero[0]])))
        return np.asarray(positions)[zero]

    def check_zero_total(self, found: list[np.ndarray]) -> None:
        """After a pass over every row: refuse more zero rows than ``embed`` recorded."""
        zeros = np.concatenate(found) if found else np.empty(0, np.int64)
        if len(zeros) > int(self.meta.get("zero_rows") or 0):
            raise DataError(zero_message(self.path / EMBEDDINGS, len(zeros), int(zeros[0])))


def bad_rows(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the rows of ``block`` with a NaN or infinite value, and of the all-zero rows."""
    # A row sum is NaN or infinite exactly when the row has a NaN or infinite value (unit rows
    # cannot overflow it), and needs no temporary as large as the block.
    finite = np.isfinite(block.sum(axis=1, dtype=np.float64))
    zero = ~block.any(axis=1) & finite
    return np.flatnonzero(~finite), np.flatnonzero(zero)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def zero_message(where: Path, count: int, first: int) -> str:
    return (
        f"{where} has {plural(count, 'all-zero vector')} (first: row {first}) that embed did not write: "
        "it is corrupt or was edited; run smart-cli embed again"
    )


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


def _unfinished(path: Path) -> str:
    """Why a folder without meta.json is not usable, and how to go on."""
    if (path / PROGRESS).is_file() or (path / PARTIAL).is_file() or (path / ROWS).is_file():
        try:
            done = f" ({int(read_json(path / PROGRESS, 'progress record')['done']):,} rows embedded so far)"
        except (DataError, KeyError, TypeError, ValueError):
            done = ""
        return f"{path} has no {META}: smart-cli embed did not finish{done}; run the same embed command again to resume"
    return f"{path / META} not found: {path} is not a folder written by smart-cli embed"


def _load_matrix(path: Path, meta: dict) -> np.ndarray:
    """Memory-map ``embeddings.npy`` and check it is the matrix ``meta`` describes, byte for byte in size."""
    file = path / EMBEDDINGS
    if not file.is_file():
        raise DataError(f"{file} not found, but {path / META} is there: the folder is damaged; run embed again")
    with open(file, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(f"{file} is not a .npy file: it is corrupt; run smart-cli embed again")
    try:
        emb = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{file} is truncated or corrupt ({exc}); run smart-cli embed again") from exc
    expected = (meta["rows"], meta["dim"])
    if emb.ndim != 2 or emb.shape != expected:
        raise DataError(f"{file} has shape {emb.shape} but {path / META} says {expected}: they do not belong together")
    if emb.dtype.kind != "f" or str(emb.dtype) != meta.get("dtype", str(emb.dtype)):
        raise DataError(
            f"{file} holds {emb.dtype} but {path / META} says {meta.get('dtype')}: they do not belong together"
        )
    size = file.stat().st_size
    if size != emb.offset + emb.nbytes:
        raise DataError(
            f"{file} is {size:,} bytes, not the {emb.offset + emb.nbytes:,} its header promises: "
            "it is corrupt; run smart-cli embed again"
        )
    return emb


def _verify_matrix(es: EmbeddingSet, chunk_bytes: int = 1 << 26) -> None:
    """The full check of a small ``embeddings.npy``: no NaN, no unrecorded zero rows, sha256 as recorded."""
    emb = es.embeddings
    step = max(1, chunk_bytes // max(1, emb.shape[1] * emb.itemsize))
    zeros: list[np.ndarray] = []
    for lo in range(0, emb.shape[0], step):
        block = np.asarray(emb[lo : lo + step])
        release_pages(emb)
        zeros.append(es.check_block(block, np.arange(lo, lo + len(block))))
    es.check_zero_total(zeros)
    recorded = es.meta.get("embeddings_sha256")
    if recorded and sha256_file(es.path / EMBEDDINGS) != recorded:
        raise DataError(
            f"{es.path / EMBEDDINGS} does not match {es.path / META} (checksum differs): "
            "they do not belong together; run smart-cli embed again"
        )


def _read_meta(path: Path) -> dict:
    """``meta.json`` of a finished ``EMB_DIR``, with the keys every reader needs."""
    if not path.is_dir():
        if path.exists():
            raise DataError(f"{path} is a file, not a folder written by smart-cli embed")
        raise DataError(f"embeddings directory not found: {path}")
    if not (path / META).is_file():
        raise DataError(_unfinished(path))
    meta = read_json(path / META, "embedding metadata")
    for key in ("fingerprint", "rows", "dim"):
        if key not in meta:
            raise DataError(f"{path / META} lacks {key!r}: not written by smart-cli embed")
    if not all(isinstance(meta[k], int) and meta[k] >= 0 for k in ("rows", "dim")):
        raise DataError(f"{path / META} has a wrong 'rows' or 'dim': not written by smart-cli embed")
    return meta


def _read_rows(path: Path, meta: dict, n: int):
    """``rows.parquet``, checked against ``meta.json`` and the ``n`` vectors."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path / ROWS)
    except FileNotFoundError as exc:
        raise DataError(f"{path / ROWS} not found, but {path / META} is there: the folder is damaged") from exc
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path / ROWS} is not readable parquet: {exc}") from exc
    missing = {"row", "task", "template_type"} - set(table.column_names)
    if missing:
        raise DataError(f"{path / ROWS} lacks columns {sorted(missing)}")
    if table.num_rows != n:
        raise DataError(
            f"{path / ROWS} has {table.num_rows} rows but {path / EMBEDDINGS} has {n}: they do not belong together"
        )
    if meta.get("rows_sha256") and sha256_file(path / ROWS) != meta["rows_sha256"]:
        raise DataError(f"{path / ROWS} does not match {path / META} (checksum differs): they do not belong together")
    rows = table.column("row").to_numpy(zero_copy_only=False)
    if table.column("row").null_count or (len(rows) and (rows[0] < 0 or np.any(np.diff(rows) <= 0))):
        raise DataError(f"{path / ROWS}: 'row' must hold increasing source row indices")
    if table.column("task").null_count:
        raise DataError(f"{path / ROWS}: some rows have no task")
    return table, rows


@dataclass(frozen=True)
class OpenEmbeddings:
    """A worker's context: ``EMB_DIR``'s memory map, opened once per worker (arrays never cross
    the pipe); the vectors only, no rows table (the work items carry their positions)."""

    path: str
    meta: dict

    def __call__(self) -> EmbeddingSet:
        emb = np.load(Path(self.path) / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
        empty = np.empty(0, dtype=np.int32)
        return EmbeddingSet(Path(self.path), self.meta, emb, empty.astype(np.int64), [], empty, [], empty)


def open_embeddings(path: str | Path, *, verify: bool | None = None) -> EmbeddingSet:
    """Open and cross-check an ``EMB_DIR`` written by ``smart-cli embed``.

    Always: meta.json is there (embed finished), embeddings.npy has the recorded shape, dtype and
    size, rows.parquet has the recorded rows and checksum. ``verify`` (default: files up to
    ``VERIFY_BYTES``) also reads every vector: no NaN or zero rows, and the recorded sha256.
    """
    path = Path(path)
    meta = _read_meta(path)
    emb = _load_matrix(path, meta)
    table, rows = _read_rows(path, meta, emb.shape[0])
    task_names, task_codes = _codes(table.column("task"))
    template_names, template_codes = _codes(table.column("template_type"))
    es = EmbeddingSet(
        path=path,
        meta=meta,
        embeddings=emb,
        rows=rows.astype(np.int64),
        task_names=[str(t) for t in task_names],
        task_codes=task_codes,
        template_names=template_names,
        template_codes=template_codes,
    )
    if verify if verify is not None else emb.nbytes <= VERIFY_BYTES:
        _verify_matrix(es)
    return es


def as_embeddings(emb: str | Path | EmbeddingSet) -> EmbeddingSet:
    """An ``EMB_DIR`` already opened as it is (a grid opens it once for all its mixtures), else opened and checked."""
    return emb if isinstance(emb, EmbeddingSet) else open_embeddings(emb)


def task_sources(es: EmbeddingSet) -> list[str | None] | None:
    """Each task's source (``rows.parquet`` column ``source``, first value seen), or ``None`` for a
    folder embedded without a source column (older folders, or datasets without one)."""
    import pyarrow.parquet as pq

    if "source" not in pq.read_schema(es.path / ROWS).names:
        return None
    column = pq.read_table(es.path / ROWS, columns=["source"]).column("source")
    codes, first = np.unique(es.task_codes, return_index=True)
    out: list[str | None] = [None] * len(es.task_names)
    for code, value in zip(codes.tolist(), column.take(first).to_pylist()):  # only one value per task
        out[code] = None if value is None else str(value)
    return out


def release_pages(matrix: np.ndarray) -> None:
    """Drop a memory map's pages from this process (they stay in the page cache and the file).

    Reading or writing a large ``embeddings.npy`` through a memory map otherwise leaves every page
    touched counted in the process's resident set: a full pass over 17.6 M x 256 float16 would
    show as 9 GB of RSS although no memory is held. Call it once a block is written (and
    flushed) or read; the next access reads the page cache again.
    """
    import mmap

    raw = getattr(matrix, "_mmap", None)
    if raw is None or not hasattr(raw, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(OSError, ValueError):
        raw.madvise(mmap.MADV_DONTNEED)
