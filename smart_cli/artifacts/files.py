"""Files every artifact shares: atomic writes, canonical JSON, fingerprints, checksums."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smart_cli import __version__
from smart_cli.errors import DataError, first_line


def check_output(path: str | Path, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work; creates nothing."""
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        raise DataError(f"cannot write {path}: it is {'not ' if directory else ''}a directory")
    ancestor = path if directory and path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(f"cannot write {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"cannot write {path}: {ancestor} is not writable")


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path``'s parents that does not exist yet (what mkdir creates)."""
    missing = None
    for parent in path.parents:
        if parent.exists():
            break
        missing = parent
    return missing


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds.

    On failure nothing is left: neither the temporary file nor folders made for it.
    """
    path = Path(path)
    check_output(path)
    created = first_missing(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output directory {path.parent}: {exc.strerror}") from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    ok = False
    try:
        yield tmp
        os.replace(tmp, path)
        ok = True
    except OSError as exc:
        raise DataError(write_error(path, exc, tmp)) from exc
    finally:
        tmp.unlink(missing_ok=True)
        if not ok and created is not None:
            shutil.rmtree(created, ignore_errors=True)


#: errno values that mean the filesystem cannot take more: no space, over quota, read-only.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def free_bytes(path: str | Path) -> int | None:
    """Bytes free for this user on the filesystem of ``path`` (or of its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def write_error(path: Path, exc: OSError, partial: Path | None = None) -> str:
    """One line for a failed write: which file, why, and for a full disk how far it got and what is free."""
    why = exc.strerror or first_line(exc)
    if exc.errno == errno.EROFS:
        return f"cannot write {path}: {why} (the filesystem is mounted read-only)"
    if exc.errno not in _FULL and "No space left" not in str(exc):
        return f"cannot write {path}: {why}"
    written = partial.stat().st_size if partial is not None and partial.exists() else None
    free = free_bytes(path)
    got = f"; {human_bytes(written)} were written before it filled" if written else ""
    left = f", {human_bytes(free)} free" if free is not None else ""
    return f"cannot write {path}: {why or 'No space left on device'}{got}{left}; free some space and run it again"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(canonical_json(obj), encoding="utf-8")


def read_json(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{what} {path} is not a JSON object")
    return obj


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-serialisable description of inputs and parameters."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def producer() -> dict:
    return {"name": "smart-cli", "version": __version__}


def relative_paths(paths: dict | None, base: str | Path) -> dict:
    """Artifact paths relative to the folder ``base``: the same layout gives the same bytes anywhere."""
    return {k: os.path.relpath(v, base) if v else v for k, v in (paths or {}).items()}


def absolute_paths(paths: dict | None, base: str | Path) -> dict:
    """Inverse of :func:`relative_paths`: resolve recorded paths against the folder ``base``."""
    return {k: str((Path(base) / v).resolve()) if v else v for k, v in (paths or {}).items()}
