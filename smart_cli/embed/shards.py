"""Encoding shards of rows into the memory-mapped matrix, resumably, through an executor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import artifacts
from smart_cli import dataset_pages as pages
from smart_cli.artifacts import PARTIAL, PROGRESS, partial
from smart_cli.embed.config import EmbedConfig
from smart_cli.embed.source import _open_dataset, _text_columns, _texts
from smart_cli.errors import DataError, Interrupted, first_line
from smart_cli.executor import Executor, unordered
from smart_cli.reporter import Reporter


def load_encoder(cfg: EmbedConfig, model: str):
    """The model ``cfg`` names (resolved to ``model``), or one line saying why it cannot load."""
    from smart_cli import backends

    try:
        encoder = backends.load_encoder(
            cfg.backend,
            model,
            device=cfg.device,
            batch_size=cfg.batch_size,
            trust_remote_code=cfg.trust_remote_code,
            precision=cfg.precision,
            max_tokens=cfg.max_tokens if cfg.backend == "static" else None,
        )
    except (OSError, ValueError, RuntimeError) as exc:  # not found, not a model, no such device
        raise DataError(f"cannot load model {cfg.model!r} ({cfg.backend}): {first_line(exc)}") from exc
    if cfg.static_map and cfg.backend == "static":  # the map embed fitted (embed/teacher.py)
        return mapped_encoder(cfg, encoder)
    return encoder


def mapped_encoder(cfg: EmbedConfig, static):
    """``static`` through the row map ``cfg.static_map`` (its kind: ``cfg.row_kind``)."""
    assert cfg.static_map is not None
    if cfg.row_kind == "tokens":
        from smart_cli.backends.token_mapped import TokenMappedEncoder

        return TokenMappedEncoder.load(static, cfg.static_map)
    from smart_cli.backends.mapped import MappedEncoder

    return MappedEncoder.load(static, cfg.static_map)


@dataclass
class Shards:
    """A worker's context: the rows to embed and a loaded model."""

    texts: Any  # datasets.Dataset of the embedded columns
    cfg: EmbedConfig
    encoder: Any  # backends.Encoder


@dataclass(frozen=True)
class LoadShards:
    """Builds :class:`Shards` in a worker process: opens the dataset and loads the model once."""

    dataset: str | tuple
    cfg: EmbedConfig
    model: str
    kept: np.ndarray | None = None  # the rows embedded, where malformed conversations were skipped

    @property
    def shared_paths(self) -> tuple[str, ...]:
        """What a worker on another machine must see as this one does (``--engine ray`` checks)."""
        entries = self.dataset if isinstance(self.dataset, tuple) else (self.dataset,)
        return tuple(str(getattr(e, "path", e)) for e in entries)

    def __call__(self) -> Shards:
        ds, cfg, _ = _open_dataset(self.dataset, self.cfg)
        rows = ds if self.kept is None else ds.select(self.kept).flatten_indices()
        return Shards(_text_columns(rows, cfg), cfg, load_encoder(cfg, self.model))


def encode_shard(shards: Shards, rows: tuple[int, int]) -> tuple[np.ndarray, int]:
    """One shard's vectors (in the stored dtype) and how many of its texts were truncated."""
    lo, hi = rows
    texts = _texts(shards.texts[lo:hi], shards.cfg)
    pages.release_dataset_pages(pages.dataset_files(shards.texts))  # the text is copied out: see dataset_pages.py
    vectors = shards.encoder.encode(texts)
    if not np.isfinite(vectors).all():
        raise DataError(f"the model produced NaN or infinite vectors for rows {lo}-{hi - 1}")
    return vectors.astype(shards.cfg.dtype, copy=False), shards.encoder.count_truncated(texts)


def _encode_all(
    shards: Shards, setup: LoadShards, executor: Executor, out: Path, fp: str, reporter: Reporter
) -> tuple[int, int]:
    """Encode every shard not done yet into the partial matrix; return (truncated, zero rows)."""
    cfg, encoder = shards.cfg, shards.encoder
    n = len(shards.texts)
    record = {
        "fingerprint": fp,
        # Anything that can change the bytes of a shard: a run that differs restarts from zero.
        "shard_rows": cfg.shard_rows,
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "encoder": encoder.name,
        "dim": int(encoder.dim),
        "dtype": cfg.dtype,
        "rows": n,
        "done": 0,
        "truncated": 0,
        "zero_rows": 0,
    }
    start, matrix = partial.resume_point(out, record, reporter)
    finished = {i for lo, hi in record.get("shards", []) for i in range(lo, hi)}
    if matrix is not None:
        reporter.log(f"resuming: {start:,} of {n:,} rows already embedded in {out}; {_rest(finished, n, cfg)}", "cyan")
    else:
        (out / PROGRESS).unlink(missing_ok=True)
        matrix = np.lib.format.open_memmap(out / PARTIAL, mode="w+", dtype=cfg.dtype, shape=(n, encoder.dim))
    try:
        partial.reserve(out / PARTIAL, out)
    except BaseException:
        del matrix
        if not start:
            (out / PARTIAL).unlink(missing_ok=True)  # nothing embedded yet: do not keep a large empty file
        raise
    todo = [(lo, min(lo + cfg.shard_rows, n)) for lo in range(0, n, cfg.shard_rows)]
    todo = [rows for i, rows in enumerate(todo) if i not in finished]
    try:
        with _sigterm_as_interrupt(), reporter.progress("embedding", n) as advance:
            advance(start)
            for k, (block, truncated) in unordered(executor, encode_shard, todo, setup, local=shards):
                lo, hi = todo[k]
                matrix[lo:hi] = block
                matrix.flush()
                artifacts.release_pages(matrix)  # written pages are in the file: not this process's memory
                # The record moves only after the shard's bytes are on disk: a kill in between
                # redoes the shard, never skips it. Shards may finish in any order (a set).
                finished.add(lo // cfg.shard_rows)
                record["shards"] = partial.as_ranges(finished)
                record["done"] += hi - lo
                record["truncated"] += truncated
                record["zero_rows"] += int(np.count_nonzero(~block.any(axis=1)))
                artifacts.write_json(out / PROGRESS, record)
                advance(hi - lo)
    except KeyboardInterrupt:
        raise Interrupted(_resume_hint("interrupted", record["done"], n, out)) from None
    except Exception:
        if record["done"]:
            reporter.warn(_resume_hint("embed failed", record["done"], n, out))
        raise
    finally:
        del matrix
    return record["truncated"], record["zero_rows"]


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A kill (SIGTERM, as CI sends on cancel) stops like Ctrl-C: between shards, saying how to resume."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _rest(finished: set[int], n: int, cfg: EmbedConfig) -> str:
    """What a resumed run still has to do: the rows after a prefix, or the shards left (a Ray run's holes)."""
    count = -(-n // cfg.shard_rows)
    if finished == set(range(len(finished))):
        return f"continuing from row {min(len(finished) * cfg.shard_rows, n):,}"
    return f"continuing with the {count - len(finished):,} shards left"


def _resume_hint(what: str, done: int, n: int, out: Path) -> str:
    if not done:
        return f"{what} before the first shard was embedded; nothing was kept"
    return f"{what}: {done:,} of {n:,} rows are embedded in {out}; run the same embed command again to resume"
