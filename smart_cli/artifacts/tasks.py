"""``TASKS.json``, what ``select-tasks`` writes and ``select-samples`` reads.

A JSON object: the tasks chosen, in greedy order, each with its gain, weight, budget and size;
the parameters that chose them; and the fingerprint of the embeddings they were chosen from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from smart_cli.artifacts.embeddings import EmbeddingSet
from smart_cli.artifacts.files import canonical_json, fingerprint, producer, read_json, write_json
from smart_cli.errors import DataError

FORMAT = "smart-cli/tasks"


class TaskEntry(TypedDict, total=False):
    task: str
    gain: float
    weight: float
    budget: int
    size: int
    source: str | None  # only in the copy a samples file carries


class EmbeddingsRef(TypedDict):
    fingerprint: str
    rows: int
    tasks: int


class TasksDoc(TypedDict, total=False):
    """The parsed ``TASKS.json``: keys as in the file."""

    format: str
    producer: dict
    embeddings: EmbeddingsRef
    dataset: dict | None
    columns: dict | None
    function: str
    #: ``lambda`` in the file (a Python keyword); read it as ``doc["lambda"]``.
    num_tasks: int
    budget: int
    seed: int
    cap: int | str | None  # the baselines only
    rows: str  # "random": select-samples draws random rows unless told otherwise
    fingerprint: str
    tasks: list[TaskEntry]


def tasks_document(es: EmbeddingSet, params: dict[str, Any], tasks: list[TaskEntry], rows: str | None) -> TasksDoc:
    """The ``TASKS.json`` of ``tasks`` chosen from ``es`` with ``params`` (function, lambda, budget...)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "producer": producer(),
        "embeddings": {"fingerprint": es.fingerprint, "rows": int(es.embeddings.shape[0]), "tasks": len(es.task_names)},
        "dataset": es.meta.get("dataset"),
        "columns": es.meta.get("columns"),
        **params,
        **({"rows": rows} if rows else {}),
        "fingerprint": fingerprint({"embeddings": es.fingerprint, **params}),
        "tasks": tasks,
    }
    return doc  # type: ignore[return-value]


def write_tasks(path: str | Path, doc: TasksDoc) -> None:
    write_json(path, doc)


def load_tasks(path: str | Path, es: EmbeddingSet | None = None) -> TasksDoc:
    """Read a ``TASKS.json`` and check it belongs to ``es`` and names tasks that exist."""
    doc = read_json(path, "tasks file")
    if doc.get("format") != FORMAT or not isinstance(doc.get("tasks"), list):
        raise DataError(f"{path} is not a tasks file written by smart-cli select-tasks")
    _check_tasks_doc(path, doc)
    if es is not None:
        if (doc.get("embeddings") or {}).get("fingerprint") != es.fingerprint:
            raise DataError(
                f"{path} was made from other embeddings than {es.path} (fingerprints differ): "
                "run select-tasks again on this embeddings folder"
            )
        known = dict(zip(es.task_names, es.task_sizes().tolist()))
        unknown = [t["task"] for t in doc["tasks"] if t["task"] not in known]
        if unknown:
            raise DataError(f"{path} names tasks not in {es.path}: {', '.join(map(repr, unknown[:5]))}")
        for t in doc["tasks"]:
            if t["size"] != known[t["task"]]:
                raise DataError(
                    f"{path} says task {t['task']!r} has {t['size']:,} rows but {es.path} has "
                    f"{known[t['task']]:,}: they do not belong together"
                )
    return doc  # type: ignore[return-value]


def tasks_current(path: str | Path, es: EmbeddingSet, expected: str) -> TasksDoc | None:
    """The ``TASKS.json`` at ``path`` if it is intact and what a new run would write: made from
    ``es`` by this version with the parameters of fingerprint ``expected``, bytes as written; else None."""
    try:
        doc = load_tasks(path, es)
        text = Path(path).read_text(encoding="utf-8")
    except (DataError, OSError, UnicodeDecodeError):
        return None
    if doc.get("fingerprint") != expected or doc.get("producer") != producer() or text != canonical_json(doc):
        return None
    ref = {"fingerprint": es.fingerprint, "rows": int(es.embeddings.shape[0]), "tasks": len(es.task_names)}
    return doc if doc.get("embeddings") == ref else None


def _check_tasks_doc(path, doc: dict) -> None:
    """Refuse a tasks file whose entries are malformed or whose budgets do not add up (an edited file)."""

    def count(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(doc.get("embeddings"), dict) or not isinstance(doc.get("fingerprint"), str):
        raise DataError(f"{path} lacks its provenance ('embeddings', 'fingerprint'): not written by smart-cli")
    if not doc["tasks"]:
        raise DataError(f"{path} lists no tasks")
    for t in doc["tasks"]:
        if not isinstance(t, dict) or not {"task", "budget", "size"} <= set(t):
            raise DataError(f"{path}: every task needs 'task', 'budget' and 'size'")
        if not isinstance(t["task"], str) or not count(t["budget"]) or not count(t["size"]):
            raise DataError(f"{path}: task {t['task']!r} needs a name and whole numbers >= 0 as budget and size")
        if t["budget"] > t["size"]:
            raise DataError(f"{path}: task {t['task']!r} has budget {t['budget']:,} but only {t['size']:,} rows")
    names = [t["task"] for t in doc["tasks"]]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path} lists tasks more than once: {', '.join(map(repr, twice[:5]))}")
    total = sum(t["budget"] for t in doc["tasks"])
    if not count(doc.get("budget")) or total != doc["budget"]:
        raise DataError(f"{path}: the tasks' budgets add up to {total:,}, not the file's budget {doc.get('budget')!r}")
