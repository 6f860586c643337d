"""Provenance of a mixture: what select-samples carries forward, and ``X.manifest.json`` beside ``X.jsonl``.

The manifest holds everything that reproduces the mixture and lets ``verify`` prove it: source
dataset, revision and split; columns; embedding model and text; both stages' functions and
parameters (M', N', seeds, cap); every task's gain, weight, budget, size and line count; the
line format; the tool version; the mixture's sha256; the paths of the artifacts it came from;
and, last and on one line, the source row of every line in line order. No timestamps: the same
inputs give the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from smart_cli import artifacts
from smart_cli.errors import DataError

FORMAT = "smart-cli/manifest"
_EMBEDDING_KEYS = ("model", "encoder", "backend", "text", "dtype", "dim", "rows", "max_seq_length", "fingerprint")
_TASK_KEYS = ("function", "lambda", "num_tasks", "budget", "seed", "cap", "rows", "fingerprint")


def _targeted(record: dict) -> dict:
    """A targeted selection's query and eta (``--query``); nothing otherwise, so manifests keep their bytes."""
    return {k: record[k] for k in ("query", "eta") if k in record}


def manifest_path(mixture: str | Path) -> Path:
    """``X.jsonl`` / ``X.jsonl.gz`` / ``X.json`` -> ``X.manifest.json``, in the same folder."""
    mixture = Path(mixture)
    name = mixture.name
    for suffix in (".gz", ".jsonl", ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return mixture.with_name(f"{name}.manifest.json")


def carried(
    es: artifacts.EmbeddingSet,
    tasks_doc: artifacts.TasksDoc,
    tasks_path: str | Path | None,
    query: str | Path | None = None,
) -> dict:
    """What ``select-samples`` copies into ``samples.parquet``'s metadata so export can write the manifest."""
    sources = artifacts.task_sources(es)
    source_of = dict(zip(es.task_names, sources)) if sources is not None else {}
    tasks = [{**t, **({"source": source_of[t["task"]]} if t["task"] in source_of else {})} for t in tasks_doc["tasks"]]
    doc: dict = dict(tasks_doc)  # TASKS.json's keys, ``lambda`` among them
    return {
        # chat settings only where the rows are chat rows: other manifests keep their bytes
        "embedding": {k: es.meta.get(k) for k in _EMBEDDING_KEYS}
        | ({"chat": es.meta["chat"]} if "chat" in es.meta else {}),
        "task_selection": {**{k: doc.get(k) for k in _TASK_KEYS}, **_targeted(doc), "tasks": tasks},
        "paths": {
            "embeddings": str(Path(es.path).resolve()),
            "tasks": str(Path(tasks_path).resolve()) if tasks_path else None,
            **({"query": str(Path(query).resolve())} if query else {}),  # a targeted selection's query EMB_DIR
        },
    }


def build(
    samples_meta: dict,
    *,
    samples: str | Path,
    mixture: str | Path,
    line_format,
    seed: int,
    rows: list[int],
    tasks: list[str],
    sha256: str,
    read_from: str | None,
    keep_columns: tuple[str, ...] = (),
) -> dict:
    """The manifest of a mixture whose lines are source ``rows`` of ``tasks``, in line order."""
    selection = samples_meta.get("task_selection") or {}
    counts = Counter(tasks)
    task_rows = [
        {
            **{k: t.get(k) for k in ("task", "source", "gain", "weight", "budget", "size") if k in t},
            "count": counts.get(t["task"], 0),
        }
        for t in selection.get("tasks", [])
    ]
    mixture = Path(mixture)
    return {
        "format": FORMAT,
        "producer": artifacts.producer(),
        "sha256": sha256,  # of the mixture file, as written (compressed for .gz)
        "mixture": {
            "file": mixture.name,
            "lines": len(rows),
            "bytes": mixture.stat().st_size,
            "format": line_format.name,
            "system": line_format.system,
            "provenance_fields": line_format.with_provenance,
            "compression": "gzip" if str(mixture).endswith(".gz") else None,
            "seed": seed,
            **({"keep_columns": list(keep_columns)} if keep_columns else {}),
        },
        "dataset": {**(samples_meta.get("dataset") or {}), "read_from": read_from},
        "columns": samples_meta.get("columns"),
        "embedding": samples_meta.get("embedding"),
        "select_tasks": {k: v for k, v in selection.items() if k != "tasks"} or None,
        "select_samples": {
            k: samples_meta.get(k)
            for k in ("function", "lambda", "seed", "fingerprint", "max_dense_rows", "knn", "optimizer", "groups")
        }
        | _targeted(samples_meta),
        "tasks": task_rows,
        # relative to the mixture's folder, so a run into another folder writes the same manifest
        "paths": artifacts.relative_paths(
            {**(samples_meta.get("paths") or {}), "samples": str(Path(samples).resolve())}, mixture.resolve().parent
        ),
        "rows": [int(r) for r in rows],
    }


def dumps(manifest: dict) -> str:
    """Canonical JSON (sorted keys, 2-space indent), with the long ``rows`` list last and on one line."""
    head = artifacts.canonical_json({k: v for k, v in manifest.items() if k != "rows"}).rstrip()
    assert head.endswith("}")
    rows = json.dumps(manifest.get("rows", []), separators=(",", ":"))
    return f'{head[:-1].rstrip()},\n  "rows": {rows}\n}}\n'


def write(path: str | Path, manifest: dict) -> None:
    with artifacts.atomic_path(path) as tmp:
        tmp.write_text(dumps(manifest), encoding="utf-8")


def read(mixture: str | Path) -> dict:
    """The manifest beside ``mixture``; a clear error when it is missing or not a manifest."""
    path = manifest_path(mixture)
    if not path.is_file():
        raise DataError(f"no manifest beside {mixture}: expected {path} (written by smart-cli export)")
    doc = artifacts.read_json(path, "manifest")
    if doc.get("format") != FORMAT or not isinstance(doc.get("mixture"), dict) or "sha256" not in doc:
        raise DataError(f"{path} is not a mixture manifest written by smart-cli export")
    doc["paths"] = artifacts.absolute_paths(doc.get("paths"), path.resolve().parent)
    return doc
