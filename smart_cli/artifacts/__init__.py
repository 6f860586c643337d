"""The on-disk contract between stages, in one place.

Each stage reads its inputs and writes its output only through this package: ``EMB_DIR``
(``embeddings.py``), ``TASKS.json`` (``tasks.py``), ``SAMPLES.parquet`` (``samples.py``); the
mixture's manifest is ``manifest.py``. Every artifact records the fingerprint of what it was
built from, so a stage can refuse inputs that do not belong together; every write is atomic
(``files.py``).
"""

from smart_cli.artifacts.embeddings import (
    EMBEDDINGS,
    META,
    PARTIAL,
    PROGRESS,
    ROWS,
    STATIC_MAP,
    STATIC_TOKENS,
    TASK_MEANS,
    VERIFY_BYTES,
    EmbeddingSet,
    OpenEmbeddings,
    as_embeddings,
    bad_rows,
    open_embeddings,
    plural,
    release_pages,
    task_sources,
    zero_message,
)
from smart_cli.artifacts.files import (
    absolute_paths,
    atomic_path,
    canonical_json,
    check_output,
    fingerprint,
    first_missing,
    free_bytes,
    human_bytes,
    producer,
    read_json,
    relative_paths,
    sha256_file,
    write_json,
)
from smart_cli.artifacts.lock import exclusive, lock_path
from smart_cli.artifacts.samples import METADATA_KEY, read_samples, samples_current, with_metadata, write_samples
from smart_cli.artifacts.tasks import TaskEntry, TasksDoc, load_tasks, tasks_current, tasks_document, write_tasks

__all__ = [
    "OpenEmbeddings",
    "EMBEDDINGS",
    "META",
    "METADATA_KEY",
    "PARTIAL",
    "PROGRESS",
    "ROWS",
    "STATIC_MAP",
    "STATIC_TOKENS",
    "TASK_MEANS",
    "VERIFY_BYTES",
    "EmbeddingSet",
    "TaskEntry",
    "TasksDoc",
    "absolute_paths",
    "as_embeddings",
    "atomic_path",
    "bad_rows",
    "canonical_json",
    "check_output",
    "exclusive",
    "fingerprint",
    "first_missing",
    "free_bytes",
    "human_bytes",
    "load_tasks",
    "lock_path",
    "open_embeddings",
    "plural",
    "producer",
    "read_json",
    "read_samples",
    "relative_paths",
    "release_pages",
    "samples_current",
    "sha256_file",
    "task_sources",
    "tasks_current",
    "tasks_document",
    "with_metadata",
    "write_json",
    "write_samples",
    "write_tasks",
    "zero_message",
]
