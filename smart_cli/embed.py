"""Stage 0: embed every row's prompt into ``EMB_DIR``, streaming and resumable.

Rows are read in shards of ``shard_rows`` and written straight into a memory-mapped
``.embeddings.partial.npy``; after each shard a small progress record is replaced atomically. A
killed run, started again with the same inputs, continues after the last complete shard and
ends with the same bytes as an uninterrupted run. ``meta.json`` is written last: its presence
marks a complete folder.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import artifacts, chat, data, defaults
from smart_cli.artifacts import EMBEDDINGS, META, PARTIAL, PROGRESS, ROWS, partial
from smart_cli.errors import DataError, Interrupted, UsageError, first_line, param
from smart_cli.executor import Executor, InProcess
from smart_cli.reporter import Reporter, or_silent
from smart_cli.stage import Summary


@dataclass
class EmbedConfig:
    """Defaults of ``smart-cli embed``; recipes in ``configs/`` override them by name."""

    split: str = "train"
    columns: data.Columns = field(default_factory=data.Columns)
    text: str = defaults.TEXT_MODES[0]
    model: str = defaults.MODEL
    backend: str = defaults.BACKENDS[0]
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    dtype: str = defaults.DTYPES[0]
    # Inference precision of the transformer backend (bf16: autocast); the static one has none.
    precision: str = defaults.PRECISIONS[0]
    shard_rows: int = defaults.SHARD_ROWS
    trust_remote_code: bool = False
    # Recorded per row as rows.parquet's ``source`` (for --cap flan2022 and the report); a dataset
    # without this column is fine: the folder then has no ``source``.
    source_column: str | None = "task_source"
    # Chat rows (``columns.messages`` set): system turns in the embedded text, extra role names
    # ("bot=assistant,narrator=system"), and what a malformed conversation does.
    system_turns: str = chat.SYSTEM_TURNS[0]
    role_map: str | None = None
    bad_rows: str = chat.BAD_ROWS[0]

    @property
    def is_chat(self) -> bool:
        return self.columns.messages is not None

    def validate(self) -> None:
        for name, choices in (
            ("text", chat.TEXT_MODES if self.is_chat else defaults.TEXT_MODES),
            ("system_turns", chat.SYSTEM_TURNS),
            ("bad_rows", chat.BAD_ROWS),
            ("dtype", defaults.DTYPES),
            ("backend", defaults.BACKENDS),
            ("precision", defaults.PRECISIONS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise UsageError(f"unknown {param(name)} {value!r}; choose from {', '.join(choices)}")
        precision = param("precision")
        if self.precision != "fp32" and self.backend != "transformer":
            raise UsageError(f"{precision} {self.precision} applies to {param('backend')} transformer only")
        if self.precision != "fp32" and self.device and "," in self.device:
            raise UsageError(f"{precision} {self.precision} needs one device; several GPUs run in fp32")
        if self.batch_size < 1:
            raise UsageError(f"{param('batch_size')} must be at least 1")
        if self.shard_rows < 1:
            raise UsageError(f"{param('shard_rows')} must be at least 1")
        chat.check_options(self.is_chat, self.role_map, self.system_turns, self.bad_rows)


def _write_rows(ds, columns: data.Columns, path: Path, source: str | None, kept: np.ndarray | None) -> None:
    """rows.parquet: each embedded row's index in the split (``kept``: the rows embedded), task, template."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "row": pa.array(np.arange(len(ds), dtype=np.int64) if kept is None else kept),
            "task": data.label_strings(ds, columns.task, kept),
            "template_type": data.label_strings(ds, columns.template, kept),
            **({"source": data.label_strings(ds, source, kept)} if source else {}),
        }
    )
    if table.column("task").null_count:
        raise DataError(f"{table.column('task').null_count} rows have no task ({columns.task!r} is null)")
    with artifacts.atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _source(ds, cfg: EmbedConfig) -> str | None:
    """The source column if the dataset has it (it is optional)."""
    return cfg.source_column if cfg.source_column and cfg.source_column in ds.column_names else None


