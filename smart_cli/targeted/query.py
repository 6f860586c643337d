"""The query set: an ``EMB_DIR`` that ``embed`` wrote from a handful of target examples.

It must come from the same embedding space as the collection: the same model (and encoder),
backend, text mode and dimension; anything else is refused with one line saying what differs.
Its identity (meta fingerprint, vector checksum, rows) enters the fingerprints of the tasks and
samples files chosen with it, and the mixture's manifest.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from smart_cli import artifacts
from smart_cli.artifacts import EmbeddingSet
from smart_cli.errors import DataError, param

#: What must agree between the collection's and the query's ``meta.json``, with the embed
#: option that sets it (``None``: follows from the model).
SAME = (("model", "model"), ("encoder", None), ("backend", "backend"), ("text", "text"), ("dim", None))


@functools.lru_cache(maxsize=4)
def _open(path: str, stamp: tuple) -> tuple[EmbeddingSet, np.ndarray]:
    es = artifacts.open_embeddings(path)
    vectors = np.asarray(es.embeddings, dtype=np.float32)
    return es, vectors


def open_query(path: str | Path) -> tuple[EmbeddingSet, np.ndarray]:
    """The opened query ``EMB_DIR`` and its vectors (float32), kept per process (workers reuse it)."""
    path = Path(path)
    try:
        meta = path / artifacts.META
        stamp = (meta.stat().st_mtime_ns, meta.stat().st_size) if meta.is_file() else ()
        qes, vectors = _open(str(path.resolve()), stamp)
    except DataError as exc:
        raise DataError(f"{param('query')}: {exc}") from None
    if vectors.shape[0] == 0:
        raise DataError(f"{param('query')} {path} holds no rows: embed at least one target example")
    return qes, vectors


def check_query(qes: EmbeddingSet, es: EmbeddingSet) -> None:
    """Refuse a query embedded in another space than ``es`` (model, encoder, backend, text, dimension)."""
    for key, option in SAME:
        mine, theirs = qes.meta.get(key), es.meta.get(key)
        if key == "encoder" and (mine is None or theirs is None):
            continue
        if mine != theirs:
            how = f"embed it again with {param(option)} {theirs}" if option else "embed it again with the same model"
            raise DataError(
                f"{param('query')} {qes.path} was embedded with {key} {mine!r} but {es.path} with {theirs!r}: "
                f"the similarities would mean nothing; {how}"
            )


def query_ref(qes: EmbeddingSet) -> dict:
    """What identifies the query in fingerprints and the manifest (not its path: a moved folder is the same query)."""
    return {
        "fingerprint": qes.fingerprint,
        "embeddings_sha256": qes.meta.get("embeddings_sha256"),
        "rows": int(qes.embeddings.shape[0]),
    }


def load_query(path: str | Path, es: EmbeddingSet | None = None) -> tuple[dict, np.ndarray]:
    """The query's reference and vectors, checked against the collection ``es`` when given."""
    qes, vectors = open_query(path)
    if es is not None:
        check_query(qes, es)
    return query_ref(qes), vectors
