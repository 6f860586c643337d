"""What ``embed`` reads: the dataset(s), the rows and text to embed, and what identifies them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from smart_cli import artifacts, chat, data, defaults, sources
from smart_cli.embed.config import EmbedConfig
from smart_cli.errors import DataError
from smart_cli.reporter import Reporter


def _write_rows(ds, cfg: EmbedConfig, identity: dict, path: Path, kept: np.ndarray | None) -> None:
    """rows.parquet: each embedded row's index in the split (``kept``: the rows embedded), task and
    template; with several datasets also its source (``dataset``: position in the list)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = cfg.columns
    rows = np.arange(len(ds), dtype=np.int64) if kept is None else kept
    source = _source(ds, cfg)
    if cfg.task_from:
        task = pa.array(sources.row_tasks(ds, {"task_from": cfg.task_from}, identity, rows), pa.string())
    else:
        task = data.label_strings(ds, columns.task, kept)
    table = pa.table(
        {
            "row": pa.array(rows),
            "task": task,
            "template_type": data.label_strings(ds, columns.template, kept),
            **({"source": data.label_strings(ds, source, kept)} if source else {}),
            **({"dataset": sources.source_index(identity, len(ds))[rows]} if "sources" in identity else {}),
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


def _inputs(identity: dict, ds, cfg: EmbedConfig, model: str) -> dict:
    """Everything the vectors depend on: equal inputs give equal fingerprints and equal bytes."""
    columns = cfg.columns.as_dict() | ({"task": None, "task_from": cfg.task_from} if cfg.task_from else {})
    return {
        "dataset": identity,
        "columns": {**columns, **({"source": source} if (source := _source(ds, cfg)) else {})},
        "text": cfg.text,
        "model": model,
        "backend": cfg.backend,
        "dtype": cfg.dtype,
        # Only where it departs from fp32, so existing fp32 folders keep their fingerprint.
        **({"precision": cfg.precision} if cfg.precision != "fp32" else {}),
        # The static backend's window (its vectors depend on it); transformer folders keep their fingerprint.
        **({"max_tokens": cfg.max_tokens} if cfg.backend == "static" else {}),
        # Stage 1's means from the transformer and the rows' map (static folders); absent otherwise.
        **({"task_means": teacher_record(cfg)} if cfg.stage1 == "transformer" else {}),
        **({"row_map": map_method(cfg)} if cfg.maps_rows else {}),
        # Chat rows only, for the same reason.
        **({"chat": {k: getattr(cfg, k) for k in ("system_turns", "role_map", "bad_rows")}} if cfg.is_chat else {}),
    }


def map_method(cfg: EmbedConfig) -> dict:
    """What a static folder's row map depends on: the sample, the method and, for tokens, the fit's settings."""
    if cfg.row_kind == "tokens":
        from dataclasses import asdict

        from smart_cli.embed.token_fit import FIT

        return teacher_record(cfg) | {"method": "token-vectors", **asdict(FIT)}
    return teacher_record(cfg) | {"method": "affine-least-squares"}


def teacher_record(cfg: EmbedConfig) -> dict:
    """What the transformer-estimated task means depend on, besides the model and rows."""
    return {"method": "transformer-sample", "sample_rows": cfg.task_sample, "seed": defaults.SEED}


def _chat_rows(ds, cfg: EmbedConfig, reporter: Reporter) -> np.ndarray | None:
    """The rows to embed where malformed conversations are skipped, else None (all rows)."""
    kept, skipped, first = data.conversation_rows(
        ds, cfg.columns.messages or "", chat.parse_role_map(cfg.role_map), skip=cfg.bad_rows == "skip"
    )
    if skipped:
        reporter.warn(f"{skipped:,} of {len(ds):,} rows are not conversations and were skipped (first: row {first})")
    return kept


def _open_dataset(dataset: str | Sequence[str], cfg: EmbedConfig):
    """The split to embed (several datasets: one after the other), its identity, and ``cfg`` as it
    applies to it: checked against the columns it names.

    For chat rows a missing default template column means one group per task; a template column
    the user names that is missing stays an error (as for every other column).
    """
    c = cfg.columns
    roles = {"prompt": c.prompt, "response": c.response, "task": c.task, "template": c.template, "messages": c.messages}
    ds, identity = sources.load(
        sources.as_list(dataset),
        cfg.split,
        trust_remote_code=cfg.trust_remote_code,
        name=cfg.name,
        revision=cfg.revision,
        columns={**roles, "source": cfg.source_column},
    )
    default = data.Columns().template
    if cfg.is_chat and cfg.columns.template == default and default not in ds.column_names:
        cfg = replace(cfg, columns=replace(cfg.columns, template=None))
    if cfg.task_from:
        cfg = replace(cfg, columns=replace(cfg.columns, task=""))
    data.check_columns(ds, cfg.columns)
    if getattr(ds, "_indices", None) is not None:
        ds = ds.flatten_indices()
    return ds, cfg, identity


def _text_columns(ds, cfg: EmbedConfig):
    """Only the embedded columns, turned into Python strings shard by shard."""
    if cfg.columns.messages is not None:
        return ds.select_columns([cfg.columns.messages])
    return ds.select_columns([cfg.columns.prompt] + ([cfg.columns.response] if cfg.text != "prompt" else []))
