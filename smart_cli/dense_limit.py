"""How large a group the dense path takes by default: its kernel must fit the memory there is.

The limit follows the memory available now, shared among the workers, and a cap that also bounds
the time; it is rounded so that small changes in free memory do not move a group between paths.
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
#: 20,000-row FL group. Our engine: 32,000-row FL groups (a 4 GB kernel; ~15 s to build it and
#: ~20 s of greedy for 10 % of the rows on 2 cores).
DENSE_MEMORY_CAP = {"smart": 4 << 30, "submodlib": 2 << 30}


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


def default_max_dense_rows(
    function: str, workers: int = 1, available: int | None = None, backend: str = defaults.GREEDY_BACKENDS[0]
) -> int:
    """Largest dense group by default: its kernel takes at most half the available memory shared
    among ``workers``, and at most ``DENSE_MEMORY_CAP``; rounded down to a multiple of 1,000 so
    that small changes in free memory do not change which path a group takes."""
    per_entry = DENSE_BYTES_PER_ENTRY[backend]
    if function not in per_entry:
        return 0  # random: no kernel at all
    free = available if available is not None else available_memory()
    budget = min(free / 2 / max(1, workers), DENSE_MEMORY_CAP[backend])
    rows = int(math.sqrt(max(budget, 0) / per_entry[function]))
    return rows // 1000 * 1000