def _texts(batch: dict, cfg: EmbedConfig) -> list[str]:
    if cfg.is_chat:
        roles = chat.parse_role_map(cfg.role_map)
        return [chat.text(chat.turns(v, roles), cfg.text, cfg.system_turns) for v in batch[cfg.columns.messages]]
    prompts = [data.text_of(v) for v in batch[cfg.columns.prompt]]
    if cfg.text == "prompt":
        return prompts
    responses = [data.text_of(v) for v in batch[cfg.columns.response]]
    return [f"{p}\n{r}" for p, r in zip(prompts, responses)]


def _inputs(dataset: str, ds, cfg: EmbedConfig, model: str) -> dict:
    """Everything the vectors depend on: equal inputs give equal fingerprints and equal bytes."""
    return {
        "dataset": data.identity(dataset, cfg.split, ds),
        "columns": {**cfg.columns.as_dict(), **({"source": source} if (source := _source(ds, cfg)) else {})},
        "text": cfg.text,
        "model": model,
        "backend": cfg.backend,
        "dtype": cfg.dtype,
        # Only where it departs from fp32, so existing fp32 folders keep their fingerprint.
        **({"precision": cfg.precision} if cfg.precision != "fp32" else {}),
        # Chat rows only, for the same reason.
        **({"chat": {k: getattr(cfg, k) for k in ("system_turns", "role_map", "bad_rows")}} if cfg.is_chat else {}),
    }


def _chat_rows(ds, cfg: EmbedConfig, reporter: Reporter) -> np.ndarray | None:
    """The rows to embed where malformed conversations are skipped, else None (all rows)."""
    kept, skipped, first = data.conversation_rows(
        ds, cfg.columns.messages or "", chat.parse_role_map(cfg.role_map), skip=cfg.bad_rows == "skip"
    )
    if skipped:
        reporter.warn(f"{skipped:,} of {len(ds):,} rows are not conversations and were skipped (first: row {first})")
    return kept


def embed(
    dataset: str,
    out: str | Path,
    cfg: EmbedConfig | None = None,
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> dict:
    """Embed ``dataset`` into the folder ``out``; return the ``meta.json`` object.

    ``executor`` encodes the shards (default: here, with one model); each of its workers loads
    the model once. The vectors do not depend on it.
    """
    from smart_cli import backends

    reporter = or_silent(reporter)
    (cfg := cfg or EmbedConfig()).validate()
    out = Path(out)
    ds, cfg = _open_dataset(dataset, cfg)
    model = backends.resolve_model(cfg.model)
    inputs = _inputs(dataset, ds, cfg, cfg.model)
    fp = artifacts.fingerprint(inputs)

    if _complete(out, fp, reporter):
        reporter.log(f"{out} is already complete for these inputs; nothing to do", "green")
        return artifacts.read_json(out / META, "embedding metadata")
    _check_folder(out)
    kept = _chat_rows(ds, cfg, reporter) if cfg.is_chat else None
    rows = ds if kept is None else ds.select(kept).flatten_indices()
    encoder = load_encoder(cfg, model)
    created = artifacts.first_missing(out / META)  # the folder (and parents) this run makes, if any
    try:
        partial.check_space(out, len(rows), int(encoder.dim), cfg.dtype)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / META).unlink(missing_ok=True)  # the folder is incomplete until the new meta lands
        except OSError as exc:
            raise DataError(f"cannot write to {out}: {exc.strerror}") from exc
        _write_rows(ds, cfg.columns, out / ROWS, _source(ds, cfg), kept)
        shards = Shards(_text_columns(rows, cfg), cfg, encoder)
        setup = LoadShards(dataset, cfg, model, kept)
        truncated, zero_rows = _encode_all(shards, setup, executor or InProcess(), out, fp, reporter)
    except BaseException:
        # A run that kept nothing worth resuming leaves nothing behind.
        if created is not None and not (out / PROGRESS).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        getattr(encoder, "close", lambda: None)()

    skipped = {"skipped_rows": len(ds) - len(rows)} if cfg.is_chat else {}
    return _finish(out, {**inputs, "fingerprint": fp, **skipped}, encoder, len(rows), truncated, zero_rows, reporter)


