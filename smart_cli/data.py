"""Loading and validating the source dataset: a hub id, a ``save_to_disk`` folder, or local files."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from smart_cli.errors import DataError, UsageError, closest

_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class Columns:
    """Which dataset column holds what. ``template`` may be ``None``: one group per task."""

    prompt: str = "inputs"
    response: str = "targets"
    task: str = "task_name"
    template: str | None = "template_type"

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "response": self.response, "task": self.task, "template": self.template}


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


def load(spec: str, split: str = "train", *, trust_remote_code: bool = False):
    """Load one split of ``spec`` as a ``datasets.Dataset`` (memory-mapped Arrow, not in RAM)."""
    import datasets

    datasets.logging.set_verbosity_error()
    path = Path(spec)
    try:
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise UsageError(f"unknown split {split!r} in {spec}; it has: {', '.join(ds)}")
                ds = ds[split]
            return ds
        files = _data_files(spec)
        if files is not None:
            if not files:
                raise DataError(f"no files match {spec}")
            if split != "train":
                raise UsageError(f"unknown split {split!r}: local files {spec} form the single split 'train'")
            return datasets.load_dataset(_builder(files), data_files={"train": files}, split="train")
        if path.is_dir():
            return datasets.load_dataset(str(path), split=split)
        if path.suffix.lower() in _BUILDERS or os.sep in spec and not path.exists():
            raise DataError(f"dataset not found: {spec}")
        kwargs = {"trust_remote_code": True} if trust_remote_code else {}
        return datasets.load_dataset(spec, split=split, **kwargs)
    except (UsageError, DataError):
        raise
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise UsageError(f"unknown split {split!r} for {spec}: {_first_line(exc)}") from exc
        raise DataError(f"cannot load {spec}: {_first_line(exc)}") from exc
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {spec} ({_first_line(exc)})") from exc
    except Exception as exc:  # datasets raises many types (hub, network, arrow, builder errors)
        raise DataError(f"cannot load {spec}: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_columns(ds, columns: Columns, *, need_response: bool = True) -> None:
    """Refuse a dataset that lacks a named column, naming what exists and the closest match."""
    have = list(ds.column_names)
    wanted = [("--prompt-column", columns.prompt), ("--task-column", columns.task)]
    if need_response:
        wanted.append(("--response-column", columns.response))
    if columns.template is not None:
        wanted.append(("--template-column", columns.template))
    for flag, name in wanted:
        if name not in have:
            hint = closest(name, have)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise DataError(f"column {name!r} ({flag}) not in the dataset; it has: {', '.join(have)}{suggestion}")
    if len(ds) == 0:
        raise DataError("the dataset is empty")


def identity(spec: str, split: str, ds) -> dict:
    """What identifies the source: as given, resolved path where local, split, fingerprint, size."""
    path = Path(spec)
    local = path.exists() or bool(_data_files(spec))
    return {
        "spec": spec,
        "path": str(path.resolve()) if path.exists() else None,
        "local": local,
        "split": split,
        "revision": None if local else "main",
        "fingerprint": getattr(ds, "_fingerprint", None),
        "num_rows": len(ds),
    }


def text_of(value) -> str:
    """Text to embed for a cell: None is empty, other non-strings are their ``str``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
