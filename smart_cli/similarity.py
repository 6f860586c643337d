"""Inner products whose bits do not depend on the machine: the CPU type, the BLAS, the threads.

A BLAS product (``x @ x.T``) sums each entry in an order that depends on its kernel (AVX2 or
AVX-512, OpenBLAS's Haswell or SkylakeX code), its blocking and its threads, so the last bits of
a kernel, and with them near-tied greedy picks, change from one machine to the next.

Here each entry is defined as one fixed computation: ``<a_i, b_j>`` of float32 rows summed in
float64, dimension by dimension from the first, then rounded once to float32 (each product of
two float32 numbers is exact in float64, so a fused multiply-add cannot change it either). It is
computed fast and still exactly: a float64 BLAS product gives every entry within a known bound
of the exact sum (``|error| <= d u |a_i| |b_j|`` whatever the order, u = 2^-53), and the fixed
sum lies within the same bound. Where the whole interval of twice the bound around the BLAS
value rounds to one float32, that float32 is the entry; the rare entries next to a float32
rounding boundary (a few per million) are summed again the fixed way. Either way the result
is the fixed computation's, bit for bit, on any x86 CPU, with any BLAS and thread count, and
entry ``(i, j)`` depends on ``a_i`` and ``b_j`` only: a column or a block of rows holds the
same numbers as the whole product.

Cost, measured with ``scripts/bench_similarity.py`` and ``scripts/bench_dense_greedy.py``: see the
README ("Dense greedy": the kernel's cost, and the cost per group size).
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

#: Rows (and columns) of the products' square tiles, one per thread at a time (8 MiB of float64
#: each): square, so that BLAS runs at full speed (a thin strip of rows against all later rows
#: re-reads and re-packs those rows for every strip).
TILE = 1024
#: The bound's multiple of d u |a| |b|: 2 for the two sums (BLAS and fixed), 2 more to spare
#: (norms are themselves rounded; BLAS may sum pairs first).
_MARGIN = 4.0 * 2.0**-53


def as_rows(x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous float32 rows (the arithmetic's input; float16 widens exactly)."""
    return np.ascontiguousarray(x, dtype=np.float32)


@njit(cache=True, nogil=True)
def _fixed_dot(a: np.ndarray, b: np.ndarray) -> np.float32:
    s = 0.0
    for k in range(a.shape[0]):
        s += np.float64(a[k]) * np.float64(b[k])
    return np.float32(s)


@njit(cache=True, nogil=True)
def _settle(
    blk: np.ndarray, a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray, margin: float, out: np.ndarray
) -> None:
    # blk: float64 BLAS values of a @ b.T; out: the fixed computation's float32 values. Each row
    # in two passes, so that the common case (the interval rounds to one float32) is a branch-free
    # loop the compiler vectorises; the few entries next to a boundary are summed again after.
    for i in range(blk.shape[0]):
        row = blk[i]
        dest = out[i]
        mi = margin * na[i]
        near = 0
        for j in range(row.shape[0]):
            m = mi * nb[j]
            lo = np.float32(row[j] - m)
            dest[j] = lo
            near += lo != np.float32(row[j] + m)
        if near:
            for j in range(row.shape[0]):
                m = mi * nb[j]
                if np.float32(row[j] - m) != np.float32(row[j] + m):
                    dest[j] = _fixed_dot(a[i], b[j])


def _norms(rows: np.ndarray) -> np.ndarray:
    # Only a bound enters the margin: any rounding of the norms is covered by its spare factor.
    out = np.empty(rows.shape[0], dtype=np.float64)
    _fixed_norms_here(rows, out)
    return out * (1 + 1e-12)


