"""Each task's mean embedding, in one streaming pass over ``EMB_DIR``'s memory map."""

from __future__ import annotations

import numpy as np

from smart_cli import artifacts
from smart_cli.artifacts import EmbeddingSet
from smart_cli.reporter import Reporter, or_silent


def task_means(es: EmbeddingSet, chunk_rows: int | None = None, reporter: Reporter | None = None) -> np.ndarray:
    """Plain mean of each task's row embeddings (float64), rows read a block at a time."""
    from scipy import sparse

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
            codes = es.task_codes[lo:hi]
            onehot = sparse.csr_matrix((np.ones(hi - lo), (codes, np.arange(hi - lo))), shape=(n_tasks, hi - lo))
            sums += onehot @ block
            artifacts.release_pages(es.embeddings)  # the pass maps every page: do not keep them resident
            advance(hi - lo)
    es.check_zero_total(zeros)
    return sums / es.task_sizes()[:, None]
