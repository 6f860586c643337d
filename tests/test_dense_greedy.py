"""Our dense lazy greedy (``dense_greedy``) against submodlib's ``LazyGreedy``, the real library.

The engine replicates submodlib's heap, summation order and float types, so the claim tested is
the strong one: the same picks in the same order and the same gains, bit for bit, for every pick
the library's heap makes. The one gain that is not bit for bit is the last one at ``budget == n``:
submodlib refuses that budget, and its backend appends the last element with the library's
``marginalGain`` (recomputed from scratch, summed in a hash set's order), while the engine takes
the memoised gain greedy would use. Both are the same marginal gain up to rounding; see
``test_budget_n_last_gain``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smart_cli import dense_greedy
from smart_cli.defaults import GREEDY_BACKENDS
from smart_cli.submodular import Objective, cosine_kernel, lazy_greedy, maximize

OBJECTIVES = [("fl", None), ("gc", 0.0), ("gc", 0.4), ("gc", 1.0), ("logdet", 1.0), ("logdet", 0.5)]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def gaussian(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Isotropic directions: similarities of both signs."""
    return _unit(rng.standard_normal((n, d)))


def clustered(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A few tight clusters, as in a FLAN (task, template) group."""
    centres = rng.standard_normal((max(2, n // 25), d))
    return _unit(centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, d)))


def duplicates(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A third of the rows repeat others exactly: equal gains everywhere, so ties decide."""
    x = clustered(n, d, rng)
    dup = rng.integers(0, n, n // 3)
    x[rng.permutation(n)[: dup.size]] = x[dup]
    return x


def lattice(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Unnormalised rows with entries in {-1, 0, 1}: the kernel holds small integers, exact ties galore."""
    return rng.integers(-1, 2, (n, d)).astype(np.float32)


def magnitudes(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Unnormalised rows of lengths 1e-10 .. 1: the kernel's entries span twenty decades, so double
    sums round and their order (submodlib adds row n - 1 first) shows in the last bits."""
    return (gaussian(n, d, rng) * 10.0 ** rng.uniform(-10, 0, (n, 1))).astype(np.float32)


DATA = {
    "gaussian": gaussian,
    "clustered": clustered,
    "duplicates": duplicates,
    "lattice": lattice,
    "magnitudes": magnitudes,
}
SIZES = [(2, 3), (3, 2), (9, 2), (40, 8), (150, 32), (600, 384)]


def reference(kernel: np.ndarray, budget: int, name: str, lam: float | None):
    return lazy_greedy(kernel, budget, Objective.of(name, lam), backend="submodlib")


def assert_same(kernel: np.ndarray, budget: int, name: str, lam: float | None) -> None:
    """Same picks, same order; gains equal bit for bit wherever submodlib's heap made the pick."""
    ref_idx, ref_gain = reference(kernel, budget, name, lam)
    idx, gains = dense_greedy.lazy_greedy(kernel, budget, name, lam)
    assert idx.dtype == np.int64 and gains.dtype == np.float64
    assert idx.tolist() == ref_idx.tolist()
    heap = min(budget, kernel.shape[0] - 1)
    np.testing.assert_array_equal(gains[:heap], ref_gain[:heap])
    np.testing.assert_allclose(gains, ref_gain, rtol=1e-5, atol=2e-7 * kernel.shape[0])


@pytest.mark.parametrize("name,lam", OBJECTIVES)
@pytest.mark.parametrize("n,d", SIZES)
@pytest.mark.parametrize("data", sorted(DATA))
def test_agrees_with_submodlib(data, n, d, name, lam):
    rng = np.random.default_rng([n, d, len(data)])
    x = DATA[data](n, d, rng)
    kernel = x @ x.T if data in ("lattice", "magnitudes") else cosine_kernel(x)
    if name == "logdet" and data == "lattice":
        lam = 10 * lam  # integer similarities up to d: keep S + lambda I well conditioned
    for budget in sorted({1, min(5, n), n // 3 or 1, n - 1, n} - {0}):
        assert_same(kernel, budget, name, lam)


@pytest.mark.parametrize("name,lam", [("fl", None), ("gc", 0.4), ("gc", 1.0)])
@pytest.mark.parametrize("n", [5, 64, 300])
def test_agrees_on_an_asymmetric_kernel(n, name, lam):
    """Columns read through a strided view when the kernel is not its own transpose."""
    rng = np.random.default_rng(n)
    kernel = (gaussian(n, 16, rng) @ gaussian(n, 16, rng).T).astype(np.float32)
    assert not dense_greedy._is_symmetric(kernel)
    for budget in (1, n // 2, n - 1):
        assert_same(kernel, budget, name, lam)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.integers(2, 24).flatmap(
        lambda n: arrays(np.float32, (n, 3), elements=st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0]))
    ),
    which=st.sampled_from(range(len(OBJECTIVES))),
    frac=st.floats(0, 1),
)
def test_property_ties_and_tiny_grounds(x, which, frac):
    """Kernels of a few distinct values, zero rows included: every kind of tie the heap can meet."""
    name, lam = OBJECTIVES[which]
    if name == "logdet":
        lam = 4 * lam  # diagonal entries can be 0: keep log det finite
    kernel = x @ x.T
    n = kernel.shape[0]
    assert_same(kernel, max(1, round(frac * n)), name, lam)


@pytest.mark.parametrize("name,lam", OBJECTIVES)
def test_budget_n_last_gain(name, lam):
    """At budget n both append the one element left; its gain agrees to rounding, not to the bit."""
    kernel = cosine_kernel(gaussian(200, 8, np.random.default_rng(7)))
    ref_idx, ref_gain = reference(kernel, 200, name, lam)
    idx, gains = dense_greedy.lazy_greedy(kernel, 200, name, lam)
    assert idx.tolist() == ref_idx.tolist() and sorted(idx.tolist()) == list(range(200))
    np.testing.assert_allclose(gains[-1], ref_gain[-1], rtol=1e-5, atol=4e-5)


def test_reads_the_kernel_in_place():
    kernel = cosine_kernel(clustered(100, 16, np.random.default_rng(3)))
    before = kernel.copy()
    for name, lam in OBJECTIVES:
        dense_greedy.lazy_greedy(kernel, 50, name, lam)
    np.testing.assert_array_equal(kernel, before)


def test_backends_agree_through_maximize():
    emb = clustered(80, 12, np.random.default_rng(4))
    for name, lam in OBJECTIVES:
        objective = Objective.of(name, lam)
        a = maximize(emb, 30, objective, np.random.default_rng(0), backend="smart")
        b = maximize(emb, 30, objective, np.random.default_rng(0), backend="submodlib")
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_array_equal(a[1], b[1])
    assert GREEDY_BACKENDS == ("smart", "submodlib")


def test_zero_budget_single_element_and_errors():
    one = np.ones((1, 1), dtype=np.float32)
    idx, gains = dense_greedy.lazy_greedy(one, 1, "fl", None)
    assert idx.tolist() == [0] and gains.tolist() == [1.0]
    idx, gains = dense_greedy.lazy_greedy(one, 0, "gc", 0.4)
    assert idx.size == 0 and gains.size == 0
    with pytest.raises(ValueError, match="unknown function"):
        dense_greedy.lazy_greedy(one, 1, "random", None)
    with pytest.raises(ValueError, match="outside"):
        dense_greedy.lazy_greedy(one, 2, "fl", None)
    with pytest.raises(ValueError, match="square"):
        dense_greedy.lazy_greedy(np.ones((2, 3), dtype=np.float32), 1, "fl", None)
    with pytest.raises(ValueError, match="lambda"):
        dense_greedy.lazy_greedy(one, 1, "gc", None)
    with pytest.raises(ValueError, match="backend"):
        lazy_greedy(one, 1, Objective.of("fl"), backend="nope")


@pytest.mark.parametrize("seed", [11, 23])
def test_singular_log_determinant_matches_where_submodlib_ends(seed):
    """lambda 0 on a rank-deficient lattice kernel: -inf gains (log 0), in submodlib's order."""
    rng = np.random.default_rng(1000 + seed)
    n, d = int(rng.integers(4, 14)), int(rng.integers(1, 4))
    budget = int(rng.integers(d + 1, n))
    x = lattice(n, d, np.random.default_rng(seed))
    kernel = x @ x.T
    _, gains = dense_greedy.lazy_greedy(kernel, budget, "logdet", 0.0)
    assert np.isneginf(gains).any()
    assert_same(kernel, budget, "logdet", 0.0)


def test_singular_log_determinant_raises_instead_of_looping():
    """lambda 0 past the kernel's rank gives NaN gains, on which submodlib's loop never ends."""
    kernel = cosine_kernel(gaussian(12, 3, np.random.default_rng(0)))
    idx, _ = dense_greedy.lazy_greedy(kernel, 3, "logdet", 0.0)
    assert idx.size == 3
    with pytest.raises(ValueError, match="does not terminate"):
        dense_greedy.lazy_greedy(kernel, 6, "logdet", 0.0)


def test_greedy_backend_option_gives_the_same_rows(tiny_emb, tmp_path):
    """Through the CLI: submodlib and our engine pick the same rows; the library's name is recorded."""
    import json

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from smart_cli.artifacts import read_samples
    from smart_cli.cli import app

    runner = CliRunner()
    tasks = tmp_path / "t.json"
    args = ["select-tasks", tiny_emb, "-m", "5", "-n", "40", "--no-cache", "--out"]
    assert runner.invoke(app, [*args, str(tasks)]).exit_code == 0
    assert runner.invoke(app, [*args, str(tmp_path / "t2.json"), "--greedy-backend", "submodlib"]).exit_code == 0
    doc, doc2 = json.loads(tasks.read_text()), json.loads((tmp_path / "t2.json").read_text())
    assert [t["task"] for t in doc["tasks"]] == [t["task"] for t in doc2["tasks"]]
    assert "greedy_backend" not in doc and doc2["greedy_backend"] == "submodlib"
    outs = {}
    for backend in ("smart", "submodlib"):
        out = tmp_path / f"{backend}.parquet"
        r = runner.invoke(
            app, ["select-samples", tiny_emb, str(tasks), "--out", str(out), "--no-cache", "--greedy-backend", backend]
        )
        assert r.exit_code == 0, r.output
        outs[backend] = pq.read_table(out)
    assert outs["smart"].column("row").to_pylist() == outs["submodlib"].column("row").to_pylist()
    assert read_samples(tmp_path / "submodlib.parquet")[1]["greedy_backend"] == "submodlib"
    r = runner.invoke(
        app, ["select-samples", tiny_emb, str(tasks), "--out", str(tmp_path / "x"), "--greedy-backend", "x"]
    )
    assert r.exit_code == 2 and "unknown --greedy-backend 'x'" in r.output


def test_kernel_blas_gives_submodlibs_picks_on_numpys_product(tmp_path):
    """``--kernel blas``: every dense group's rows are submodlib's on the ``x @ x.T`` of its unit rows
    (what a user hands the library as ``sijs``), in order; recorded, and the CLI refuses a wrong name."""
    import json

    import helpers
    import submodlib.functions as fns
    from typer.testing import CliRunner

    from smart_cli.cli import app
    from smart_cli.select_samples import SampleConfig, plan, select_samples
    from smart_cli.select_tasks import TaskConfig, select_tasks
    from smart_cli.similarity import unit_rows
    from smart_cli.submodular import run_submodlib

    es = helpers.write_emb_dir(tmp_path / "emb", {"a": 300, "b": 220, "c": 90})
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=120))
    table = select_samples(es, doc, SampleConfig(max_dense_rows=10**9, kernel="blas", no_cache=True))
    meta = json.loads(table.schema.metadata[b"smart_cli"])
    assert meta["kernel"] == "blas"
    rows, tasks, templates = (table.column(c).to_pylist() for c in ("row", "task", "template_type"))
    checked = 0
    for g in plan(es, doc):
        n = len(g.positions)
        if not 0 < g.budget < n:
            continue
        x = unit_rows(np.asarray(es.embeddings[g.positions], dtype=np.float32))
        fn = fns.facilityLocation.FacilityLocationFunction(n=n, mode="dense", sijs=x @ x.T, separate_rep=False)
        picks, _ = run_submodlib(fn, n, g.budget)
        task, template = es.task_names[g.task_code], es.template_names[g.template_code]
        got = [r for r, t, tt in zip(rows, tasks, templates) if t == task and tt == template]
        assert got == es.rows[g.positions[picks]].tolist(), (task, template)
        checked += 1
    assert checked >= 3
    default = json.loads(select_samples(es, doc, SampleConfig(no_cache=True)).schema.metadata[b"smart_cli"])
    assert "kernel" not in default and default["fingerprint"] != meta["fingerprint"]
    r = CliRunner().invoke(
        app,
        [
            "select-samples",
            str(tmp_path / "emb"),
            str(tmp_path / "t.json"),
            "--out",
            str(tmp_path / "x"),
            "--kernel",
            "x",
        ],
    )
    assert r.exit_code == 2 and "unknown --kernel 'x'" in r.output