@njit(cache=True, parallel=True)
def _rowwise(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    for i in prange(a.shape[0]):
        out[i] = _fixed_dot(a[i], b[i])


def rowwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``<a_i, b_i>`` for each row, as float32: the same bits as entry ``(i, i)`` of ``cross``."""
    a, b = as_rows(a), as_rows(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"shapes {a.shape} and {b.shape} differ")
    out = np.empty(a.shape[0], dtype=np.float32)
    _rowwise(a, b, out)
    return out


def _norm_rows(a: np.ndarray, out: np.ndarray) -> None:
    for i in prange(a.shape[0]):
        s = 0.0
        for k in range(a.shape[1]):
            s += np.float64(a[i, k]) * np.float64(a[i, k])
        out[i] = np.sqrt(s)


#: On this thread's cores; on the calling thread alone (``_norms``: ``Right.of`` runs on threads
#: of callers' own, and numba's parallel loops must not be entered from two threads at once).
_fixed_norms = njit(cache=True, parallel=True)(_norm_rows)
_fixed_norms_here = njit(cache=True, nogil=True)(_norm_rows)


def norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row (float64), summed in a fixed order: the same bits anywhere."""
    a = as_rows(x)
    out = np.empty(a.shape[0], dtype=np.float64)
    _fixed_norms(a, out)
    return out


def unit_rows(x: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """``x`` as float32 rows of unit norm (zero rows stay zero); rows already unit norm within
    ``atol`` keep their bits, so the kernel of stored unit embeddings is their plain product."""
    a = as_rows(x)
    n = norms(a)
    if np.all(np.abs(n - 1.0) <= atol):
        return a
    return (a / np.where(n > 0, n, 1.0)[:, None].astype(np.float32)).astype(np.float32)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not multiply as a @ b.T")


@dataclass(frozen=True)
class Right:
    """The right operand of ``cross``, prepared once for many row blocks of the left one."""

    rows: np.ndarray  # float32
    norms: np.ndarray  # bounds of their norms

    @classmethod
    def of(cls, b: np.ndarray) -> Right:
        rows = as_rows(b)
        return cls(rows, _norms(rows))


def check_device(device: str | None) -> None:
    """A device torch can run the products on, said in one line before any work where it cannot."""
    if device is None:
        return
    from smart_cli.errors import UsageError, param

    try:
        import torch

        kind = torch.device(device).type
    except (ImportError, RuntimeError) as exc:
        raise UsageError(f"unknown {param('device')} {device!r}: {str(exc).splitlines()[0]}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{param('device')} {device}: no CUDA GPU is visible here")


def _wide_product(a64: np.ndarray, b64: np.ndarray, device: str | None, out: np.ndarray | None = None) -> np.ndarray:
    """``a64 @ b64.T`` in float64: numpy's BLAS (into ``out`` where given), or torch on ``device``
    (``cuda``, ``cpu``, ...).

    Any float64 product lands within the bound the entries are checked against (no TF32 in
    double precision), so the device changes the time, never a bit of the result.
    """
    if device is None:
        return np.matmul(a64, b64.T, out=out)
    import torch

    left = torch.from_numpy(a64).to(device)
    right = torch.from_numpy(b64).to(device)
    return (left @ right.T).cpu().numpy()


def cross(
    a: np.ndarray,
    b: np.ndarray | Right,
    out: np.ndarray | None = None,
    *,
    one_thread: bool = False,
    device: str | None = None,
) -> np.ndarray:
    """``a @ b.T`` as float32, each entry the fixed computation's bits (see the module docstring).

    ``b`` may be a :class:`Right`, prepared once where many blocks of rows meet the same rows.
    ``one_thread``: run on the calling thread only (BLAS threads are the caller's to limit), for
    many small products run on threads of the caller's own. ``device``: where the float64
    products run (torch; ``None``: numpy's BLAS); the result is the same.
    """
    right = b if isinstance(b, Right) else Right.of(b)
    a = as_rows(a)
    _check(a, right.rows)
    if out is None:
        out = np.empty((a.shape[0], right.rows.shape[0]), dtype=np.float32)
    if out.size == 0:
        return out
    rows, cols = range(0, a.shape[0], TILE), range(0, right.rows.shape[0], TILE)
    corners = [(i0, j0) for i0 in rows for j0 in cols]
    _Tiles(a, _norms(a), right.rows, right.norms, out, device, mirror=False).run(corners, pooled=not one_thread)
    return out


def gram(x: np.ndarray, device: str | None = None) -> np.ndarray:
    """``x @ x.T`` as float32: symmetric, and entry by entry equal to ``cross(x, x)``; ``device``
    as for ``cross``.

    Square tiles of the upper triangle, each settled straight into the result and copied to its
    mirror image: an entry and its mirror are the same fixed sum, since products commute exactly.
    """
    a = as_rows(x)
    _check(a, a)
    n = a.shape[0]
    out = _square(n)
    if n == 0:
        return out
    na = _norms(a)
    starts = range(0, n, TILE)
    corners = [(i0, j0) for i0 in starts for j0 in starts if j0 >= i0]
    _Tiles(a, na, a, na, out, device, mirror=True).run(corners, pooled=True)
    return out


def _square(n: int) -> np.ndarray:
    """An uninitialised n x n float32 array; a large one on small pages mapped up front
    (``MAP_POPULATE``): numpy asks for huge pages on large arrays, and where the system first has
    to compact memory to find them, touching a fresh 1.5 GB kernel took 1-5 s (0.5 s this way),
    longer than computing it."""
    populate = getattr(mmap, "MAP_POPULATE", 0)  # Linux
    if not populate or n == 0 or n * n * 4 < _POPULATE_BYTES:
        return np.empty((n, n), dtype=np.float32)
    pages = mmap.mmap(-1, n * n * 4, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(pages, dtype=np.float32).reshape(n, n)  # unmapped with the array


#: Kernels from this size on get pages of their own (``_square``).
_POPULATE_BYTES = 64 << 20


@dataclass(frozen=True)
class _Tiles:
    """``out = a @ b.T`` settled tile by tile (``TILE`` x ``TILE``, one float64 tile per thread);
    ``mirror``: ``b`` is ``a``, and each tile off the diagonal is copied to its mirror image."""

    a: np.ndarray
    na: np.ndarray
    b: np.ndarray
    nb: np.ndarray
    out: np.ndarray
    device: str | None
    mirror: bool
    scratch: threading.local = field(default_factory=threading.local)

    def run(self, corners: list[tuple[int, int]], pooled: bool) -> None:
        """The tiles at ``corners``: on threads of their own (one per core, each running BLAS on
        one thread), or all on the calling thread."""
        if not pooled:
            for corner in corners:
                self.one(corner)
            return
        with _one_blas_thread():
            if len(corners) == 1:  # a small product: no pool to set up
                self.one(corners[0])
                return
            with ThreadPoolExecutor(max_workers=min(_cores(), len(corners))) as pool:
                for _ in pool.map(self.one, corners):
                    pass

    def one(self, corner: tuple[int, int]) -> None:
        """One tile, its top-left corner at ``corner``."""
        i0, j0 = corner
        i1, j1 = min(self.a.shape[0], i0 + TILE), min(self.b.shape[0], j0 + TILE)
        if not hasattr(self.scratch, "buf"):  # reused: no page faults per tile
            self.scratch.buf = np.empty(min(TILE, self.a.shape[0]) * min(TILE, self.b.shape[0]))
        blk = self.scratch.buf[: (i1 - i0) * (j1 - j0)].reshape(i1 - i0, j1 - j0)
        left = self.a[i0:i1].astype(np.float64)
        right = left if self.mirror and j0 == i0 else self.b[j0:j1].astype(np.float64)
        blk = _wide_product(left, right, self.device, blk)
        margin = _MARGIN * self.a.shape[1]
        tile = self.out[i0:i1, j0:j1]
        _settle(blk, self.a[i0:i1], self.b[j0:j1], self.na[i0:i1], self.nb[j0:j1], margin, tile)
        if self.mirror and j0 != i0:
            _transpose(tile, self.out[j0:j1, i0:i1])


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on the calling thread only, while the tiles run on threads of their own: BLAS's own
    threads meet at a barrier after every product, and on a busy machine (2 cores shared with
    other jobs) a thread descheduled there kept the others spinning: a 300-row kernel measured
    46 ms with them, 12 ms without. threadpoolctl comes with scikit-learn (a sentence-transformers
    dependency); without it BLAS is left as it is, with the same result."""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS, made once per process: making it reads the
    process's library map (~1 ms, paid by every small group's kernel before)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


@njit(cache=True, nogil=True)
def _transpose(src: np.ndarray, dst: np.ndarray) -> None:
    # 64 x 64 blocks, so that both the reads and the writes stay in cache.
    rows, cols = src.shape
    for i0 in range(0, rows, 64):
        for j0 in range(0, cols, 64):
            for j in range(j0, min(cols, j0 + 64)):
                for i in range(i0, min(rows, i0 + 64)):
                    dst[j, i] = src[i, j]


@njit(cache=True, parallel=True)
def _column(bt: np.ndarray, row: np.ndarray, out: np.ndarray) -> None:
    # out[i] = the fixed sum of rows_i * row: vectorised across i, never inside one sum.
    d, n = bt.shape
    step = 2048
    for c in prange((n + step - 1) // step):
        lo = c * step
        hi = min(n, lo + step)
        acc = np.zeros(hi - lo)
        for k in range(d):
            v = np.float64(row[k])
            col = bt[k]
            for i in range(lo, hi):
                acc[i - lo] += v * np.float64(col[i])
        for i in range(lo, hi):
            out[i] = np.float32(acc[i - lo])


@dataclass(frozen=True)
class Columns:
    """Rows laid out a dimension at a time, for one column of their product at a time: the fixed
    sum computed directly (no BLAS, no check), entry by entry the bits of ``cross`` and ``gram``."""

    by_dim: np.ndarray  # float32, d x n

    @classmethod
    def of(cls, rows: np.ndarray) -> Columns:
        return cls(np.ascontiguousarray(as_rows(rows).T))

    def against(self, row: np.ndarray) -> np.ndarray:
        """``<rows_i, row>`` for every row i, as float32."""
        out = np.empty(self.by_dim.shape[1], dtype=np.float32)
        _column(self.by_dim, as_rows(row[None, :])[0], out)
        return out
