"""Stage 0: embed every row's prompt into ``EMB_DIR``, streaming and resumable.

``config.py`` holds the options, ``source.py`` what is read (one dataset or several, the rows
and the text of each), ``shards.py`` the encoding loop; this module ties them into the stage.

Rows are read in shards of ``shard_rows`` and written straight into a memory-mapped
``.embeddings.partial.npy``; after each shard a small progress record is replaced atomically. A
killed run, started again with the same inputs, continues after the last complete shard and
ends with the same bytes as an uninterrupted run. ``meta.json`` is written last: its presence
marks a complete folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from smart_cli import artifacts, sources
from smart_cli import dataset_pages as pages
from smart_cli.artifacts import (
    EMBEDDINGS,
    META,
    PARTIAL,
    PROGRESS,
    ROWS,
    STATIC_MAP,
    STATIC_TOKENS,
    TASK_MEANS,
    partial,
)
from smart_cli.embed.config import EmbedConfig
from smart_cli.embed.shards import LoadShards, Shards, _encode_all, encode_shard, load_encoder
from smart_cli.embed.source import _chat_rows, _inputs, _open_dataset, _text_columns, _write_rows
from smart_cli.embed.teacher import (
    TeacherSample,
    forget_sample,
    map_file,
    map_record,
    row_map,
    teacher_sample,
    token_table,
    write_task_means,
)
from smart_cli.errors import DataError, UsageError, param
from smart_cli.executor import Executor, InProcess
from smart_cli.reporter import Reporter, or_silent
from smart_cli.stage import Summary

__all__ = ["EmbedConfig", "EmbedSummary", "LoadShards", "Shards", "embed", "encode_shard", "load_encoder", "run"]


def embed(
    dataset: str | Sequence[str],
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
    ds, cfg, identity = _open_dataset(dataset, cfg)
    model = backends.resolve_model(cfg.model)
    cfg = replace(cfg, max_tokens=cfg.window(model))
    inputs = _inputs(identity, ds, cfg, cfg.model)
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
            (out / TASK_MEANS).unlink(missing_ok=True)  # an earlier run's, with other inputs
            for name in {STATIC_MAP, STATIC_TOKENS} - ({map_file(cfg)} if cfg.maps_rows else set()):
                (out / name).unlink(missing_ok=True)  # an earlier run's, with another map
        except OSError as exc:
            raise DataError(f"cannot write to {out}: {exc.strerror}") from exc
        _write_rows(ds, cfg, identity, out / ROWS, kept)
        pages.release_dataset_pages(pages.dataset_files(ds))  # the task and template columns, read whole
        texts = _text_columns(rows, cfg)
        sample = teacher_sample(texts, cfg, model, out, fp, reporter) if cfg.samples_teacher else None
        if sample is not None and cfg.maps_rows:
            cfg, encoder = _mapped(sample, texts, cfg, encoder, out, fp, reporter)
            partial.check_space(out, len(rows), int(encoder.dim), cfg.dtype)
        pages.release_dataset_pages(pages.dataset_files(rows))  # what the rows and the sample read
        shards = Shards(texts, cfg, encoder)
        setup = LoadShards(tuple(sources.entry(d) for d in sources.as_list(dataset)), cfg, model, kept)
        truncated, zero_rows = _encode_all(shards, setup, executor or InProcess(), out, fp, reporter)
        if sample is not None:
            inputs = {**inputs, **_teacher_records(sample, cfg, out)}
    except BaseException:
        # A run that kept nothing worth resuming leaves nothing behind.
        if created is not None and not (out / PROGRESS).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        getattr(encoder, "close", lambda: None)()

    skipped = {"skipped_rows": len(ds) - len(rows)} if cfg.is_chat else {}
    return _finish(out, {**inputs, "fingerprint": fp, **skipped}, encoder, len(rows), truncated, zero_rows, reporter)


def _mapped(sample: TeacherSample, texts, cfg: EmbedConfig, encoder, out: Path, fp: str, reporter: Reporter):
    """The config and encoder that store every row through the map fitted on ``sample``."""
    from smart_cli.embed.shards import mapped_encoder

    record = out / PROGRESS
    resumed = record.is_file() and artifacts.read_json(record, "progress record").get("fingerprint") == fp
    if cfg.row_kind == "tokens":
        path = token_table(sample, texts, cfg, encoder, out, resumed, reporter)
    else:
        path = row_map(sample, texts, cfg, encoder, out, resumed)
    cfg = replace(cfg, static_map=str(path))
    return cfg, mapped_encoder(cfg, encoder)


def _teacher_records(sample: TeacherSample, cfg: EmbedConfig, out: Path) -> dict:
    """``task_means.npy`` written from the stored rows, and the ``meta.json`` records of both parts."""
    records = {}
    if cfg.stage1 == "transformer":
        stored = np.load(out / PARTIAL, mmap_mode="r", allow_pickle=False)
        records["task_means"] = write_task_means(sample, cfg, out, stored)
        del stored
    if cfg.maps_rows:
        records["row_map"] = map_record(sample, cfg, out)
    forget_sample(out)
    return records


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


_OURS = {META, ROWS, EMBEDDINGS, PARTIAL, PROGRESS, TASK_MEANS, STATIC_MAP, STATIC_TOKENS}


def _check_folder(out: Path) -> None:
    """Refuse to fill a folder that holds other files and none of embed's: a wrong --out."""
    if out.is_dir():
        names = {p.name.lstrip(".").split(".tmp-")[0] for p in out.iterdir()}  # ".x.tmp-PID": ours too
        if names and not names & {n.lstrip(".") for n in _OURS}:
            raise UsageError(
                f"{param('out')} {out} is a folder with other files in it and no embeddings: "
                "name a new folder for EMB_DIR"
            )


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
    inputs: str | Sequence[str],
    out: Path,
    cfg: EmbedConfig,
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
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