def _open_dataset(dataset: str, cfg: EmbedConfig):
    """The split to embed, checked against the columns ``cfg`` names (and ``cfg`` as it applies to it).

    For chat rows a missing default template column means one group per task; a template column
    the user names that is missing stays an error (as for every other column).
    """
    ds = data.load(dataset, cfg.split, trust_remote_code=cfg.trust_remote_code)
    default = data.Columns().template
    if cfg.is_chat and cfg.columns.template == default and default not in ds.column_names:
        cfg = replace(cfg, columns=replace(cfg.columns, template=None))
    data.check_columns(ds, cfg.columns)
    if getattr(ds, "_indices", None) is not None:
        ds = ds.flatten_indices()
    return ds, cfg


def load_encoder(cfg: EmbedConfig, model: str):
    """The model ``cfg`` names (resolved to ``model``), or one line saying why it cannot load."""
    from smart_cli import backends

    try:
        return backends.load_encoder(
            cfg.backend,
            model,
            device=cfg.device,
            batch_size=cfg.batch_size,
            trust_remote_code=cfg.trust_remote_code,
            precision=cfg.precision,
        )
    except (OSError, ValueError, RuntimeError) as exc:  # not found, not a model, no such device
        raise DataError(f"cannot load model {cfg.model!r} ({cfg.backend}): {first_line(exc)}") from exc


def _finish(out: Path, inputs: dict, encoder, rows: int, truncated: int, zero_rows: int, reporter: Reporter) -> dict:
    """Put the finished matrix in place and write ``meta.json`` last: the folder is then complete."""
    (out / PARTIAL).replace(out / EMBEDDINGS)
    fp = inputs.pop("fingerprint")
    meta = {
        "format": "smart-cli/embeddings",
        "producer": artifacts.producer(),
        **inputs,
        "encoder": encoder.name,
        "dim": int(encoder.dim),
        "rows": rows,
        "max_seq_length": encoder.max_seq_length,
        "truncated": truncated,
        "zero_rows": zero_rows,
        "fingerprint": fp,
        "rows_sha256": artifacts.sha256_file(out / ROWS),
        "embeddings_sha256": artifacts.sha256_file(out / EMBEDDINGS),
    }
    artifacts.write_json(out / META, meta)
    (out / PROGRESS).unlink(missing_ok=True)
    if truncated:
        window = f" ({encoder.max_seq_length} tokens)" if encoder.max_seq_length else ""
        reporter.warn(
            f"{truncated:,} of {rows:,} texts were longer than the model window{window} and were truncated "
            "(meta.json 'truncated')"
        )
    if zero_rows:
        reporter.warn(f"{zero_rows:,} texts gave a zero vector (no known token); they are kept (meta.json 'zero_rows')")
    return meta


def _complete(out: Path, fp: str, reporter: Reporter) -> bool:
    """``out`` is a finished, intact folder for these inputs (a damaged one is embedded again)."""
    if not (out / META).is_file():
        return False
    try:
        old = artifacts.read_json(out / META, "embedding metadata")
        if old.get("fingerprint") != fp:
            return False
        artifacts.open_embeddings(out)
    except DataError as exc:
        reporter.warn(f"{out} is damaged ({exc}); embedding again")
        return False
    return True


_OURS = {META, ROWS, EMBEDDINGS, PARTIAL, PROGRESS}


