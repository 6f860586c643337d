"""select-samples' options (``SampleConfig``): their defaults, their checks, and the dense limit they imply."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from smart_cli import defaults, similarity, targeted
from smart_cli.artifacts import TasksDoc
from smart_cli.dense_limit import available_memory, default_max_dense_rows, parse_size
from smart_cli.errors import UsageError, param
from smart_cli.submodular import FUNCTIONS, Objective, check_backend, check_kernel

SAMPLE_FUNCTIONS = (*FUNCTIONS, *defaults.MI_FUNCTIONS)


@dataclass
class SampleConfig:
    """Defaults of ``smart-cli select-samples`` (the paper's: facility location, seed 23).

    ``function`` ``None`` means: what the tasks file implies (``"rows": "random"`` for the
    baselines and the random task selection), else ``fl``.
    """

    function: str | None = None
    lambda_: float | None = None
    seed: int = defaults.SEED
    #: Largest group on the dense path; larger groups go to the kNN graph. ``None``: from memory
    #: (``default_max_dense_rows``); ``0``: every group with 0 < b < n on the sparse path.
    max_dense_rows: int | None = None
    knn: int = defaults.KNN
    optimizer: str = defaults.OPTIMIZERS[0]
    workers: int = 1
    #: Neither read nor write ``EMB_DIR/cache/`` (the greedy orders of earlier runs; same output).
    no_cache: bool = False
    #: The dense path's lazy greedy: ``smart`` (this package's engine) or ``submodlib``; same picks.
    greedy_backend: str = defaults.GREEDY_BACKENDS[0]
    #: The dense kernel's arithmetic: ``fixed`` (the same bits on any machine) or ``blas`` (numpy's
    #: float32 product: submodlib's picks on that product, on this machine only). Recorded when ``blas``.
    kernel: str = defaults.KERNELS[0]
    #: Targeted selection: an ``EMB_DIR`` of target examples (default function flmi), and eta.
    query: str | Path | None = None
    eta: float | None = None
    fixed_dense_limit: bool = False  #: limits from the caps alone, not this machine's memory (--engine ray)
    #: Bytes the selection may take at once (``8G``, or a number): the kernels' size and how many
    #: groups run at the same time follow it. ``None``: the memory available when it starts.
    max_memory: int | str | None = None
    #: Where the kernels' products run (torch: ``cuda``, ``cuda:1``, ``cpu``); ``None``: numpy's
    #: BLAS. The same kernels, bit for bit (``similarity``): never recorded in an artifact.
    device: str | None = None

    def memory(self) -> int:
        """The memory budget in bytes: ``max_memory``, else what is available now."""
        if self.max_memory is None:
            return available_memory()
        try:
            return parse_size(self.max_memory)
        except ValueError as exc:
            raise UsageError(f"{param('max_memory')}: {exc}") from None

    def objective(self) -> Objective:
        """The function to maximise; also checks the options fit together (before any work)."""
        check_backend(self.greedy_backend)
        check_kernel(self.kernel)
        if self.function is not None and self.function not in SAMPLE_FUNCTIONS:
            raise UsageError(
                f"unknown {param('function')} {self.function!r}; choose from {', '.join(SAMPLE_FUNCTIONS)}"
            )
        if self.max_dense_rows is not None and self.max_dense_rows < 0:
            raise UsageError(f"{param('max_dense_rows')} must be >= 0, got {self.max_dense_rows}")
        if self.knn < 1:
            raise UsageError(f"{param('knn')} must be at least 1, got {self.knn}")
        if self.optimizer not in defaults.OPTIMIZERS:
            opts = ", ".join(defaults.OPTIMIZERS)
            raise UsageError(f"unknown {param('optimizer')} {self.optimizer!r}; choose from {opts}")
        if self.workers < 1:
            raise UsageError(f"{param('workers')} must be at least 1, got {self.workers}")
        self.memory()  # a malformed --max-memory is a usage error before any work
        similarity.check_device(self.device)
        mi = targeted.query_objective(self.function, self.lambda_, self.eta, self.query)  # None without a query
        return mi or Objective.of(self.function or defaults.SAMPLE_FUNCTION, self.lambda_)

    def dense_limit(self, function: str) -> int:
        """``max_dense_rows``, or where it is not given the default from the memory there is now."""
        if self.max_dense_rows is not None:
            return self.max_dense_rows
        available = 1 << 62 if self.fixed_dense_limit else self.memory()  # fixed: the cap alone
        kernel = targeted.KERNEL_OF.get(function, function)
        return default_max_dense_rows(kernel, available, backend=self.greedy_backend)

    def for_tasks(self, tasks_doc: TasksDoc) -> SampleConfig:
        """This config with ``function`` filled in from the tasks file when it was not given."""
        if self.function is not None or self.query is not None:
            return self
        return dataclasses.replace(self, function=tasks_doc.get("rows") or defaults.SAMPLE_FUNCTION)
