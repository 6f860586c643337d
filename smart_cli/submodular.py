"""Submodular objectives over a dense kernel, maximised by lazy greedy (ours, or submodlib's).

The objective (``fl``, ``gc``, ``logdet``) and the optimizer are separate choices; ``random`` is
the "all gains equal" baseline. Pure: arrays in, arrays out, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smart_cli import defaults, similarity
from smart_cli.errors import UsageError, param

#: Submodular functions by their CLI names, with the reference's default lambda; ``random`` is
#: the baseline of equal gains.
FUNCTIONS: dict[str, float | None] = {**{f: defaults.LAMBDA.get(f) for f in defaults.FUNCTIONS}, "random": None}


@dataclass(frozen=True)
class Objective:
    """A set function by name and its lambda (``None`` where the function has none)."""

    name: str
    lambda_: float | None = None

    @classmethod
    def of(cls, name: str, lambda_: float | None = None) -> Objective:
        if name not in FUNCTIONS:
            raise UsageError(f"unknown {param('function')} {name!r}; choose from {', '.join(FUNCTIONS)}")
        number = isinstance(lambda_, (int, float)) and not isinstance(lambda_, bool)
        if lambda_ is not None and not (number and math.isfinite(lambda_) and lambda_ >= 0):
            # A NaN lambda sends submodlib's greedy into an endless loop; a negative one is not submodular.
            raise UsageError(f"{param('lambda_')} must be a finite number >= 0, got {lambda_!r}")
        return cls(name, FUNCTIONS[name] if lambda_ is None else lambda_)


def check_backend(backend: str) -> None:
    if backend not in defaults.GREEDY_BACKENDS:
        choices = ", ".join(defaults.GREEDY_BACKENDS)
        raise UsageError(f"unknown {param('greedy_backend')} {backend!r}; choose from {choices}")


def backend_param(backend: str) -> dict:
    """What an artifact records of the greedy backend: nothing for the default (both give the same
    picks), so artifacts keep their bytes; the library's name where it was asked for."""
    return {} if backend == defaults.GREEDY_BACKENDS[0] else {"greedy_backend": backend}


def check_kernel(kernel: str) -> None:
    if kernel not in defaults.KERNELS:
        raise UsageError(f"unknown {param('kernel')} {kernel!r}; choose from {', '.join(defaults.KERNELS)}")


def kernel_param(kernel: str) -> dict:
    """What an artifact records of the kernel's arithmetic: nothing for the default."""
    return {} if kernel == defaults.KERNELS[0] else {"kernel": kernel}


def blas_kernel(emb: np.ndarray) -> np.ndarray:
    """numpy's float32 ``x @ x.T`` of the unit rows: what a user hands submodlib as ``sijs``. Its
    last bits follow this machine's BLAS (kernel, blocking), so it is ``--kernel blas`` only."""
    rows = similarity.unit_rows(emb)
    return rows @ rows.T


def cosine_kernel(emb: np.ndarray, device: str | None = None) -> np.ndarray:
    """Cosine similarity of the rows (raw, in [-1, 1]) as float32, the same bits on any machine.

    Rows already unit-norm (float32 embeddings) keep their exact bits, so the kernel is the
    product E @ E.T of the stored embeddings, each entry summed in the fixed order of
    ``similarity`` rather than in whatever order this machine's BLAS uses.
    """
    return similarity.gram(similarity.unit_rows(emb), device)


def _submodlib_function(objective: Objective, kernel: np.ndarray):
    import submodlib.functions as fns

    n = kernel.shape[0]
    kernel = np.ascontiguousarray(kernel, dtype=np.float32)
    if objective.name == "fl":
        return fns.facilityLocation.FacilityLocationFunction(n=n, mode="dense", sijs=kernel, separate_rep=False)
    if objective.name == "gc":
        return fns.graphCut.GraphCutFunction(
            n=n, mode="dense", ggsijs=kernel, lambdaVal=objective.lambda_, separate_rep=False
        )
    if objective.name == "logdet":
        return fns.logDeterminant.LogDeterminantFunction(n=n, mode="dense", lambdaVal=objective.lambda_, sijs=kernel)
    raise ValueError(f"{objective.name!r} is not a submodular function")