def _check_folder(out: Path) -> None:
    """Refuse to fill a folder that holds other files and none of embed's: a wrong --out."""
    if out.is_dir():
        names = {p.name.lstrip(".").split(".tmp-")[0] for p in out.iterdir()}  # ".x.tmp-PID": ours too
        if names and not names & {n.lstrip(".") for n in _OURS}:
            raise UsageError(
                f"{param('out')} {out} is a folder with other files in it and no embeddings: "
                "name a new folder for EMB_DIR"
            )


def _text_columns(ds, cfg: EmbedConfig):
    """Only the embedded columns, turned into Python strings shard by shard."""
    if cfg.columns.messages is not None:
        return ds.select_columns([cfg.columns.messages])
    return ds.select_columns([cfg.columns.prompt] + ([cfg.columns.response] if cfg.text != "prompt" else []))


@dataclass
class Shards:
    """A worker's context: the rows to embed and a loaded model."""

    texts: Any  # datasets.Dataset of the embedded columns
    cfg: EmbedConfig
    encoder: Any  # backends.Encoder


@dataclass(frozen=True)
class LoadShards:
    """Builds :class:`Shards` in a worker process: opens the dataset and loads the model once."""

    dataset: str
    cfg: EmbedConfig
    model: str
    kept: np.ndarray | None = None  # the rows embedded, where malformed conversations were skipped

    def __call__(self) -> Shards:
        ds, cfg = _open_dataset(self.dataset, self.cfg)
        rows = ds if self.kept is None else ds.select(self.kept).flatten_indices()
        return Shards(_text_columns(rows, cfg), cfg, load_encoder(cfg, self.model))


def encode_shard(shards: Shards, rows: tuple[int, int]) -> tuple[np.ndarray, int]:
    """One shard's vectors (in the stored dtype) and how many of its texts were truncated."""
    lo, hi = rows
    texts = _texts(shards.texts[lo:hi], shards.cfg)
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
    if matrix is not None:
        reporter.log(
            f"resuming: {start:,} of {n:,} rows already embedded in {out}; continuing from row {start:,}", "cyan"
        )
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
    todo = [(lo, min(lo + cfg.shard_rows, n)) for lo in range(start, n, cfg.shard_rows)]
    try:
        with _sigterm_as_interrupt(), reporter.progress("embedding", n) as advance:
            advance(start)
            for (lo, hi), (block, truncated) in zip(todo, executor.imap(encode_shard, todo, setup, local=shards)):
                matrix[lo:hi] = block
                matrix.flush()
                artifacts.release_pages(matrix)  # written pages are in the file: not this process's memory
                # The record moves only after the shard's bytes are on disk: a kill in between
                # redoes the shard, never skips it.
                record["done"] = hi
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


def _resume_hint(what: str, done: int, n: int, out: Path) -> str:
    if not done:
        return f"{what} before the first shard was embedded; nothing was kept"
    return f"{what}: {done:,} of {n:,} rows are embedded in {out}; run the same embed command again to resume"


@dataclass(frozen=True)
class EmbedSummary(Summary):
    command = "embed"
    rows: int
    dim: int
    fingerprint: str
    embeddings_sha256: str | None
    rows_sha256: str | None

    def message(self) -> str:
        return f"embedded {self.rows:,} rows ({self.dim}-d) into {self.out}"


def run(
    inputs: str, out: Path, cfg: EmbedConfig, *, reporter: Reporter | None = None, executor: Executor | None = None
) -> EmbedSummary:
    """Embed the dataset ``inputs`` (hub id, folder or files) into the ``EMB_DIR`` ``out``."""
    meta = embed(inputs, out, cfg, reporter=reporter, executor=executor)
    return EmbedSummary(
        out=Path(out),
        rows=meta["rows"],
        dim=meta["dim"],
        fingerprint=meta["fingerprint"],
        embeddings_sha256=meta.get("embeddings_sha256"),
        rows_sha256=meta.get("rows_sha256"),
    )
