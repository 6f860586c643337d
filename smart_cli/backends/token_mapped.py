"""A static encoder whose tokens carry vectors of their own in the teacher's space (``--row-map tokens``).

``embed/token_fit.py`` fits them on the sampled rows; the table is kept in ``EMB_DIR/static_tokens.npy``:
one float32 row per token id, then the bias ``b`` as the last row. A text is encoded as

    normalise(sum of its tokens' rows / |its static sum| + b)

over the same tokens, in the same window, as the static vector: the static encoder sums both tables in
one pass (``StaticEncoder.extend``), so the rows cost one wider sum and no matrix product. The static
sum's norm, the division, the bias and the normalisation run in float64 in a fixed order (numba), so a
row's bits depend on its text and the table only. A text with no known token stays zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit, prange

from smart_cli.backends.mapped import OverStatic


@njit(cache=True)
def _static_norm(sums: np.ndarray, i: int, static_dim: int) -> float:
    """float64 norm of row ``i``'s first ``static_dim`` columns, summed from the first."""
    s2 = 0.0
    for c in range(static_dim):
        x = np.float64(sums[i, c])
        s2 += x * x
    return np.sqrt(s2)


@njit(cache=True, parallel=True)
def rows_from_sums(sums: np.ndarray, static_dim: int, bias: np.ndarray) -> np.ndarray:
    """``normalise(u / |s| + b)`` per row of ``sums = [s | u]`` (float32), in float64; zero where ``s`` is."""
    n, dim = sums.shape[0], sums.shape[1] - static_dim
    out = np.zeros((n, dim), dtype=np.float32)
    for i in prange(n):
        norm = _static_norm(sums, i, static_dim)
        if norm == 0.0:
            continue
        y = np.empty(dim, dtype=np.float64)
        y2 = 0.0
        for c in range(dim):
            y[c] = np.float64(sums[i, static_dim + c]) / norm + bias[c]
            y2 += y[c] * y[c]
        if y2 == 0.0:
            continue
        length = np.sqrt(y2)
        for c in range(dim):
            out[i, c] = np.float32(y[c] / length)
    return out


@njit(cache=True)
def static_norms(sums: np.ndarray, static_dim: int) -> np.ndarray:
    """float64 norm of each row's first ``static_dim`` columns, summed as ``rows_from_sums`` sums them."""
    out = np.zeros(sums.shape[0], dtype=np.float64)
    for i in range(sums.shape[0]):
        out[i] = _static_norm(sums, i, static_dim)
    return out


class TokenMappedEncoder(OverStatic):
    """``inner`` (a ``StaticEncoder``) with a token table in the teacher's space (see the module)."""

    def __init__(self, inner, table: np.ndarray):
        table = np.asarray(table, dtype=np.float32)
        inner.extend(table[:-1])
        self.inner = inner
        self.bias = table[-1].astype(np.float64)
        self.dim = int(table.shape[1])
        self.name = f"{inner.name}+tokens"
        self.max_seq_length = inner.max_seq_length

    @classmethod
    def load(cls, inner, path: str | Path) -> TokenMappedEncoder:
        return cls(inner, np.load(path, allow_pickle=False))

    def encode(self, texts: list[str]) -> np.ndarray:
        return rows_from_sums(self.inner.sums(texts), int(self.inner.dim), self.bias)
