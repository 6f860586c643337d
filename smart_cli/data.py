"""Loading and validating the source dataset: a hub id, a ``save_to_disk`` folder, or local files."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from smart_cli.errors import DataError, UsageError, closest, first_line, param

_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class Columns:
    """Which dataset column holds what. ``template`` may be ``None``: one group per task.

    ``messages``: a column of conversations (chat rows); prompt and response are then its turns.
    ``task`` (and ``template``) may name a field inside a struct column: ``label.cate_ability_en``.
    """

    prompt: str = "inputs"
    response: str = "targets"
    task: str = "task_name"
    template: str | None = "template_type"
    messages: str | None = None

    def as_dict(self) -> dict:
        names = {"prompt": self.prompt, "response": self.response, "task": self.task, "template": self.template}
        return {**names, "messages": self.messages} if self.messages else names  # FLAN folders keep their fingerprint


def _data_files(spec: str) -> list[str] | None:
    """Local data files named by ``spec`` (a file, a glob, or a folder of data files), else None."""
    path = Path(spec)
    if path.is_file():
        return [str(path.resolve())]
    if any(ch in spec for ch in "*?["):
        return sorted(str(Path(p).resolve()) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    return None


def _builder(files: list[str]) -> str:
    kinds = set()
    for f in files:
        suffix = Path(f[:-3] if f.endswith(".gz") else f).suffix.lower()
        if suffix not in _BUILDERS:
            raise UsageError(f"unsupported file type {suffix or f!r}: use parquet, jsonl, json or csv")
        kinds.add(_BUILDERS[suffix])
    if len(kinds) > 1:
        raise UsageError(f"mixed file types in one dataset: {sorted(kinds)}")
    return kinds.pop()


def load(
    spec: str,
    split: str = "train",
    *,
    trust_remote_code: bool = False,
    name: str | None = None,
    revision: str | None = None,
):
    """Load one split of ``spec`` as a ``datasets.Dataset`` (memory-mapped Arrow, not in RAM).

    ``name`` (a config) and ``revision`` (a branch, tag or commit) apply to hub datasets.
    """
    import datasets

    # Our own one-line error says what went wrong; the library's log lines would repeat it. Its
    # progress bars ("Generating train split") are not the tool's: the user sees only ours.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        ds = _load_local(spec, split)
    except (UsageError, DataError):
        raise
    except Exception as exc:
        raise _load_error(spec, split, exc) from exc
    if ds is not None:
        if name or revision:
            raise UsageError(f"{param('name')} and {param('revision')} apply to hub datasets, not {spec}")
        return ds
    kwargs: dict = {"trust_remote_code": True} if trust_remote_code else {}
    kwargs |= {k: v for k, v in (("name", name), ("revision", revision)) if v}
    try:
        return datasets.load_dataset(spec, split=split, **kwargs)
    except ValueError as exc:
        raise _load_error(spec, split, exc) from exc
    except Exception as exc:  # hub, network and builder errors of many types
        raise DataError(
            f"dataset not found: {spec!r} is not a local file or folder, and the hub did not give it "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def _from_disk(path: Path, spec: str, split: str):
    """A folder written by ``save_to_disk`` (one split, or a ``DatasetDict``)."""
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise UsageError(f"unknown split {split!r} in {spec}; it has: {', '.join(ds)}")
        return ds[split]
    if split != (have := str(ds.split) if ds.split else "train"):
        raise UsageError(f"unknown split {split!r}: {spec} holds the single split {have!r}")
    return ds


def _load_local(spec: str, split: str):
    """``spec`` as a local folder or files, or ``None`` when it names nothing local (a hub id)."""
    import datasets

    path = Path(spec)
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        return _from_disk(path, spec, split)
    files = _data_files(spec)
    if files is not None:
        if not files:
            raise DataError(f"dataset not found: no files match {spec}")
        if split != "train":
            raise UsageError(f"unknown split {split!r}: local files {spec} form the single split 'train'")
        builder = _builder(files)
        if not any(_has_rows(f, builder) for f in files):
            raise DataError(f"the dataset is empty: {spec} has no rows")
        return datasets.load_dataset(builder, data_files={"train": files}, split="train")
    if path.is_dir():
        return datasets.load_dataset(str(path), split=split)
    if _looks_local(spec):
        raise DataError(f"dataset not found: {spec}")
    return None


def _looks_local(spec: str) -> bool:
    """A path that does not exist (a hub id is ``name`` or ``org/name``, without a file suffix)."""
    name = spec[:-3] if spec.endswith(".gz") else spec
    return (
        spec.startswith((".", "/", "~"))
        or spec.count("/") > 1
        or (os.sep != "/" and os.sep in spec)
        or Path(name).suffix.lower() in _BUILDERS
    )


def _load_error(spec: str, split: str, exc: Exception) -> Exception:
    """The user-facing error for a dataset that ``datasets`` could not load."""
    if isinstance(exc, ValueError) and "split" in str(exc).lower():
        return UsageError(f"unknown split {split!r} for {spec}: {_first_line(exc)}")
    if isinstance(exc, FileNotFoundError) or type(exc).__name__ in ("EmptyDatasetError", "DataFilesNotFoundError"):
        return DataError(f"dataset not found: {spec} ({_first_line(exc)})")
    if isinstance(exc, ValueError):
        return DataError(f"cannot load {spec}: {_first_line(exc)}")
    # datasets raises many types (arrow, builder errors); the cause is often one level down.
    cause = exc.__cause__ or exc.__context__
    detail = f"{_first_line(exc)}" + (f" ({type(cause).__name__}: {_first_line(cause)})" if cause else "")
    return DataError(f"cannot load {spec}: {type(exc).__name__}: {detail}")


def _has_rows(file: str, builder: str) -> bool:
    """False only when ``file`` surely holds no rows (an empty parquet, a blank json/jsonl/csv)."""
    import gzip

    try:
        if builder == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(file).metadata.num_rows > 0
        opener = gzip.open if file.endswith(".gz") else open
        with opener(file, "rb") as fh:
            while chunk := fh.read(1 << 16):
                if chunk.strip():
                    return True
        return False
    except Exception:  # unreadable: let the loader say what is wrong
        return True


def _first_line(exc: BaseException) -> str:
    return first_line(exc)


def check_columns(ds, columns: Columns, *, need_response: bool = True) -> None:
    """Refuse a dataset that lacks a named column, naming what exists and the closest match."""
    have = list(ds.column_names)
    if len(ds) == 0:
        raise DataError("the dataset is empty: it has no rows")
    chat = columns.messages is not None
    wanted = [(param("messages_column"), columns.messages) if chat else (param("prompt_column"), columns.prompt)]
    if columns.task:  # none where tasks come from elsewhere (--task-from dataset)
        wanted.append((param("task_column"), columns.task))
    if need_response and not chat:
        wanted.append((param("response_column"), columns.response))
    if columns.template is not None:
        wanted.append((param("template_column"), columns.template))
    for flag, name in wanted:
        if name not in have and _nested(ds, str(name)) is None:
            hint = closest(str(name), have)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise DataError(f"column {name!r} ({flag}) not in the dataset; it has: {', '.join(have)}{suggestion}")
    missing_task = column(ds, columns.task).null_count if columns.task else 0
    if missing_task:
        raise DataError(f"{missing_task:,} rows have no task (column {columns.task!r} is null)")


def label_strings(ds, name: str | None, rows=None):
    """Column ``name`` (at ``rows``, default all) as arrow strings, the way ``embed`` records tasks.

    A ``ClassLabel`` column gives its names, other values their string form; ``None`` gives nulls.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if name is None:
        return pa.nulls(len(ds) if rows is None else len(rows), pa.string())
    values = column(ds, name)
    if rows is not None:
        values = values.take(pa.array(rows, pa.int64()))
    names = getattr(ds.features.get(name), "names", None)
    if names is not None:
        return pc.take(pa.array(names, pa.string()), values)
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"column {name!r} holds {values.type}, not labels (strings or numbers)") from exc


