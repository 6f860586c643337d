"""``smart-cli verify X.jsonl``: prove a mixture is what its manifest says.

1. The file's sha256 equals the manifest's.
2. Where the source dataset can be opened: line i is, field for field (per the manifest's line
   format), the source row the manifest names for line i, with the right task where the line
   carries one.

A mismatch is a ``DataError`` with one line saying what differs and where.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from smart_cli import artifacts, formats, manifest, sources
from smart_cli.errors import DataError
from smart_cli.reporter import Reporter, or_silent

BATCH = 10_000


@dataclass
class VerifyConfig:
    dataset: str | None = None  # the source, if it moved since export
    checksum_only: bool = False


def verify(mixture: str | Path, cfg: VerifyConfig | None = None, *, reporter: Reporter | None = None) -> dict:
    """Check ``mixture`` against its manifest; return a summary, or raise ``DataError``."""
    cfg = cfg or VerifyConfig()
    mixture = Path(mixture)
    if not mixture.is_file():
        raise DataError(f"mixture not found: {mixture}")
    man = manifest.read(mixture)
    info = man["mixture"]
    sha = artifacts.sha256_file(mixture)
    problem = None if sha == man["sha256"] else "its sha256 differs from the manifest's"
    source = None if cfg.checksum_only else _open_source(man, cfg.dataset, or_silent(reporter))
    lines_checked = 0
    if source is not None:
        try:
            lines_checked = _check_lines(mixture, man, source)
        except DataError as exc:
            problem = f"{problem}; {exc}" if problem else str(exc)
    elif problem is None:
        lines_checked = _count_lines(mixture, info)
    if problem:
        raise DataError(f"{mixture} does not match {manifest.manifest_path(mixture).name}: {problem}")
    return {
        "path": str(mixture),
        "ok": True,
        "lines": lines_checked or int(info.get("lines", 0)),
        "sha256": sha,
        "format": info.get("format"),
        "rows_checked": source is not None,
        "source": (man.get("dataset") or {}).get("read_from") if source is not None else None,
    }


def _open_source(man: dict, override: str | None, reporter: Reporter):
    """The source dataset(s), or ``None`` (with a note) where they cannot be opened here."""
    identity = man.get("dataset") or {}
    if not (override or identity.get("sources") or identity.get("read_from") or identity.get("spec")):
        reporter.log("the manifest names no source dataset: checksum only", "yellow")
        return None
    try:
        return sources.reopen(identity, override, "the mixture")
    except DataError as exc:
        if "do not belong together" in str(exc):
            raise
        reporter.log(f"source not reachable ({exc}): checksum only", "yellow")
        return None


def _check_lines(mixture: Path, man: dict, ds) -> int:
    info = man["mixture"]
    fmt = formats.LineFormat(info.get("format") or "prompt-response", info.get("system"), info.get("provenance_fields"))
    rows = man.get("rows")
    if not isinstance(rows, list):
        raise DataError("the manifest lists no source rows")
    if rows and (min(rows) < 0 or max(rows) >= len(ds)):
        raise DataError(f"the manifest names row {max(rows)}, but the source has {len(ds):,} rows")
    n = 0
    with formats.open_text(mixture, "r", info.get("compression") == "gzip") as fh:
        batch: list[str] = []
        for line in fh:
            batch.append(line)
            if len(batch) == BATCH:
                _check_batch(batch, n, rows, ds, fmt, man)
                n += len(batch)
                batch = []
        if batch:
            _check_batch(batch, n, rows, ds, fmt, man)
            n += len(batch)
    if n != len(rows):
        raise DataError(f"it has {n:,} lines but the manifest lists {len(rows):,}")
    return n


def _check_batch(lines: list[str], start: int, rows: list, ds, fmt, man: dict) -> None:
    """Every line equals the line its source row makes, field by field."""
    cols = man.get("columns") or {}
    keep = tuple((man.get("mixture") or {}).get("keep_columns") or ())
    read, roles = formats.source_fields(man, keep)
    if start + len(lines) > len(rows):
        raise DataError(f"it has more lines than the {len(rows):,} the manifest lists")
    wanted = rows[start : start + len(lines)]
    tasks = sources.row_tasks(ds, cols, man.get("dataset") or {}, wanted)
    source = ds.select(wanted).select_columns(read)
    for k, (line, values) in enumerate(zip(lines, source)):
        where = f"line {start + k + 1} (source row {wanted[k]})"
        try:
            got = json.loads(line)
            expected = formats.source_record(fmt, values, cols, tasks[k] or "", wanted[k], keep, roles)
        except (json.JSONDecodeError, ValueError) as exc:
            raise DataError(f"{where} is not a valid {fmt.name} line: {exc}") from None
        if not isinstance(got, dict) or got.get("row", wanted[k]) != wanted[k]:
            raise DataError(f"{where} claims another row")
        for key in [*expected, *got]:
            if got.get(key) != expected.get(key):
                raise DataError(f"{where}: the {key} differs from the source")


def _count_lines(mixture: Path, info: dict) -> int:
    with formats.open_text(mixture, "r", info.get("compression") == "gzip") as fh:
        return sum(1 for _ in fh)
