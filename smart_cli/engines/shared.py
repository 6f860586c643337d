"""Refuse, in one line, input paths that the Ray nodes do not see as this machine does.

Embed's actors open DATASET themselves and select-samples' tasks read ``EMB_DIR/embeddings.npy``
through a memory map, so both must be on storage every node mounts at the same path (NFS, a
shared volume). Before the first task, one tiny task per node compares each path's signature
(size and modification time of every file under it) with this machine's: a missing path, or a
different local copy, stops the run before any work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smart_cli.artifacts import EMBEDDINGS
from smart_cli.errors import DataError, param

#: Files looked at under a folder (a dataset of many shards is still compared by its first ones).
MAX_FILES = 2000


def signature(path: str) -> tuple | None:
    """``(name, size, mtime_ns)`` of the file, or of the files under the folder; None where it is missing."""
    p = Path(path)
    try:
        if p.is_file():
            st = p.stat()
            return ((p.name, st.st_size, st.st_mtime_ns),)
        if not p.is_dir():
            return None
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))[:MAX_FILES]
        return tuple((str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return None


def _signatures(paths: list[str]) -> tuple[str, list]:
    import ray

    return ray.util.get_node_ip_address(), [signature(p) for p in paths]


def shared_paths(setup: Any) -> tuple[str, ...]:
    """The paths a setup reads: its ``shared_paths``, or for select-samples' (an ``EMB_DIR``'s
    ``path``) the matrix there (not the folder: its order cache changes while the groups run)."""
    paths = getattr(setup, "shared_paths", None)
    if paths is None and isinstance(getattr(setup, "path", None), str):
        paths = (os.path.join(setup.path, EMBEDDINGS),)
    return tuple(paths or ())


def check_shared(session: Any, setup: Any) -> None:
    """Every alive node sees ``setup.shared_paths`` (those that exist here) as this machine does."""
    paths = [os.path.abspath(p) for p in shared_paths(setup) if os.path.exists(p)]
    ray = session.ray
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
    key = (tuple(paths), tuple(nodes))
    if not paths or nodes == [ray.get_runtime_context().get_node_id()] or session._checked == key:
        return  # one node, this one (or checked already): nothing to compare
    refuse_differences(paths, [signature(p) for p in paths], node_signatures(ray, nodes, paths))
    session._checked = key


def node_signatures(ray: Any, nodes: list[str], paths: list[str]) -> list[tuple[str, list]]:
    """``(ip, [signature(p) for p in paths])`` as each node sees them (one tiny task per node)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(_signatures)
    return ray.get(
        [
            probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(paths)
            for n in nodes
        ]
    )


def refuse_differences(paths: list[str], want: list, seen: list[tuple[str, list]]) -> None:
    """One line naming the first path a node sees otherwise than this machine (``want``)."""
    for ip, theirs in seen:
        for path, mine, sig in zip(paths, want, theirs):
            if sig != mine:
                why = "it is not there" if sig is None else "it differs from this machine's copy"
                raise DataError(
                    f"{param('engine')} ray: {path} is not shared with the Ray node at {ip} ({why}); DATASET and "
                    "EMB_DIR must be on storage every node mounts at the same path (NFS, a shared volume)"
                )
