"""Dropping a dataset's memory-mapped Arrow pages from this process once their text has been read.

``datasets`` reads its Arrow files through memory maps. Every page ``embed`` reads stays counted in
the reading process's resident set until the map goes, so a pass over 14 GB of prompts showed as
14 GB of peak RSS, though none of it was memory the process held: the pages are the page cache's,
clean, and can be dropped and read again at any time. ``embed`` drops them from the process
(``madvise(MADV_DONTNEED)``) after each shard, as it already does for the pages of
``embeddings.npy``, and ``export`` after each block of rows it gathers.

Only maps of the dataset's own files that are not writable are touched: dropping a clean, read-only
file page loses nothing (the next read faults it in from the file again), whereas on anonymous or
written memory it would. Linux only; elsewhere, or where anything is unexpected, it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import mmap
import os
from collections.abc import Iterable

MAPS = "/proc/self/maps"


def dataset_files(ds) -> frozenset[str]:
    """The real paths of the Arrow files behind a ``datasets.Dataset`` (empty for one in memory)."""
    names = (entry.get("filename") for entry in getattr(ds, "cache_files", None) or ())
    return frozenset(os.path.realpath(name) for name in names if name)


def read_only_maps(files: Iterable[str], maps: str = MAPS) -> list[tuple[int, int]]:
    """``(start, end)`` of this process's maps of ``files`` (real paths) that are not writable."""
    wanted = frozenset(files)
    if not wanted:
        return []
    ranges = []
    with contextlib.suppress(OSError), open(maps, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            # start-end perms offset dev inode path (the path may hold spaces; the kernel writes it
            # with symbolic links resolved, as ``dataset_files`` gives the dataset's)
            fields = line.rstrip("\n").split(maxsplit=5)
            if len(fields) < 6 or "w" in fields[1] or fields[5] not in wanted:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


@functools.cache
def _madvise():
    if not hasattr(mmap, "MADV_DONTNEED") or not os.path.exists(MAPS):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return call


def release_dataset_pages(files: frozenset[str]) -> int:
    """Drop the pages of ``files``' read-only maps from this process; return the bytes advised."""
    call = _madvise() if files else None
    if call is None:
        return 0
    advised = 0
    for start, end in read_only_maps(files):
        if call(start, end - start, mmap.MADV_DONTNEED) == 0:
            advised += end - start
    return advised
