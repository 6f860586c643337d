"""How work runs, kept apart from what it does.

A stage describes its work as ``work(context, item) -> result`` over a list of items (the groups
of select-samples, the shards of embed) and a ``setup()`` that builds the context once per worker
(an opened memory map, a loaded model). An executor decides where the calls happen: here in this
process (:class:`InProcess`) or in a pool of processes (:class:`ProcessPool`). Either way the
results come back in plan order, so what a stage writes never depends on the executor. A new
executor (Ray, next) implements the same two methods.

``work`` and ``setup`` must be picklable for a pool (module-level functions, dataclasses).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Work = Callable[[Any, T], R]
Setup = Callable[[], Any]
Done = Callable[[int, Any], None]


class Executor(Protocol):
    #: How many items run at the same time.
    workers: int

    def map(
        self,
        work: Work,
        items: Sequence[T],
        setup: Setup,
        *,
        local: Any = None,
        order: Sequence[int] | None = None,
        done: Done | None = None,
        weights: Sequence[int] | None = None,
    ) -> list:
        """``[work(ctx, item) for item in items]``, in plan order.

        ``local``: a context already built in this process (used instead of ``setup()`` where
        the work runs here). ``order``: the order to start items in (largest first, say).
        ``done(i, result)``: called as each item finishes, in any order (progress).
        ``weights``: each item's estimated peak memory in bytes, for an executor that places
        work by memory (Ray); the others ignore it.
        """

    def imap(self, work: Work, items: Sequence[T], setup: Setup, *, local: Any = None) -> Iterator:
        """The results one at a time in plan order, holding only a few in flight (streaming)."""


class InProcess:
    """Every item in this process, one after another."""

    workers = 1

    def map(self, work, items, setup, *, local=None, order=None, done=None, weights=None) -> list:
        results = []
        for i, result in enumerate(self.imap(work, items, setup, local=local)):
            results.append(result)
            if done is not None:
                done(i, result)
        return results

    def imap(self, work, items, setup, *, local=None) -> Iterator:
        context = setup() if local is None else local
        for item in items:
            yield work(context, item)


class WorkerDied(RuntimeError):
    """A worker process ended in the middle of the work (killed by a signal, or out of memory).

    ``items``: positions (in the list given to ``map``/``imap``) of the items that were running
    when it happened; the one whose worker died is among them.
    """

    def __init__(self, items: list[int]):
        self.items = items
        running = ", ".join(map(str, items)) or "unknown"
        super().__init__(f"a worker process died (killed, or out of memory) while running item(s) {running}")


#: Environment variables that size the thread pools of BLAS, OpenMP (faiss) and numba.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_CONTEXT: dict[str, Any] = {}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def blas_threads() -> int:
    """Threads of this process's BLAS (what a matrix product here runs with)."""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    return cores()


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Thread-pool sizes for worker processes: they read these when their libraries load."""
    old = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker(setup: Setup, threads: int, running: Any, slots: Any) -> None:
    """Build the worker's context once (arrays and models never cross the pipe)."""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    with slots.get_lock():  # each worker its own slot in ``running``
        _CONTEXT["slot"] = slots.value
        slots.value += 1
    _CONTEXT["running"] = running
    _CONTEXT["ctx"] = setup()


def _call(work: Work, index: int, item: Any) -> Any:
    """``work`` on one item, noting in shared memory which item this worker is on (for WorkerDied)."""
    running, slot = _CONTEXT["running"], _CONTEXT["slot"]
    running[slot] = index
    result = work(_CONTEXT["ctx"], item)
    running[slot] = -1
    return result


class ProcessPool:
    """Items in ``workers`` spawned processes.

    Each worker runs its BLAS, OpenMP and numba pools with as many threads as this process's BLAS
    (``threads`` to choose): OpenBLAS splits a product by its thread count, and the split can
    change the last bits of the result, so a worker with fewer threads would not give the bytes
    this process gives. The cost is some oversubscription while products run.
    """

    def __init__(self, workers: int, threads: int | None = None, memory: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.threads = threads
        #: Bytes the items running at once may take together (their ``weights``): an item waits
        #: for others to finish rather than start past it (one always runs). ``None``: no limit.
        self.memory = memory

    @contextlib.contextmanager
    def _pool(self, setup: Setup, items: int) -> Iterator[Any]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        workers = max(1, min(self.workers, items))
        threads = self.threads or blas_threads()
        # spawn, not fork: numba, faiss, torch and OpenMP do not survive a fork of a process using them.
        context = multiprocessing.get_context("spawn")
        running = context.Array("q", [-1] * workers, lock=False)  # the item each worker is on
        slots = context.Value("i", 0)
        try:
            with (
                thread_env(threads),
                ProcessPoolExecutor(
                    workers, mp_context=context, initializer=_init_worker, initargs=(setup, threads, running, slots)
                ) as pool,
            ):
                yield pool
        except BrokenProcessPool:
            raise WorkerDied(sorted(i for i in running if i >= 0)) from None

    def map(self, work, items, setup, *, local=None, order=None, done=None, weights=None) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        results: list = [None] * len(items)
        if not items:
            return results
        weight = list(weights) if weights is not None and self.memory is not None else [0] * len(items)
        waiting = list(order or range(len(items)))
        with self._pool(setup, len(items)) as pool:
            futures: dict = {}
            try:
                while waiting or futures:
                    while waiting and self._admits(weight, futures, waiting[0]):
                        i = waiting.pop(0)
                        futures[pool.submit(_call, work, i, items[i])] = i
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = futures.pop(fut)
                        results[i] = fut.result()
                        if done is not None:
                            done(i, results[i])
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results

    def _admits(self, weight: list[int], running: dict, i: int) -> bool:
        """Whether item ``i`` may start now: a worker is free and the memory holds it (or nothing runs)."""
        if len(running) >= self.workers:
            return False
        if not running or self.memory is None:
            return True
        return sum(weight[j] for j in running.values()) + weight[i] <= self.memory

    def imap(self, work, items, setup, *, local=None) -> Iterator:
        from collections import deque

        if not items:
            return
        with self._pool(setup, len(items)) as pool:
            window: deque = deque()
            ahead = 2 * self.workers  # enough to keep every worker busy, few results held
            try:
                for i, item in enumerate(items):
                    window.append(pool.submit(_call, work, i, item))
                    if len(window) >= ahead:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
            except BaseException:
                for fut in window:
                    fut.cancel()
                raise


def unordered(executor: Executor, work: Work, items: Sequence[T], setup: Setup, *, local: Any = None) -> Iterator:
    """``(i, result)`` pairs as items finish: in any order where the executor has ``imap_unordered``
    (a few in flight, as ``imap``), else in plan order."""
    if hasattr(executor, "imap_unordered"):
        return executor.imap_unordered(work, items, setup, local=local)
    return enumerate(executor.imap(work, items, setup, local=local))


def for_workers(workers: int, memory: int | None = None) -> Executor:
    """The executor for ``--workers N``: this process for 1, a process pool above, whose items
    running at once take at most ``memory`` bytes together (by their weights)."""
    return InProcess() if workers <= 1 else ProcessPool(workers, memory=memory)
