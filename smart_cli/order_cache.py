"""Greedy orders computed so far, kept inside ``EMB_DIR/cache/`` so that later runs look them up.

Greedy orders are nested: the first b picks of lazy greedy do not depend on the budget. One
stored order of length L therefore serves every budget b <= L (its prefix, gains included); a
budget beyond L is computed afresh to that budget and stored in place of the shorter one. Only
prefix-stable paths are cached: lazy greedy over a dense kernel (tasks, and the dense groups of
select-samples) and over a kNN graph (sparse groups, ``lazy`` optimizer). Never ``random``
(``Generator.choice`` of b rows is not a prefix of b + 1 draws) nor the ``stochastic`` optimizer
(its sample size, n / b ln(1 / eps), depends on b).

Layout: ``cache/tasks/`` (one order per function and parameters) and ``cache/samples/`` (one per
(task, template) group and settings), each entry two files named by the fingerprint of its key:

- ``ID.npy``: a 1-D structured array (``index`` int64, ``gain`` float64), the picks in greedy
  order; ``index`` is a position in the ground set (a task code, or a row inside the group);
- ``ID.json``: ``{"format", "key", "length", "sha256"}`` (sha256 of the ``.npy`` bytes), written
  after the ``.npy``.

Each file is written atomically (temporary name, then rename), so concurrent writers never leave
a torn file; the sha256 in the record catches a ``.npy`` and a record from two different writers.
An entry is used only when its record names the exact key wanted and the array is what the record
promises (sha256, dtype, length, distinct indices inside the ground set); anything else is
ignored, recomputed and overwritten. Nothing here is ever a pickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from smart_cli import artifacts
from smart_cli.artifacts import EmbeddingSet
from smart_cli.errors import DataError
from smart_cli.submodular import Objective

CACHE_DIR = "cache"
FORMAT = "smart-cli/order"
ENTRY = np.dtype([("index", "<i8"), ("gain", "<f8")])
#: Config fields that never shape an order (or are keyed explicitly below).
_SAMPLE_FIELDS = {"function", "lambda_", "seed", "max_dense_rows", "knn", "optimizer", "workers", "no_cache"}
_SAMPLE_FIELDS |= {"max_memory", "device"}  # a group's path is keyed; with or without a kernel, same picks
_TASK_FIELDS = {"num_tasks", "budget", "function", "lambda_", "seed", "cap", "no_cache"}

Order = tuple[np.ndarray, np.ndarray]


def cache_dir(emb_dir: str | Path) -> Path:
    return Path(emb_dir) / CACHE_DIR


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _options(cfg: Any, skip: set[str]) -> dict:
    """The config's other fields (a new option, a greedy backend): they may change the order."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name not in skip}


def _source(es: EmbeddingSet) -> dict:
    """What identifies the vectors and the rows' tasks and templates."""
    return {k: es.meta.get(k) for k in ("fingerprint", "rows_sha256", "embeddings_sha256")}


class OrderCache:
    """One kind of entry (``tasks`` or ``samples``) in ``EMB_DIR/cache/``; ``enabled`` False: a no-op."""

    def __init__(self, emb_dir: str | Path, kind: str, enabled: bool = True):
        self.dir = cache_dir(emb_dir) / kind
        self.enabled = enabled

    def _files(self, key: dict) -> tuple[Path, Path]:
        name = artifacts.fingerprint(key)
        return self.dir / f"{name}.npy", self.dir / f"{name}.json"

    def _load(self, key: dict) -> np.ndarray | None:
        """The entry stored for ``key``, or None when there is none or it cannot be trusted."""
        array_path, record_path = self._files(key)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            raw = array_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
            return None
        if record.get("sha256") != hashlib.sha256(raw).hexdigest():
            return None
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        if array.dtype != ENTRY or array.ndim != 1 or len(array) != record.get("length"):
            return None
        index = array["index"]
        if len(index) and (index.min() < 0 or index.max() >= key["rows"] or len(np.unique(index)) != len(index)):
            return None
        return array

    def get(self, key: dict, length: int) -> Order | None:
        """The first ``length`` picks and gains stored for ``key``, or None (absent, too short, damaged)."""
        if not self.enabled:
            return None
        array = self._load(key)
        if array is None or len(array) < length:
            return None
        return array["index"][:length].copy(), array["gain"][:length].copy()

    def put(self, key: dict, index: np.ndarray, gains: np.ndarray) -> None:
        """Store an order unless a valid one at least as long is there; a failed write is only a miss later."""
        if not self.enabled or not len(index):
            return
        stored = self._load(key)
        if stored is not None and len(stored) >= len(index):
            return
        array = np.empty(len(index), dtype=ENTRY)
        array["index"], array["gain"] = index, gains
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        raw = buffer.getvalue()
        record = {"format": FORMAT, "key": key, "length": len(array), "sha256": hashlib.sha256(raw).hexdigest()}
        array_path, record_path = self._files(key)
        # The cache is an optimisation: a read-only EMB_DIR or a full disk must not fail the run.
        with contextlib.suppress(DataError, OSError):
            with artifacts.atomic_path(array_path) as tmp:
                tmp.write_bytes(raw)
            artifacts.write_json(record_path, record)


