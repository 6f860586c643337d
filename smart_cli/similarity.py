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

Cost, measured with ``scripts/bench_similarity.py``: see the README ("Same bytes on any machine").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

#: Rows per float64 block of the product (bounds the float64 buffer: rows x n x 8 bytes).
BLOCK_BYTES = 16 << 20
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


def _settle_rows(
    blk: np.ndarray, a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray, margin: float, out: np.ndarray
) -> None:
    # blk: float64 BLAS values of a @ b.T; out: the fixed computation's float32 values.
    for i in prange(blk.shape[0]):
        for j in range(blk.shape[1]):
            r = blk[i, j]
            m = margin * na[i] * nb[j]
            lo = np.float32(r - m)
            if lo == np.float32(r + m):
                out[i, j] = lo
            else:
                out[i, j] = _fixed_dot(a[i], b[j])


#: The same loops on this thread's cores (numba threads), or on the calling thread alone (for
#: callers that run many small products on threads of their own; nogil).
_settle = njit(cache=True, parallel=True)(_settle_rows)
_settle_here = njit(cache=True, nogil=True)(_settle_rows)


def _norms(x: np.ndarray) -> np.ndarray:
    # Only a bound enters the margin: any rounding of the norms is covered by its spare factor.
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)) * (1 + 1e-12)


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


@njit(cache=True, parallel=True)
def _fixed_norms(a: np.ndarray, out: np.ndarray) -> None:
    for i in prange(a.shape[0]):
        s = 0.0
        for k in range(a.shape[1]):
            s += np.float64(a[i, k]) * np.float64(a[i, k])
        out[i] = np.sqrt(s)


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
    """The right operand of ``cross``, converted once for many row blocks of the left one."""

    rows: np.ndarray  # float32
    wide: np.ndarray  # the same rows as float64
    norms: np.ndarray  # bounds of their norms

    @classmethod
    def of(cls, b: np.ndarray) -> Right:
        rows = as_rows(b)
        wide = rows.astype(np.float64)
        return cls(rows, wide, _norms(wide))


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


def _wide_product(a64: np.ndarray, b64: np.ndarray, device: str | None) -> np.ndarray:
    """``a64 @ b64.T`` in float64: numpy's BLAS, or torch on ``device`` (``cuda``, ``cpu``, ...).

    Any float64 product lands within the bound the entries are checked against (no TF32 in
    double precision), so the device changes the time, never a bit of the result.
    """
    if device is None:
        return a64 @ b64.T
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
    ``one_thread``: check the entries on the calling thread only (BLAS threads are the caller's
    to limit), for many small products run on threads of the caller's own. ``device``: where the
    float64 products run (torch; ``None``: numpy's BLAS); the result is the same.
    """
    right = b if isinstance(b, Right) else Right.of(b)
    a = as_rows(a)
    _check(a, right.rows)
    if out is None:
        out = np.empty((a.shape[0], right.rows.shape[0]), dtype=np.float32)
    if out.size == 0:
        return out
    margin = _MARGIN * a.shape[1]
    step = max(1, BLOCK_BYTES // (8 * right.rows.shape[0]))
    for r0 in range(0, a.shape[0], step):
        a64 = a[r0 : r0 + step].astype(np.float64)
        blk = _wide_product(a64, right.wide, device)
        settle = _settle_here if one_thread else _settle
        settle(blk, a[r0 : r0 + step], right.rows, _norms(a64), right.norms, margin, out[r0 : r0 + step])
    return out


def gram(x: np.ndarray, device: str | None = None) -> np.ndarray:
    """``x @ x.T`` as float32: symmetric, and entry by entry equal to ``cross(x, x)``; ``device``
    as for ``cross``.

    Row blocks from the diagonal on, then mirrored: an entry and its mirror are the same fixed
    sum, since products commute exactly.
    """
    a = as_rows(x)
    _check(a, a)
    n = a.shape[0]
    out = np.empty((n, n), dtype=np.float32)
    if n == 0:
        return out
    a64 = a.astype(np.float64)
    na = _norms(a64)
    margin = _MARGIN * a.shape[1]
    step = max(1, BLOCK_BYTES // (8 * n))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        blk = _wide_product(a64[r0:r1], a64[r0:], device)
        _settle(blk, a[r0:r1], a[r0:], na[r0:r1], na[r0:], margin, out[r0:r1, r0:])
    _mirror(out, step)
    return out


@njit(cache=True, parallel=True)
def _mirror(out: np.ndarray, step: int) -> None:
    # Below each row block's diagonal start, copy from the transposed entry, 64 x 64 tiles at a
    # time so that both the reads and the writes stay in cache.
    n = out.shape[0]
    tile = 64
    for ti in prange((n + tile - 1) // tile):
        i0 = ti * tile
        for j0 in range(0, i0 + tile, tile):
            for i in range(i0, min(n, i0 + tile)):
                stop = min(j0 + tile, i - i % step)
                for j in range(j0, stop):
                    out[i, j] = out[j, i]


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