def lazy_greedy(
    kernel: np.ndarray, budget: int, objective: Objective, backend: str = "smart", symmetric: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``budget`` picks of lazy greedy on ``objective`` over ``kernel``, with their gains.

    ``backend`` ``smart`` is this package's engine (``dense_greedy``: submodlib's picks and gains
    bit for bit, reading the kernel in place; ``symmetric`` as there); ``submodlib`` calls the library.
    submodlib refuses ``budget >= n``; for ``budget == n`` the library picks n - 1 and the last
    remaining element is appended with its marginal gain, which is what greedy would pick next
    (both backends; that one gain agrees between them to rounding).
    """
    if backend not in defaults.GREEDY_BACKENDS:
        raise ValueError(f"unknown greedy backend {backend!r}; choose from {', '.join(defaults.GREEDY_BACKENDS)}")
    n = kernel.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    if budget == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if backend == "smart":
        from smart_cli import dense_greedy

        return dense_greedy.lazy_greedy(kernel, budget, objective.name, objective.lambda_, symmetric)
    return _submodlib_lazy_greedy(kernel, budget, objective)


def _submodlib_lazy_greedy(kernel: np.ndarray, budget: int, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    return run_submodlib(_submodlib_function(objective, kernel), kernel.shape[0], budget)


def run_submodlib(fn, n: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``budget`` picks and gains of submodlib's ``LazyGreedy`` on the library function
    ``fn`` over ``n`` elements. The library refuses ``budget >= n``: at ``budget == n`` the last
    element is appended with its marginal gain."""
    picks = (
        fn.maximize(
            budget=min(budget, n - 1),
            optimizer="LazyGreedy",
            stopIfZeroGain=False,
            stopIfNegativeGain=False,
            verbose=False,
            show_progress=False,  # it would print to stdout, which belongs to data
        )
        if n > 1 and budget
        else []
    )
    idx = [int(i) for i, _ in picks]
    gains = [float(g) for _, g in picks]
    if budget == n:
        chosen = set(idx)
        last = next(i for i in range(n) if i not in chosen)
        gains.append(float(fn.marginalGain(chosen, last)))
        idx.append(last)
    return np.asarray(idx, dtype=np.int64), np.asarray(gains, dtype=np.float64)


def random_picks(n: int, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``budget`` distinct elements drawn at random, all gains equal to 1."""
    idx = rng.choice(n, size=budget, replace=False).astype(np.int64)
    return idx, np.ones(budget, dtype=np.float64)


def maximize(
    emb: np.ndarray,
    budget: int,
    objective: Objective,
    rng: np.random.Generator,
    backend: str = "smart",
    kernel_rows: int | None = None,
    cache_bytes: int | None = None,
    device: str | None = None,
    kernel: str = defaults.KERNELS[0],
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy order and gains of ``budget`` rows of ``emb`` under ``objective`` (dense kernel).

    ``kernel_rows``: above this many rows our engine runs without the n x n kernel where it can
    (``dense_free``: facility location, graph cut, keeping up to ``cache_bytes`` of recently
    used kernel columns); the picks and gains are the same. ``device``: where the kernel's
    products run (torch, ``cuda`` say); the same kernel, bit for bit. ``kernel`` ``blas``: numpy's
    float32 product instead (``blas_kernel``; always built: its bits depend on the blocking).
    """
    if objective.name == "random":
        return random_picks(emb.shape[0], budget, rng)
    n = emb.shape[0]
    if kernel == "blas":
        return lazy_greedy(blas_kernel(emb), budget, objective, backend, symmetric=None)
    if backend == "smart" and kernel_rows is not None and n > kernel_rows and 0 < budget:
        from smart_cli import dense_free

        if objective.name in dense_free.KERNEL_FREE:
            rows = similarity.unit_rows(emb)
            cache = dense_free.CACHE_BYTES if cache_bytes is None else cache_bytes
            return dense_free.lazy_greedy(rows, budget, objective.name, objective.lambda_, cache_bytes=cache)
    return lazy_greedy(cosine_kernel(emb, device), budget, objective, backend, symmetric=True)  # gram: symmetric
