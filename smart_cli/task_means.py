"""Each task's mean embedding: in one streaming pass over ``EMB_DIR``'s memory map, or as ``embed`` stored them."""

from __future__ import annotations

import numpy as np

from smart_cli import artifacts
from smart_cli.artifacts import META, TASK_MEANS, EmbeddingSet
from smart_cli.errors import DataError
from smart_cli.reporter import Reporter, or_silent


def sum_by_group(block: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Float64 sums of ``block``'s rows per code (0 to ``n_groups - 1``), each in row order."""
    from scipy import sparse

    n = len(codes)
    onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))
    return onehot @ np.asarray(block, dtype=np.float64)


def stage1_means(es: EmbeddingSet, reporter: Reporter | None = None) -> np.ndarray:
    """The task means stage 1 selects on: those ``embed`` stored (``task_means.npy``: the
    transformer's, estimated for a static folder, see ``embed/teacher.py``), else the rows' own."""
    record = es.meta.get("task_means")
    if not record:
        return task_means(es, reporter=reporter)
    path = es.path / TASK_MEANS
    where = f"{path} (recorded in {es.path / META})"
    if not path.is_file():
        raise DataError(f"{where} not found: the folder is damaged; run smart-cli embed again")
    if artifacts.sha256_file(path) != record.get("sha256"):
        raise DataError(f"{where} does not match its checksum: run smart-cli embed again")
    means = np.load(path, allow_pickle=False)
    if means.shape != (len(es.task_names), record.get("dim")) or not np.isfinite(means).all():
        raise DataError(f"{where} is not one finite row per task: run smart-cli embed again")
    return means


def task_means(es: EmbeddingSet, chunk_rows: int | None = None, reporter: Reporter | None = None) -> np.ndarray:
    """Plain mean of each task's row embeddings (float64), rows read a block at a time."""
    if chunk_rows is None:  # a float64 block of at most 256 MB, whatever the dimension
        chunk_rows = max(1, (256 << 20) // (8 * max(1, es.embeddings.shape[1])))
    n_tasks = len(es.task_names)
    sums = np.zeros((n_tasks, es.embeddings.shape[1]), dtype=np.float64)
    n = es.embeddings.shape[0]
    zeros: list[np.ndarray] = []
    with or_silent(reporter).progress("task means", n) as advance:
        for lo in range(0, n, chunk_rows):
            hi = min(lo + chunk_rows, n)
            block = np.asarray(es.embeddings[lo:hi], dtype=np.float64)
            # The pass reads every vector anyway: refuse NaN and unrecorded zero rows here.
            zeros.append(es.check_block(block, np.arange(lo, hi)))
            sums += sum_by_group(block, es.task_codes[lo:hi], n_tasks)
            artifacts.release_pages(es.embeddings)  # the pass maps every page: do not keep them resident
            advance(hi - lo)
    es.check_zero_total(zeros)
    return sums / es.task_sizes()[:, None]
