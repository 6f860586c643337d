"""Machine-independent similarities: each entry is one fixed float64 sum, whatever BLAS does.

The subprocess tests run selection under other OpenBLAS kernels and thread counts and other
numpy SIMD targets (those this CPU can run) and compare the bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_emb_dir

from smart_cli import similarity
from smart_cli.submodular import cosine_kernel


def fixed_sum(a: np.ndarray, b: np.ndarray) -> np.float32:
    """The definition: products in float64, summed from the first dimension on, rounded once."""
    products = a.astype(np.float64) * b.astype(np.float64)
    return np.float32(np.cumsum(products)[-1])  # cumsum adds in order


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_entries_are_the_fixed_sum(dtype: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 37)).astype(dtype)
    y = rng.standard_normal((45, 37)).astype(dtype)
    got = similarity.cross(x, y)
    assert got.dtype == np.float32 and got.shape == (70, 45)
    expect = np.array([[fixed_sum(a, b) for b in y] for a in x], dtype=np.float32)
    assert np.array_equal(got, expect)
    k = similarity.gram(x)
    assert np.array_equal(k, np.array([[fixed_sum(a, b) for b in x] for a in x], dtype=np.float32))
    assert np.array_equal(similarity.rowwise(x, x), np.diag(k))


def test_a_block_a_column_and_the_whole_product_agree() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 24)).astype(np.float32)
    k = similarity.gram(x)
    assert np.array_equal(k, k.T)
    right = similarity.Right.of(x)
    assert np.array_equal(similarity.cross(x[40:90], right), k[40:90])
    assert np.array_equal(similarity.cross(x[7:8], x)[0], k[:, 7])
    assert np.array_equal(similarity.cross(x[40:90], right, one_thread=True), k[40:90])
    columns = similarity.Columns.of(x)  # a column at a time, summed directly: the same bits
    assert np.array_equal(columns.against(x[7]), k[:, 7])
    assert np.array_equal(columns.against(x[299]), k[299])


@pytest.mark.parametrize("tile", [7, 64])
def test_tiles_of_any_size_give_the_same_bits(tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Products run in square tiles (threads, transposed copies, edge tiles): the bits are the
    fixed sum's whatever the tiling, boundary entries included."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((150, 19)).astype(np.float32)
    x[[3, 100]] = 0.0
    x[[3, 100], :3] = [2.0**-60, 1.0, -1.0]  # against the rows below: 0 in the fixed order only
    x[[50, 140]] = 0.0
    x[[50, 140], :3] = 1.0
    expect = np.array([[fixed_sum(a, b) for b in x] for a in x], dtype=np.float32)
    assert expect[3, 140] == 0 and expect[140, 100] == 0
    whole = similarity.gram(x)  # one tile
    monkeypatch.setattr(similarity, "TILE", tile)
    monkeypatch.setattr(similarity, "_POPULATE_BYTES", 0)  # the result on pages mapped up front
    assert np.array_equal(whole, expect)
    mapped = similarity.gram(x)
    assert np.array_equal(mapped, expect) and mapped.flags.writeable and mapped.flags.c_contiguous
    assert similarity.gram(x[:0]).shape == (0, 0)
    assert np.array_equal(similarity.gram(x, device="cpu"), expect)
    assert np.array_equal(similarity.cross(x[5:120], x), expect[5:120])
    assert np.array_equal(similarity.cross(x[5:120], similarity.Right.of(x), one_thread=True), expect[5:120])


def test_entries_next_to_a_rounding_boundary_follow_the_fixed_order() -> None:
    # The fixed order gives (2^-60 + 1) - 1 = 0; pairing 1 with -1 first gives 2^-60 instead.
    a = np.array([[2.0**-60, 1.0, -1.0]], dtype=np.float32)
    b = np.ones((1, 3), dtype=np.float32)
    assert similarity.cross(a, b)[0, 0] == np.float32(0.0)
    assert np.float32(float(a[0, 1] + a[0, 2]) + 2.0**-60) != 0  # the other order is not zero
    # Exactly half-way between two float32 numbers: ties to even, as one rounding of the sum does.
    c = np.array([[1.0, 2.0**-24]], dtype=np.float32)
    assert similarity.cross(c, np.ones((1, 2), dtype=np.float32))[0, 0] == np.float32(1.0)
    zero = np.zeros((2, 3), dtype=np.float32)
    assert np.array_equal(similarity.gram(zero), np.zeros((2, 2), dtype=np.float32))


def test_the_kernel_of_unit_rows_keeps_their_bits_and_normalises_others() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 8)).astype(np.float32)
    unit = similarity.unit_rows(x)
    assert np.allclose(similarity.norms(unit), 1.0, atol=1e-6)
    assert np.array_equal(similarity.unit_rows(unit), unit)
    assert np.array_equal(cosine_kernel(x), similarity.gram(unit))
    expect = [np.sqrt(np.cumsum(r.astype(np.float64) ** 2)[-1]) for r in x]
    assert np.array_equal(similarity.norms(x), expect)


def test_shapes_that_do_not_multiply_are_refused() -> None:
    with pytest.raises(ValueError, match="do not multiply"):
        similarity.cross(np.ones((2, 3)), np.ones((2, 4)))


SCRIPT = """
import hashlib, io, json, sys
import numpy as np
from smart_cli import artifacts
from smart_cli.select_tasks import TaskConfig, select_tasks
from smart_cli.select_samples import SampleConfig, select_samples
from smart_cli.sparse.knn import knn_graph
from smart_cli.submodular import cosine_kernel