def _nested(ds, name: str):
    """Field ``b.c`` of struct column ``a`` for the name ``a.b.c``, or None where there is none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    head, _, rest = name.partition(".")
    if not rest or head not in ds.column_names:
        return None
    values = ds.data.column(head).combine_chunks()
    for part in rest.split("."):
        if not pa.types.is_struct(values.type) or values.type.get_field_index(part) < 0:
            return None
        values = pc.struct_field(values, part)
    return pa.chunked_array([values])


def column(ds, name: str):
    """The arrow column ``name``, or the struct field a dotted ``name`` points into."""
    if name in ds.column_names:
        return ds.data.column(name)
    nested = _nested(ds, name)
    if nested is None:
        raise DataError(f"column {name!r} not in the dataset")
    return nested


def identity(spec: str, split: str, ds, *, name: str | None = None, revision: str | None = None) -> dict:
    """What identifies the source: as given, resolved path where local, split, fingerprint, size;
    for a hub dataset its config ``name`` (where given) and ``revision``."""
    path = Path(spec)
    local = path.exists() or bool(_data_files(spec))
    return {
        "spec": spec,
        "path": str(path.resolve()) if path.exists() else None,
        "local": local,
        "split": split,
        "revision": None if local else (revision or "main"),
        **({"name": name} if name else {}),
        "fingerprint": getattr(ds, "_fingerprint", None),
        "num_rows": len(ds),
    }


def text_of(value) -> str:
    """Text to embed for a cell: None is empty, other non-strings are their ``str``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def conversation_rows(ds, column: str, roles: dict, *, skip: bool) -> tuple:
    """``(kept, skipped, first)``: where some rows of ``column`` are not conversations, the rows to
    keep (``skip``) or a ``DataError`` naming the first; ``kept`` is None when every row is one."""
    import numpy as np

    from smart_cli import chat

    values = ds.data.column(column)
    bad: list[tuple[int, str]] = []
    for lo in range(0, len(ds), 8192):
        bad += chat.problems(values.slice(lo, 8192).to_pylist(), roles, start=lo)
        if bad and not skip:
            row, why = bad[0]
            raise DataError(
                f"row {row} of column {column!r} is not a conversation: {why} "
                f"({param('bad_rows')} skip leaves such rows out)"
            )
    if not bad:
        return None, 0, None
    kept = np.setdiff1d(np.arange(len(ds), dtype=np.int64), np.array([r for r, _ in bad], dtype=np.int64))
    return kept, len(bad), bad[0][0]
