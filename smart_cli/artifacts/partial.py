"""An unfinished ``embed``: the matrix being filled and the record of how far it got.

``embed`` writes shards into ``.embeddings.partial.npy`` (memory-mapped, its blocks reserved
before the first shard) and, after each shard is on disk, replaces ``.embed-progress.json``.
A later run with the same inputs and settings resumes from the record.

The record holds the *set* of finished shards (``"shards"``: half-open ranges of shard
indices), not a prefix: ``--engine ray`` finishes shards out of order, and either engine resumes
the other's partial run. ``"done"`` counts the rows of the finished shards. A record without
``"shards"`` (an older run) means the first ``"done"`` rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from smart_cli.artifacts.embeddings import EMBEDDINGS, PARTIAL, PROGRESS
from smart_cli.artifacts.files import free_bytes, human_bytes, read_json
from smart_cli.errors import DataError
from smart_cli.reporter import Reporter, or_silent


def resume_point(out: Path, record: dict, reporter: Reporter | None = None) -> tuple[int, np.memmap | None]:
    """Rows already embedded by an interrupted run with the same inputs and their matrix, else (0, None)."""
    if (out / EMBEDDINGS).is_file() and (out / PROGRESS).is_file() and not (out / PARTIAL).exists():
        (out / EMBEDDINGS).replace(out / PARTIAL)  # stopped after the last shard, before meta.json
    if not (out / PARTIAL).is_file() or not (out / PROGRESS).is_file():
        return 0, None
    try:
        old = read_json(out / PROGRESS, "embedding progress record")
    except DataError:
        return 0, None
    keys = [k for k in record if k not in ("done", "truncated", "zero_rows", "shards")]
    finished = finished_shards(old, record["rows"], record["shard_rows"])
    if any(old.get(k) != record[k] for k in keys) or not finished:
        or_silent(reporter).log(
            f"{out} holds a partial run with other inputs or settings; starting again from row 0", "yellow"
        )
        return 0, None
    try:
        matrix = np.load(out / PARTIAL, mmap_mode="r+", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return 0, None
    if matrix.shape != (record["rows"], record["dim"]) or str(matrix.dtype) != record["dtype"]:
        del matrix
        return 0, None
    record["truncated"] = int(old.get("truncated", 0))
    record["zero_rows"] = int(old.get("zero_rows", 0))
    record["shards"] = as_ranges(finished)
    record["done"] = done = shard_rows_total(finished, record["rows"], record["shard_rows"])
    return done, matrix


def finished_shards(record: dict, rows: int, shard_rows: int) -> set[int]:
    """The shard indices a progress record marks finished (empty where it is malformed)."""
    count = -(-rows // shard_rows) if shard_rows > 0 else 0
    if "shards" not in record:  # a prefix of rows (older records)
        done = record.get("done")
        if not isinstance(done, int) or not 0 < done <= rows or (done % shard_rows and done != rows):
            return set()
        return set(range(-(-done // shard_rows)))
    out: set[int] = set()
    try:
        for lo, hi in record["shards"]:
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= count):
                return set()
            out.update(range(lo, hi))
    except (TypeError, ValueError):
        return set()
    return out


def as_ranges(shards: set[int]) -> list[list[int]]:
    """``{0, 1, 2, 5}`` as ``[[0, 3], [5, 6]]``: a record stays small however many shards there are."""
    ranges: list[list[int]] = []
    for i in sorted(shards):
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return ranges


def shard_rows_total(shards: set[int], rows: int, shard_rows: int) -> int:
    """Rows in the given shards (the last shard may be short)."""
    return sum(min(shard_rows, rows - i * shard_rows) for i in shards)


def reserve(path: Path, out: Path) -> None:
    """Allocate every block of the matrix file before the first shard is written into it.

    Writes go through a memory map, and a memory-mapped write into a full disk is SIGBUS, which
    kills the process without a word; a failed allocation here is one line instead, and the
    shards finished so far stay for a resume.
    """
    import errno

    size, have = path.stat().st_size, path.stat().st_blocks * 512
    try:
        with open(path, "r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, size)
    except AttributeError:  # no posix_fallocate on this platform (macOS): nothing to reserve with
        return
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # the filesystem cannot reserve: write as before
        raise DataError(_space_message(out, size - have, free_bytes(out))) from exc


def _space_message(out: Path, need: int, free: int | None) -> str:
    left = f"{human_bytes(free)} free" if free is not None else "the disk is full"
    return (
        f"not enough space in {out} for {EMBEDDINGS}: it needs {human_bytes(need)} more, {left}; "
        "free some space and run the same embed command again (finished shards are kept)"
    )


def check_space(out: Path, rows: int, dim: int, dtype: str) -> None:
    """Refuse, before any work, an ``embeddings.npy`` that cannot fit on the disk of ``out``."""
    need = rows * dim * np.dtype(dtype).itemsize
    partial = out / PARTIAL
    if partial.is_file():  # blocks a previous run already holds
        need -= min(need, partial.stat().st_blocks * 512)
    free = free_bytes(out)
    if free is not None and need > free:
        raise DataError(_space_message(out, need, free))
