"""Stage 3: write the selected source rows as a shuffled JSONL mixture."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, console, data
from smart_cli.errors import DataError
from smart_cli.select_samples import read_samples


@dataclass
class ExportConfig:
    """Defaults of ``smart-cli export``: shuffle with seed 23, source found through provenance."""

    seed: int = 23
    dataset: str | None = None


def source_dataset(meta: dict, override: str | None):
    """Open the dataset the samples were selected from, and check it is the same size."""
    identity = meta.get("dataset") or {}
    spec = override or identity.get("path") or identity.get("spec")
    if not spec:
        raise DataError("the samples file does not record its source dataset: pass --dataset")
    ds = data.load(spec, identity.get("split", "train"))
    expected = identity.get("num_rows")
    if expected is not None and len(ds) != expected:
        raise DataError(
            f"{spec} has {len(ds):,} rows but the embeddings were made from {expected:,}: not the same dataset"
        )
    return ds


def mixture_records(table, meta: dict, ds, seed: int):
    """The mixture's records in their shuffled order: prompt, response, task, source row."""
    cols = meta.get("columns") or {}
    prompt_col, response_col = cols.get("prompt", "inputs"), cols.get("response", "targets")
    data.check_columns(ds, data.Columns(prompt_col, response_col, cols.get("task", "task_name"), None))
    rows = table.column("row").to_numpy()
    if len(rows) and (rows.min() < 0 or rows.max() >= len(ds)):
        raise DataError(f"the samples name row {int(rows.max())}, but the dataset has {len(ds):,} rows")
    if len(np.unique(rows)) != len(rows):
        raise DataError("the samples file names some rows twice")
    # Canonical order (by source row) first, then one seeded permutation: the mixture depends
    # only on the set of rows and the seed.
    order = np.argsort(rows, kind="stable")
    order = order[np.random.default_rng(seed).permutation(len(order))]
    tasks = table.column("task").to_pylist()
    source = ds.select(rows[order].tolist()).select_columns([prompt_col, response_col])
    for i, rec in zip(order, source):
        yield {"prompt": rec[prompt_col], "response": rec[response_col], "task": tasks[i], "row": int(rows[i])}


def export(samples: str | Path, out: str | Path, cfg: ExportConfig | None = None) -> dict:
    """Write the mixture to ``out`` (JSONL); return a short summary."""
    cfg = cfg or ExportConfig()
    table, meta = read_samples(samples)
    ds = source_dataset(meta, cfg.dataset)
    n = 0
    with artifacts.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        with console.progress("writing mixture", table.num_rows) as advance:
            for rec in mixture_records(table, meta, ds, cfg.seed):
                fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
                n += 1
                advance(1)
    return {"path": str(out), "lines": n, "sha256": artifacts.sha256_file(out)}
