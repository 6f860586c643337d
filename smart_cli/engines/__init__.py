"""Where embed and select-samples run: ``--engine local`` (this machine) or ``--engine ray`` (a Ray cluster).

Both give an :class:`~smart_cli.executor.Executor`; the stages hand it their work and get the
results back keyed by plan position, so the artifacts are the same bytes under either engine and
the engine is never recorded in them. Ray is an optional extra (``pip install 'smart-cli[ray]'``),
imported only when ``--engine ray`` runs something.

``ray_session.py`` connects to (or starts) Ray quietly and shuts it down; ``ray_executor.py`` runs
items as Ray tasks sized by memory (select-samples' groups) or on actors that load a model once
(embed's shards); ``shared.py`` refuses input paths the Ray nodes do not see the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from smart_cli import defaults
from smart_cli.errors import UsageError, param
from smart_cli.executor import Executor, for_workers


def check_engine(engine: str, address: str | None = None) -> None:
    """An unknown engine, an address without Ray, or Ray not installed: one line, before any work."""
    if engine not in defaults.ENGINES:
        raise UsageError(f"unknown {param('engine')} {engine!r}; choose from {', '.join(defaults.ENGINES)}")
    if engine == "local" and address:
        raise UsageError(f"{param('address')} is the address of a Ray cluster: it needs {param('engine')} ray")
    if engine == "ray":
        from smart_cli.engines.ray_session import require_ray

        require_ray()


@contextlib.contextmanager
def open_engine(
    engine: str = defaults.ENGINES[0],
    *,
    workers: int | None = None,
    address: str | None = None,
    gpus: bool = False,
    debug: bool = False,
    memory: int | None = None,
) -> Iterator[Executor]:
    """The executor of ``engine``; Ray is connected on first use and shut down on the way out.

    ``workers``: processes (local) or tasks/actors at once (Ray; ``None``: as many as the cluster's
    CPUs, or one actor per GPU for embed). ``address``: a Ray cluster (``auto``: the one running
    here; ``None``: ``RAY_ADDRESS``, else a new local instance). ``gpus``: embed may put one actor
    on each GPU of the cluster. ``debug``: Ray's own logs on the screen. ``memory``: bytes the
    local processes' items may take at once (by the weights ``map`` is given).
    """
    check_engine(engine, address)
    if engine == "local":
        yield for_workers(workers or 1, memory)
        return
    from smart_cli.engines.ray_executor import RayExecutor
    from smart_cli.engines.ray_session import RaySession

    session = RaySession(address, debug=debug)
    try:
        yield RayExecutor(session, workers, gpus=gpus)
    finally:
        session.close()
