"""One connection to Ray for one command: quiet, lazy, and shut down when we started it.

Ray's own log lines and its workers' output stay off the screen (``log_to_driver=False``,
``logging_level=ERROR``, no dashboard, no usage stats) unless ``--debug``. A Ray the caller
already connected (``ray.init`` in a notebook or a test) is used as it is and left running.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from smart_cli import defaults
from smart_cli.errors import DataError, UsageError, first_line, param

INSTALL = "pip install 'smart-cli[ray]'"
#: Environment variables the workers get from this process where it sets them: offline mode and
#: the caches (a hub dataset needs HF_DATASETS_CACHE on storage every node sees).
FORWARDED = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HOME",
    "HF_DATASETS_CACHE",
    "SMART_CLI_CACHE",
)


#: Seconds to wait for a cluster's address to accept a connection before saying it cannot.
REACH_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) address that nothing answers at is one line, at once."""
    import socket

    hostport = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S):
            return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DataError(
            f"{param('engine')} ray: cannot reach the Ray cluster at {address} ({reason}); "
            f"check {param('address')} or RAY_ADDRESS"
        ) from None


def require_ray() -> None:
    """Ray is installed, or one line saying how to install it."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError(f"{param('engine')} ray needs Ray, which is not installed: {INSTALL}") from None


class RaySession:
    """``ray`` connected on first use of :attr:`ray`; :meth:`close` shuts down what this session started."""

    def __init__(self, address: str | None = None, *, debug: bool = False):
        self.address = address
        self.debug = debug
        self.started = False
        self._ray: Any = None
        self._checked: Any = None  # the paths and nodes shared.check_shared last found alike

    @property
    def ray(self) -> Any:
        if self._ray is None:
            self._ray = self._connect()
        return self._ray

    def _connect(self) -> Any:
        require_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address is None:  # our own instance: no token to check, so no warning about one
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        if ray.is_initialized():
            return ray
        level = logging.INFO if self.debug else logging.ERROR
        options: dict[str, Any] = {"log_to_driver": self.debug, "logging_level": level}
        if address is None:
            options |= {"include_dashboard": False, "object_store_memory": defaults.RAY_OBJECT_STORE_BYTES}
        if address is not None:
            _check_reachable(address)  # ray.init would retry an unreachable address for minutes
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise DataError(f"{param('engine')} ray: cannot start or reach {where}: {first_line(exc)}") from None
        self.started = True
        return ray

    def close(self) -> None:
        if self.started:
            self.started = False
            self._ray.shutdown()

    def worker_env(self, threads: int) -> dict[str, str]:
        """The runtime environment of our tasks and actors: thread pools sized like this process's
        (the bits of a BLAS product depend on its thread count), quiet tokenizers and transformers."""
        from smart_cli.executor import THREAD_VARS

        env = {k: str(threads) for k in THREAD_VARS}
        env |= {"TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
        env |= {k: os.environ[k] for k in FORWARDED if k in os.environ}
        return env

    def cluster(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def largest_node_memory(self) -> int:
        """The ``memory`` resource of the largest alive node (a task asking more would wait forever)."""
        sizes = [n.get("Resources", {}).get("memory", 0) for n in self.ray.nodes() if n.get("Alive")]
        return int(max(sizes, default=0))
