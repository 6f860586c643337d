"""A static encoder whose rows are carried into its teacher's space by an affine least-squares map.

``embed --backend static`` fits the map on the rows it embeds with the transformer anyway (a sample
of each task, ``embed/teacher.py``): ``teacher ~ static @ W + b``. Every row is then stored as
``normalise(static @ W + b)``: the transformer's dimension, and closer to the transformer's
similarities inside a task than the static vectors (measured in the README). The map is one
``(d_static + 1) x d_teacher`` float64 matrix, ``[W; b]``, kept in ``EMB_DIR/static_map.npy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smart_cli.backends.base import _l2_normalise

#: Ridge of the fit, relative to the mean squared (centred) static coordinate: keeps W defined
#: when the sample has fewer rows than dimensions, and barely moves it otherwise.
RIDGE = 1e-3


def ridge_solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``W`` minimising ``|x @ W - y|^2 + ridge |W|^2`` for centred float64 ``x`` and ``y``; the ridge is
    ``RIDGE`` times the mean squared coordinate of ``x``."""
    gram = x.T @ x
    ridge = RIDGE * max(float(np.trace(gram)) / max(1, len(gram)), 1e-12)
    return np.linalg.solve(gram + ridge * np.eye(len(gram)), x.T @ y)


def fit_affine(static: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """``[W; b]`` minimising ``|static @ W + b - teacher|^2 + ridge |W|^2`` over the rows given."""
    s, t = np.asarray(static, np.float64), np.asarray(teacher, np.float64)
    s_mean, t_mean = s.mean(axis=0), t.mean(axis=0)
    w = ridge_solve(s - s_mean, t - t_mean)
    return np.vstack([w, (t_mean - s_mean @ w)[None, :]])


class OverStatic:
    """An encoder over a static one (``inner``): the window, truncation and closing are ``inner``'s."""

    inner: Any

    def count_truncated(self, texts: list[str]) -> int:
        return self.inner.count_truncated(texts)

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()


class MappedEncoder(OverStatic):
    """``inner``'s vectors through ``[W; b]``, L2-normalised; a text ``inner`` maps to zero stays zero."""

    def __init__(self, inner, affine: np.ndarray):
        self.inner = inner
        self.affine = np.asarray(affine, dtype=np.float64)
        if self.affine.shape[0] != int(inner.dim) + 1:
            raise ValueError(f"a map of {self.affine.shape[0] - 1} rows does not fit {inner.dim}-d vectors")
        self.dim = int(self.affine.shape[1])
        self.name = f"{inner.name}+map"
        self.max_seq_length = inner.max_seq_length

    @classmethod
    def load(cls, inner, path: str | Path) -> MappedEncoder:
        return cls(inner, np.load(path, allow_pickle=False))

    def encode(self, texts: list[str]) -> np.ndarray:
        base = np.asarray(self.inner.encode(texts), dtype=np.float64)
        out = base @ self.affine[:-1] + self.affine[-1]
        out[~base.any(axis=1)] = 0.0
        return _l2_normalise(out.astype(np.float32))
