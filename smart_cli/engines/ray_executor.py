"""The :class:`~smart_cli.executor.Executor` on Ray: tasks sized by memory, or actors that load a model once.

* ``map`` (select-samples' groups): each item, or a bundle of small items, is one Ray task asking
  for the item's memory estimate (``memory=``), so the scheduler admits a large group only where
  it fits. Tasks lost with a node are retried by Ray; the results are put back in plan order.
* ``imap_unordered`` (embed's shards): a pool of actors, one per GPU or ``workers`` CPU actors;
  each builds its context (the dataset and the model) once, and gets two items at a time. An
  actor that dies (its node gone) costs only the items it held: they go to the others.
* ``imap``: the same, in plan order.

Only small things cross the object store: the setup once, the items, and the results (a shard's
vectors, a group's positions and gains). Workers run their thread pools at this process's size,
as :class:`~smart_cli.executor.ProcessPool` does, so their products give this process's bits.
"""

from __future__ import annotations

import contextlib
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any

from smart_cli import defaults
from smart_cli.dense_limit import PROCESS_BYTES
from smart_cli.engines.ray_session import RaySession
from smart_cli.engines.shared import check_shared
from smart_cli.errors import UsageError, param
from smart_cli.executor import WorkerDied, blas_threads

#: How often one item may be lost with its worker before the run stops.
MAX_TRIES = 3
_CONTEXT: dict[str, Any] = {}


def _limit_threads(threads: int) -> None:
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


def _context(box: list, threads: int) -> Any:
    """This worker process's context for the setup in ``box`` (an object ref), built once and kept."""
    import ray

    key = box[0].hex()
    if _CONTEXT.get("key") != key:
        _CONTEXT.clear()  # another command's context: let its memory map or model go
        _limit_threads(threads)
        _CONTEXT["ctx"] = ray.get(box[0])()
        _CONTEXT["key"] = key
    return _CONTEXT["ctx"]


def _run_bundle(work: Any, box: list, threads: int, items: list) -> list:
    """A Ray task: ``work`` on each item of a bundle, in order."""
    ctx = _context(box, threads)
    return [work(ctx, item) for item in items]


class _Worker:
    """A Ray actor: its context (a loaded model) is built on the first call and kept."""

    def __init__(self, box: list, threads: int):
        self.box, self.threads = box, threads

    def call(self, work: Any, item: Any) -> Any:
        return work(_context(self.box, self.threads), item)


def _died() -> tuple[type[BaseException], ...]:
    import ray.exceptions as e

    return (e.RayActorError, e.WorkerCrashedError, e.NodeDiedError, e.OutOfMemoryError, e.ObjectLostError)