es = artifacts.open_embeddings(sys.argv[1])
out = {}
for function in ("gc", "fl", "logdet"):
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=120, function=function))
    out["tasks-" + function] = json.dumps(doc, sort_keys=True)
doc = select_tasks(es, TaskConfig(num_tasks=4, budget=120))
for name, cfg in {"dense": SampleConfig(), "sparse": SampleConfig(max_dense_rows=0, knn=8),
                  "gc": SampleConfig(function="gc"), "logdet": SampleConfig(function="logdet")}.items():
    out["samples-" + name] = select_samples(es, doc, cfg).to_pandas().to_json()
emb = np.asarray(es.embeddings)
out["kernel"] = cosine_kernel(emb).tobytes().hex()  # the picks' input, bit for bit
for name, limit in {"exact": 10**9, "ivf": 0}.items():
    ids, sims = knn_graph(emb, 8, exact_max_rows=limit, seed=3)
    out["knn-" + name] = ids.tobytes().hex() + sims.tobytes().hex()
print(json.dumps({k: hashlib.sha256(v.encode()).hexdigest() for k, v in out.items()}))
"""


def _variants() -> dict[str, dict[str, str]]:
    """BLAS and numpy settings this CPU can run: AVX (Sandybridge) and AVX2 (Haswell) kernels
    everywhere on x86-64 machines of today, SkylakeX where the CPU has AVX-512."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    variants = {
        "default": {},
        "one BLAS thread": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
        "Sandybridge kernels": {"OPENBLAS_CORETYPE": "Sandybridge"},
        "Haswell kernels": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2"},
    }
    if " avx512f" in flags:
        variants["SkylakeX kernels"] = {"OPENBLAS_CORETYPE": "SkylakeX"}
    import numpy._core._multiarray_umath as umath

    dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    if dispatched:
        variants["numpy without its SIMD dispatch"] = {"NPY_DISABLE_CPU_FEATURES": ",".join(dispatched)}
    return variants


@pytest.mark.skipif(sys.platform != "linux", reason="OpenBLAS core types are set through the environment on Linux")
def test_selection_gives_the_same_bytes_under_any_blas_setting(tmp_path: Path) -> None:
    write_emb_dir(tmp_path / "emb", {"alpha": 150, "beta": 90, "gamma": 60, "delta": 40, "eps": 30, "zeta": 25})
    results = {}
    for name, env in _variants().items():
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / "emb")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{name}: {run.stderr[-2000:]}"
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
    first = next(iter(results.values()))
    assert len(first) == 10
    for name, hashes in results.items():
        assert hashes == first, f"{name} differs: {[k for k in first if hashes[k] != first[k]]}"
    assert hashlib.sha256(b"").hexdigest() not in first.values()


def test_products_on_a_torch_device_give_the_same_bits() -> None:
    """The GPU path (``--device cuda``) runs the float64 products in torch; here through CPU
    tensors, the same code path (no GPU on the machines the tests run on)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((900, 40)).astype(np.float32)
    assert np.array_equal(similarity.gram(x, device="cpu"), similarity.gram(x))
    assert np.array_equal(similarity.cross(x[:70], x, device="cpu"), similarity.gram(x)[:70])


def test_select_samples_on_a_torch_device_gives_the_same_bytes(tmp_path: Path) -> None:
    from smart_cli.select_samples import SampleConfig, select_samples
    from smart_cli.select_tasks import TaskConfig, select_tasks

    es = write_emb_dir(tmp_path / "emb", {"alpha": 150, "beta": 90, "gamma": 60})
    doc = select_tasks(es, TaskConfig(num_tasks=3, budget=100))
    plain = select_samples(es, doc, SampleConfig(no_cache=True))
    assert select_samples(es, doc, SampleConfig(no_cache=True, device="cpu")).equals(plain)


@pytest.mark.parametrize(
    ("device", "message"), [("tpu9", "unknown --device 'tpu9'"), ("cuda", "--device cuda: no CUDA GPU is visible here")]
)
def test_a_device_torch_cannot_use_is_one_line(device: str, message: str, tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from smart_cli.cli import app

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda is valid here")
    write_emb_dir(tmp_path / "emb", {"alpha": 30, "beta": 20})
    tasks = tmp_path / "tasks.json"
    runner = CliRunner()
    made = runner.invoke(
        app, ["select-tasks", str(tmp_path / "emb"), "--num-tasks", "2", "--budget", "10", "--out", str(tasks)]
    )
    assert made.exit_code == 0, made.output
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["select-samples", str(tmp_path / "emb"), str(tasks), "--out", str(out), "--device", device])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not out.exists()
