"""How large a group the exact dense path takes by default, and when it builds its kernel.

Two limits: ``default_max_dense_rows`` (above it, the kNN path) and ``kernel_rows`` (above it,
the dense path runs without an n x n kernel, for the functions that can). The kernel's follows
the memory budget (resolved once per run), and a cap that also bounds the time; it is
rounded so that small changes in free memory do not move a group between paths. By default the
two are the same: only a larger ``--max-dense-rows`` runs groups without a kernel.
"""

from __future__ import annotations

import contextlib
import math
import os

from smart_cli import defaults

#: Peak bytes per kernel entry of the dense path, by greedy backend. submodlib, measured (peak RSS /
#: n^2, n = 3,000 to 20,000): facility location takes the float32 kernel as an array (~10 B);
#: graph cut and log determinant copy it through Python lists (``tolist``: 62-77 B). Our engine
#: reads the float32 kernel in place (4 B; ~150 MB of Python and numba besides); log determinant
#: adds its b x n float64 state (up to 8 B more per entry).
DENSE_BYTES_PER_ENTRY = {
    "smart": {"fl": 4, "gc": 4, "logdet": 12},
    "submodlib": {"fl": 10, "gc": 72, "logdet": 80},
}
#: Most memory one dense kernel may take by default, whatever the machine has; it also bounds the
#: time (dense lazy greedy is O(n^2) per group). submodlib: near the measured 3.6 GB of a
#: 20,000-row FL group. Our engine: 51,000-row FL and GC groups (a 10 GiB kernel; 29,000 rows for
#: log determinant), so that groups of 50,000 rows are exact by default where the kernel also fits
#: half the memory budget (``kernel_rows``: on a 24 GB machine with ~20 GB free, any number of
#: workers). Measured on 2 shared cores, b = n / 10: see the README's cost table ("Dense
#: greedy"); 50,000 rows take about a minute, kernel and greedy.
DENSE_MEMORY_CAP = {"smart": 10 << 30, "submodlib": 2 << 30}


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(size: int | str) -> int:
    """Bytes from ``8G``, ``512M``, ``1.5G``, ``2T`` or a plain number of bytes (binary units;
    ``GB``/``GiB`` read as ``G``). ``ValueError`` for anything else, or for less than 1 MiB."""
    if isinstance(size, bool):
        raise ValueError(f"not a size: {size!r}")
    text = str(size).strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS and text[-1:] else (text, "")
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"not a size: {size!r} (say 8G, 512M or a number of bytes)") from None
    if not math.isfinite(value) or value < (1 << 20):
        raise ValueError(f"a memory budget of {size!r} is too small: give at least 1M")
    return int(value)


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; free pages where there is no /proc)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 8 << 30  # unknown: assume a modest machine


#: Functions our engine also runs without a kernel (``dense_free``): a group past the kernel's
#: limit that ``--max-dense-rows`` still sends to the dense path is selected exactly, in O(n d)
#: memory plus the kernel columns it keeps. Much slower than with the kernel (see the README),
#: so the default limit stays the kernel's.
KERNEL_FREE = ("fl", "gc")


def kernel_rows(function: str, available: int | None = None, backend: str = defaults.GREEDY_BACKENDS[0]) -> int:
    """Largest group whose n x n kernel is built: it takes at most half the memory budget;
    rounded down to a multiple of 1,000 so that small changes in free memory do not change how a
    group is selected. Not divided among the workers: they start a group only where its
    estimate (``group_bytes``) fits beside the groups already running, so a large kernel runs
    with fewer groups beside it instead of being refused."""
    per_entry = DENSE_BYTES_PER_ENTRY[backend]
    if function not in per_entry:
        return 0  # random: no kernel at all
    free = available if available is not None else available_memory()
    rows = int(math.sqrt(max(free / 2, 0) / per_entry[function]))
    return rows // 1000 * 1000


def default_max_dense_rows(
    function: str, available: int | None = None, backend: str = defaults.GREEDY_BACKENDS[0]
) -> int:
    """Largest group on the exact dense path by default: its kernel fits (``kernel_rows``) and
    takes at most ``DENSE_MEMORY_CAP``, which bounds the time (dense lazy greedy is O(n^2))."""
    per_entry = DENSE_BYTES_PER_ENTRY[backend]
    if function not in per_entry:
        return 0
    capped = int(math.sqrt(DENSE_MEMORY_CAP[backend] / per_entry[function])) // 1000 * 1000
    return min(kernel_rows(function, available, backend), capped)


def group_bytes(n: int, dim: int, path: str, job) -> int:
    """Estimated peak memory of selecting one group of ``n`` rows (``--engine ray`` asks the scheduler for it).

    ``job``: what the groups share (its ``objective.name`` and ``cfg.greedy_backend``/``cfg.knn``).
    Both paths hold the group's float32 vectors; the dense one its n x n kernel (a function without
    an entry, such as a query's, counts the largest), the sparse one a faiss index (another copy of
    the vectors) and the kNN graph (ids and similarities, both ways).
    """
    return PROCESS_BYTES + _work_bytes(n, dim, path, job)


#: A selecting process's own memory: Python, numpy, numba's compiled loops (measured ~300 MB).
PROCESS_BYTES = 400 << 20


def _work_bytes(n: int, dim: int, path: str, job) -> int:
    vectors = n * dim * 4
    free = job.cfg.greedy_backend == defaults.GREEDY_BACKENDS[0] and job.objective.name in KERNEL_FREE
    if path == "dense" and free and n > default_max_dense_rows(job.objective.name, 1 << 62):
        return 4 * vectors + (256 << 20)  # no kernel: the rows as float64 and the pass's blocks
    if path == "dense":
        per_entry = DENSE_BYTES_PER_ENTRY[job.cfg.greedy_backend]
        return vectors + per_entry.get(job.objective.name, max(per_entry.values())) * n * n
    if path == "sparse":
        return 2 * vectors + 4 * n * job.cfg.knn * 8
    return vectors