def _result(ray: Any, ref: Any, items: list[int]) -> Any:
    """``ray.get(ref)``, with a task's own exception raised as itself (not Ray's wrapper with its traceback)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except _died():
        raise WorkerDied(items) from None


def plan_bundles(order: Sequence[int], weights: Sequence[int] | None) -> list[list[int]]:
    """The tasks of ``map``: each item alone, except small ones gathered in ``order`` (an item's
    weight, less the process's own ``PROCESS_BYTES``, under ``RAY_BUNDLE_BYTES``)."""
    if weights is None:
        return [[i] for i in order]
    bundles: list[list[int]] = []
    small: list[int] = []
    for i in order:
        if weights[i] - PROCESS_BYTES >= defaults.RAY_BUNDLE_BYTES:
            bundles.append([i])
            continue
        small.append(i)
        work = sum(weights[j] - PROCESS_BYTES for j in small)
        if len(small) >= defaults.RAY_BUNDLE_ITEMS or work >= defaults.RAY_BUNDLE_BYTES:
            bundles.append(small)
            small = []
    return bundles + ([small] if small else [])


class RayExecutor:
    """Items on a Ray cluster; results keyed by plan position, never by completion order."""

    #: Work sent here may run on another machine (a single large group is worth sending).
    remote = True

    def __init__(self, session: RaySession, workers: int | None = None, *, gpus: bool = False):
        if workers is not None and workers < 1:
            raise UsageError(f"{param('workers')} must be at least 1, got {workers}")
        self.session = session
        self._workers = workers
        self.gpus = gpus
        self.threads = blas_threads()

    @property
    def workers(self) -> int:
        """Tasks or CPU actors at once: as given, else one per CPU of the cluster (Ray connected then)."""
        if self._workers is not None:
            return self._workers
        return max(1, int(self.session.cluster().get("CPU", 1)))

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    def _options(self) -> dict:
        return {"runtime_env": {"env_vars": self.session.worker_env(self.threads)}}

    def map(self, work, items, setup, *, local=None, order=None, done=None, weights=None) -> list:
        results: list = [None] * len(items)
        if not items:
            return results
        ray = self.session.ray
        check_shared(self.session, setup)
        box = [ray.put(setup)]
        cap = max(1, self.session.largest_node_memory())
        task = ray.remote(_run_bundle)
        pending = deque(plan_bundles(order or range(len(items)), weights))
        running: dict[Any, list[int]] = {}
        limit = self.workers
        try:
            while pending or running:
                while pending and len(running) < limit:
                    bundle = pending.popleft()
                    opts = {**self._options(), "num_cpus": 1, "max_retries": 2}
                    if weights is not None:
                        opts["memory"] = int(min(max(weights[i] for i in bundle), cap)) or 1
                    ref = task.options(**opts).remote(work, box, self.threads, [items[i] for i in bundle])
                    running[ref] = bundle
                [ref], _ = ray.wait(list(running), num_returns=1)
                bundle = running.pop(ref)
                for i, result in zip(bundle, _result(ray, ref, bundle)):
                    results[i] = result
                    if done is not None:
                        done(i, result)
        except BaseException:
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return results

    def imap(self, work, items, setup, *, local=None) -> Iterator:
        ahead: dict[int, Any] = {}
        want = 0
        for i, result in self.imap_unordered(work, items, setup, local=local):
            ahead[i] = result
            while want in ahead:
                yield ahead.pop(want)
                want += 1

    def _actors(self, count: int) -> list:
        """The actor pool: one per GPU where embed may use GPUs and the cluster has them, else CPU actors."""
        gpus = int(self.session.cluster().get("GPU", 0)) if self.gpus else 0
        shape = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        size = min(count, (min(self._workers, gpus) if self._workers else gpus) if gpus else self.workers)
        actor = self.session.ray.remote(_Worker).options(**self._options(), **shape, max_restarts=0)
        return [actor.remote(self._box, self.threads) for _ in range(max(1, size))]

    def imap_unordered(self, work, items, setup, *, local=None) -> Iterator[tuple[int, Any]]:
        """``(i, result)`` as items finish, two items queued on each actor."""
        if not items:
            return
        ray = self.session.ray
        check_shared(self.session, setup)
        self._box = [ray.put(setup)]
        live = self._actors(len(items))
        queue = deque(range(len(items)))
        running: dict[Any, tuple[Any, int]] = {}
        tries: Counter = Counter()

        def feed() -> None:
            for actor in live:
                while queue and sum(a is actor for a, _ in running.values()) < 2:
                    i = queue.popleft()
                    running[actor.call.remote(work, items[i])] = (actor, i)

        try:
            feed()
            while running:
                [ref], _ = ray.wait(list(running), num_returns=1)
                actor, i = running.pop(ref)
                try:
                    result = _result(ray, ref, [i])
                except WorkerDied:
                    tries[i] += 1
                    live = [a for a in live if a is not actor]
                    if tries[i] >= MAX_TRIES or not live:
                        raise WorkerDied(sorted([i, *(j for _, j in running.values())])) from None
                    queue.appendleft(i)  # its item goes to another actor
                else:
                    yield i, result
                feed()
        finally:
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for actor in live:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
