"""One writer per output: an exclusive OS file lock beside it while a command writes it.

The lock is ``flock`` on ``.NAME.lock`` next to the output, held for the whole command. The
kernel releases it when the process ends, however it ends, so a crash never leaves a stale lock;
the file itself is removed on the way out. A second writer fails at once with a line naming the
output and the holder's pid, or waits up to ``wait`` seconds. Readers of a complete artifact take
no lock: every artifact is renamed into place whole.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from smart_cli.artifacts.files import first_missing, write_error
from smart_cli.errors import DataError, param

#: How often a waiting writer tries again.
POLL_SECONDS = 0.2


def lock_path(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.lock"


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        if text.isdigit():
            return f"pid {text}"
    return "another process"


def _try_lock(path: Path) -> int | str:
    """The locked file's descriptor, or who holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # The holder writes its pid just after locking: give it a moment before naming no one.
        holder, until = _holder(fd), time.monotonic() + 0.5
        while holder == "another process" and time.monotonic() < until:
            time.sleep(0.01)
            holder = _holder(fd)
        os.close(fd)
        return holder
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # the holder finished and removed the file we opened: take the new one
        os.close(fd)
        return ""
    with contextlib.suppress(OSError):  # the pid is for messages only: a full disk must not stop us here
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return fd


def _acquire(out: Path, path: Path, wait: float) -> int:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        got = _try_lock(path)
        if isinstance(got, int):
            return got
        if got and time.monotonic() >= deadline:
            raise DataError(
                f"{out} is being written by another smart-cli command ({got}, lock {path.name}): "
                f"wait for it to finish, or pass {param('wait_lock')} SECONDS to wait"
            )
        time.sleep(POLL_SECONDS if got else 0)


@contextlib.contextmanager
def exclusive(out: str | Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock of ``out`` for the block; ``wait``: seconds to wait for another holder."""
    try:
        import fcntl  # noqa: F401  (POSIX only)
    except ImportError:  # no flock on this platform: run unlocked, as before
        yield
        return
    out = Path(out)
    path = lock_path(out)
    created = first_missing(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output directory {path.parent}: {exc.strerror}") from exc
    try:
        fd = _acquire(out, path, wait)
    except OSError as exc:
        _remove_empty(path.parent, created)
        raise DataError(write_error(path, exc)) from exc
    except BaseException:
        _remove_empty(path.parent, created)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still locked: a writer waiting on this file sees it gone and retries
        os.close(fd)
        _remove_empty(path.parent, created)


def _remove_empty(folder: Path, created: Path | None) -> None:
    """Remove the folders made for the lock, where the command left nothing in them."""
    if created is None:
        return
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == created:
            return
        folder = folder.parent
