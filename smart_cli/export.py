"""Stage 3: write the selected source rows as a shuffled JSONL mixture, and its manifest beside it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, data, dataset_pages, defaults, formats, manifest, sources
from smart_cli.errors import DataError, UsageError, param
from smart_cli.executor import Executor
from smart_cli.reporter import Reporter, or_silent
from smart_cli.stage import Summary


@dataclass
class ExportConfig:
    """Defaults of ``smart-cli export``: shuffle with seed 23, source found through provenance,
    ``prompt-response`` lines (see ``formats.py``)."""

    seed: int = defaults.SEED
    dataset: str | None = None
    format: str = defaults.LINE_FORMAT
    system: str | None = None
    provenance_fields: bool | None = None
    #: Source columns copied into every line, whatever the format (``("id", "source")``; a
    #: comma-separated string is split).
    keep_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keep = self.keep_columns
        names = keep.split(",") if isinstance(keep, str) else list(keep or ())
        self.keep_columns = tuple(n.strip() for n in names if str(n).strip())

    def line_format(self) -> formats.LineFormat:
        return formats.LineFormat(self.format, self.system, self.provenance_fields).validate()


def source_dataset(meta: dict, override: str | None, samples: str | Path = "the samples file"):
    """Open the dataset(s) the samples were selected from, and check they are the same size."""
    return sources.reopen(meta.get("dataset") or {}, override, str(samples))


def check_samples(table, meta: dict, ds, samples: str | Path, spec: str) -> None:
    """Refuse, before anything is written, samples whose rows are not rows of ``ds``.

    Checked: the columns, every row index in range and once, and each row's task in ``ds``
    equal to the task the samples file recorded for it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = meta.get("columns") or {}
    data.check_columns(ds, _columns(cols))
    rows = table.column("row").to_numpy()
    outside = rows[(rows < 0) | (rows >= len(ds))]
    if len(outside):
        raise DataError(
            f"{samples} names row {int(outside[0])}, but {spec} has {len(ds):,} rows: they do not belong together"
        )
    if len(np.unique(rows)) != len(rows):
        raise DataError(f"{samples} names some rows twice: it was edited or damaged")
    have = pa.array(sources.row_tasks(ds, cols, meta.get("dataset") or {}, rows), pa.string())
    want = table.column("task").cast(pa.string())
    same = pc.fill_null(pc.equal(have, want), False)
    if not pc.all(same).as_py():
        i = int(np.flatnonzero(~same.to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"row {int(rows[i])} of {spec} is in task {have[i].as_py()!r}, but {samples} records "
            f"{want[i].as_py()!r}: they do not belong together (pass the dataset embed read with {param('dataset')})"
        )


def _columns(cols: dict) -> data.Columns:
    """The columns a samples file records (as embed read them), without the template."""
    names = (cols.get("prompt", "inputs"), cols.get("response", "targets"), cols.get("task", "task_name") or "")
    return data.Columns(*names, None, cols.get("messages"))


def mixture_records(table, meta: dict, ds, seed: int, fmt: formats.LineFormat, keep: tuple[str, ...] = ()):
    """The mixture's lines as records, in their shuffled order, with each one's task and source row.

    Expects samples that passed :func:`check_samples` (columns present, rows in range and once).
    """
    cols = meta.get("columns") or {}
    read, roles = formats.source_fields(meta, keep)
    rows = table.column("row").to_numpy()
    # Canonical order (by source row) first, then one seeded permutation: the mixture depends
    # only on the set of rows and the seed.
    order = np.argsort(rows, kind="stable")
    order = order[np.random.default_rng(seed).permutation(len(order))]
    tasks = table.column("task").to_pylist()
    source = ds.select_columns(read)
    files = dataset_pages.dataset_files(source)
    # Gathered a block at a time (arrow take on the memory-mapped table): no indices mapping over
    # the whole split, no per-row reads.
    for lo in range(0, len(order), 8192):
        block = order[lo : lo + 8192]
        batch = source[rows[block].tolist()]
        dataset_pages.release_dataset_pages(files)  # the block is copied out (dataset_pages.py)
        for k, i in enumerate(block):
            values = {c: batch[c][k] for c in batch}
            try:
                rec = formats.source_record(fmt, values, cols, tasks[i], int(rows[i]), keep, roles)
            except ValueError as exc:
                where = f"row {int(rows[i])} cannot be written as {param('format')} {fmt.name}"
                raise DataError(f"{where}: {exc}") from None
            yield rec, tasks[i], int(rows[i])


@dataclass(frozen=True)
class ExportSummary(Summary):
    command = "export"
    path: str
    lines: int
    sha256: str
    manifest: str
    format: str

    def message(self) -> str:
        return f"wrote {self.lines:,} lines to {self.out} and {self.manifest}"


def run(
    inputs: Path, out: Path, cfg: ExportConfig, *, reporter: Reporter | None = None, executor: Executor | None = None
) -> ExportSummary:
    """Write the mixture of the ``SAMPLES.parquet`` ``inputs`` to ``out`` and its manifest beside it."""
    current = _current(inputs, out, cfg)
    if current is not None:  # the same samples and options as the manifest records: keep both (and their mtimes)
        or_silent(reporter).log(f"{out} is up to date (same samples and options)", "green")
        return ExportSummary(out=Path(out), **current)
    return ExportSummary(out=Path(out), **export(inputs, out, cfg, reporter=reporter))


def export_fingerprint(samples_sha256: str, cfg: ExportConfig) -> str:
    """Hash of what shapes a mixture and its manifest: the samples file's bytes and every export option."""
    options = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    return artifacts.fingerprint({"samples": samples_sha256, "options": options})


def _current(samples: str | Path, out: str | Path, cfg: ExportConfig) -> dict | None:
    """The summary of the mixture at ``out`` if it is what a new export would write: its manifest records
    this samples file (path, sha256, fingerprint), these options and this version, and its sha256 holds."""
    out, mpath = Path(out), manifest.manifest_path(out)
    if not (out.is_file() and mpath.is_file() and Path(samples).is_file()):
        return None
    try:
        doc = manifest.read(out)
        _, meta = artifacts.read_samples(samples)
    except DataError:
        return None
    sha, mixture = artifacts.sha256_file(samples), doc.get("mixture") or {}
    selection = doc.get("select_samples") or {}
    same = (
        doc.get("fingerprint") == export_fingerprint(sha, cfg)
        and doc.get("producer") == artifacts.producer()
        and (selection.get("sha256"), selection.get("fingerprint")) == (sha, meta.get("fingerprint"))
        and (doc.get("paths") or {}).get("samples") == str(Path(samples).resolve())
        and (mixture.get("file"), mixture.get("bytes")) == (out.name, out.stat().st_size)
    )
    if not same or artifacts.sha256_file(out) != doc["sha256"]:
        return None
    return {
        "path": str(out),
        "lines": mixture["lines"],
        "sha256": doc["sha256"],
        "manifest": str(mpath),
        "format": mixture["format"],
    }


def export(
    samples: str | Path, out: str | Path, cfg: ExportConfig | None = None, *, reporter: Reporter | None = None
) -> dict:
    """Write the mixture to ``out`` (JSONL, gzip when the name ends in .gz) and ``manifest_path(out)``
    beside it; return a short summary."""
    cfg = cfg or ExportConfig()
    fmt = cfg.line_format()
    table, meta = artifacts.read_samples(samples)
    ds = source_dataset(meta, cfg.dataset, samples)
    check_samples(table, meta, ds, samples, cfg.dataset or (meta.get("dataset") or {}).get("spec") or "the dataset")
    _check_line_options(ds, cfg, fmt, chat_rows=bool((meta.get("columns") or {}).get("messages")))
    rows: list[int] = []
    tasks: list[str] = []
    with artifacts.atomic_path(out) as tmp, formats.open_text(tmp, "w", formats.is_gzip(out)) as fh:
        with or_silent(reporter).progress("writing mixture", table.num_rows) as advance:
            for rec, task, row in mixture_records(table, meta, ds, cfg.seed, fmt, cfg.keep_columns):
                fh.write(formats.dump(rec))
                rows.append(row)
                tasks.append(task)
                if len(rows) % 4096 == 0:  # a bar update per line costs more than the line at 400k lines
                    advance(4096)
            advance(len(rows) % 4096)
    sha = artifacts.sha256_file(out)
    identity = meta.get("dataset") or {}
    doc = manifest.build(
        meta,
        samples=samples,
        mixture=out,
        line_format=fmt,
        seed=cfg.seed,
        rows=rows,
        tasks=tasks,
        sha256=sha,
        read_from=_where(cfg.dataset) or identity.get("path") or identity.get("spec"),
        keep_columns=cfg.keep_columns,
    )
    # What a re-run compares (``_current``): the samples file's sha256, and the hash of it and the options.
    samples_sha = artifacts.sha256_file(samples)
    doc["select_samples"]["sha256"] = samples_sha
    doc["fingerprint"] = export_fingerprint(samples_sha, cfg)
    mpath = manifest.manifest_path(out)
    try:
        manifest.write(mpath, doc)
    except BaseException:
        Path(out).unlink(missing_ok=True)  # a mixture without its manifest must not look complete
        raise
    return {"path": str(out), "lines": len(rows), "sha256": sha, "manifest": str(mpath), "format": fmt.name}


def _check_line_options(ds, cfg: ExportConfig, fmt: formats.LineFormat, *, chat_rows: bool) -> None:
    """Refuse, before writing, kept columns the source lacks or that would overwrite a line's own fields."""
    if chat_rows and cfg.system is not None:
        raise UsageError(f"{param('system')} applies to prompt/response rows; chat rows keep their own system turns")
    own = {"task", "row", "prompt", "response", "messages", "completion", "instruction", "input", "output"}
    for name in cfg.keep_columns:
        if name not in ds.column_names:
            raise DataError(f"{param('keep_columns')}: the source has no column {name!r}")
        if name in own | {"system", "history"}:
            raise UsageError(f"{param('keep_columns')}: {name!r} is a field of the line itself")


def _where(spec: str | None) -> str | None:
    """A dataset given on the command line, as an absolute path where it is a local path."""
    return str(Path(spec).resolve()) if spec and Path(spec).exists() else spec