# --------------------------------------------------------------------------- the two users


def task_key(es: EmbeddingSet, objective: Objective, cfg: Any) -> dict:
    """Key of the full task order (M' = all) of ``objective`` over ``es``'s task means."""
    return {
        "kind": "tasks",
        "version": artifacts.producer()["version"],
        "embeddings": _source(es),
        "rows": len(es.task_names),
        "function": objective.name,
        "lambda": objective.lambda_,
        "options": _options(cfg, _TASK_FIELDS),
    }


class GroupOrders:
    """The cache as select-samples uses it: one order per (task, template) group, path and settings.

    ``group``: anything with ``task_code``, ``template_code``, ``positions`` (the group's rows in
    EMB_DIR, ascending) and ``budget``; ``path``: the route it takes (``dense``, ``sparse``, ...).
    """

    def __init__(self, es: EmbeddingSet, objective: Objective, cfg: Any):
        self.es, self.objective, self.cfg = es, objective, cfg
        self.cache = OrderCache(es.path, "samples", enabled=not getattr(cfg, "no_cache", False))

    def key(self, group: Any, path: str) -> dict | None:
        """The group's key, or None where its order is not prefix-stable (or not computed at all)."""
        if path not in ("dense", "sparse") or (path == "sparse" and self.cfg.optimizer != "lazy"):
            return None
        sparse = {"knn": self.cfg.knn, "optimizer": self.cfg.optimizer, "seed": self.cfg.seed}
        return {
            "kind": "samples",
            "version": artifacts.producer()["version"],
            "embeddings": _source(self.es),
            "task": self.es.task_names[group.task_code],
            "template": self.es.template_names[group.template_code] if self.es.template_names else None,
            "rows": len(group.positions),
            "function": self.objective.name,
            "lambda": self.objective.lambda_,
            "path": path,
            **(sparse if path == "sparse" else {}),
            "options": _options(self.cfg, _SAMPLE_FIELDS),
        }

    def get(self, group: Any, path: str) -> Order | None:
        key = self.key(group, path) if self.cache.enabled else None
        hit = None if key is None else self.cache.get(key, group.budget)
        return None if hit is None else (group.positions[hit[0]], hit[1])

    def put(self, group: Any, path: str, result: Order) -> None:
        key = self.key(group, path) if self.cache.enabled else None
        if key is not None:
            # Rows of a group ascend in EMB_DIR: a pick's place in the group is a binary search away.
            self.cache.put(key, np.searchsorted(group.positions, result[0]), result[1])


# --------------------------------------------------------------------------- cache info / clear


def _check_emb_dir(emb_dir: Path) -> None:
    if not (emb_dir / artifacts.META).is_file():
        raise DataError(f"{emb_dir} is not a folder written by smart-cli embed (no {artifacts.META})")


def info(emb_dir: str | Path) -> dict:
    """Entries, bytes, and both per kind and per function, of ``EMB_DIR``'s cache."""
    emb_dir = Path(emb_dir)
    _check_emb_dir(emb_dir)
    root = cache_dir(emb_dir)
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    out: dict = {"path": str(root), "entries": 0, "bytes": sum(p.stat().st_size for p in files), "kinds": {}}
    for record_path in sorted(p for p in files if p.suffix == ".json"):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            kind, function = record["key"]["kind"], record["key"]["function"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        size = record_path.stat().st_size + (
            array.stat().st_size if (array := record_path.with_suffix(".npy")).is_file() else 0
        )
        slot = out["kinds"].setdefault(kind, {}).setdefault(function, {"entries": 0, "bytes": 0})
        slot["entries"] += 1
        slot["bytes"] += size
        out["entries"] += 1
    return out


def clear(emb_dir: str | Path) -> dict:
    """Remove ``EMB_DIR``'s cache; return what it held."""
    held = info(emb_dir)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(cache_dir(emb_dir))
    return held
