"""Scale paths of select-samples (dense vs kNN graph, parallel groups), float16 and the static
backend end to end. Tiny data built in code; real faiss, numba and submodlib."""

from __future__ import annotations

import json
from pathlib import Path

import helpers
import numpy as np
import pytest
from helpers import clustered
from typer.testing import CliRunner

from smart_cli import artifacts, defaults
from smart_cli.artifacts import read_samples, write_samples
from smart_cli.cli import app
from smart_cli.dense_limit import default_max_dense_rows, kernel_rows
from smart_cli.errors import UsageError
from smart_cli.select_samples import SampleConfig, select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks
from smart_cli.sparse import facility_location_value

# task -> rows; two templates each, so every task gives two groups of different sizes.
TASKS = {"alpha": 700, "beta": 420, "gamma": 160, "delta": 60}


def write_emb_dir(path, dtype: str = "float32", d: int = 48):
    return helpers.write_emb_dir(path, TASKS, dtype, d)


@pytest.fixture(scope="module", params=["float32", "float16"])
def synthetic(request, tmp_path_factory):
    es = write_emb_dir(tmp_path_factory.mktemp("scale") / "emb", request.param)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=300))
    return es, doc


@pytest.mark.parametrize(
    ("function", "available", "expected", "backend"),
    [
        ("fl", 16 << 30, 14_000, "submodlib"),  # capped at 2 GiB: sqrt(2 GiB / 10 B)
        ("gc", 16 << 30, 5_000, "submodlib"),  # tolist: 72 B per entry
        ("logdet", 16 << 30, 5_000, "submodlib"),
        ("fl", 2 << 30, 10_000, "submodlib"),  # half of 2 GiB
        ("fl", 24 << 30, 51_000, "smart"),  # capped at 10 GiB: sqrt(10 GiB / 4 B), the kernel read in place
        ("gc", 24 << 30, 51_000, "smart"),
        ("logdet", 24 << 30, 29_000, "smart"),  # + the b x n float64 state
        ("fl", 16 << 30, 46_000, "smart"),  # below the cap: half of 16 GiB holds the kernel
        ("fl", 19 << 30, 50_000, "smart"),  # a 24 GB machine with 19 GiB free: 50,000 rows exact
        ("logdet", 16 << 30, 26_000, "smart"),
        ("fl", 2 << 30, 16_000, "smart"),
        ("fl", 0, 0, "smart"),
        ("random", 16 << 30, 0, "smart"),
    ],
)
def test_default_max_dense_rows(function, available, expected, backend):
    assert default_max_dense_rows(function, available, backend) == expected
    # a kernel is built wherever it fits half the memory: the cap bounds the default's time only
    assert kernel_rows(function, available, backend) >= expected


def test_a_kernel_past_the_default_limit_is_built_where_it_fits():
    assert kernel_rows("fl", 24 << 30) == 56_000  # sqrt(12 GiB / 4 B)
    assert default_max_dense_rows("fl", 24 << 30) == 51_000


def test_the_dense_limit_does_not_shrink_with_workers():
    # The pool starts a group only where its estimate fits beside the running ones, so two
    # workers keep 50,000-row groups exact where one does (a 24 GB machine, 19 GiB free).
    one, two = (SampleConfig(max_memory=19 << 30, workers=w).dense_limit("fl") for w in (1, 2))
    assert one == two == 50_000


def _groups(table, es, doc):
    return json.loads(table.schema.metadata[b"smart_cli"])


def test_default_keeps_the_dense_reference_path(synthetic):
    es, doc = synthetic
    ref = select_samples(es, doc, SampleConfig(max_dense_rows=10**9))
    auto = select_samples(es, doc, SampleConfig())
    assert auto.equals(ref)
    meta = _groups(auto, es, doc)
    assert meta["groups"]["sparse"] == 0 and meta["groups"]["dense"] > 0
    # the reference path's fingerprint does not depend on the sparse path's options
    assert meta["fingerprint"] == _groups(select_samples(es, doc, SampleConfig(knn=5)), es, doc)["fingerprint"]


@pytest.mark.parametrize("function", ["fl", "gc"])
def test_max_dense_rows_routes_groups(synthetic, function):
    es, doc = synthetic
    sizes = sorted(len(g) for g in _plan_positions(es, doc))
    limit = sizes[len(sizes) // 2]
    table = select_samples(es, doc, SampleConfig(function=function, max_dense_rows=limit))
    meta = _groups(table, es, doc)
    assert meta["groups"]["dense"] > 0 and meta["groups"]["sparse"] > 0
    assert meta["max_dense_rows"] == limit and meta["knn"] == defaults.KNN and meta["optimizer"] == "lazy"
    assert table.num_rows == doc["budget"] and len(set(table.column("row").to_pylist())) == table.num_rows
    forced = _groups(select_samples(es, doc, SampleConfig(function=function, max_dense_rows=0)), es, doc)
    assert (
        forced["groups"]["dense"] == 0
        and forced["groups"]["sparse"] == meta["groups"]["sparse"] + meta["groups"]["dense"]
    )
    assert forced["fingerprint"] != meta["fingerprint"]


def _plan_positions(es, doc):
    from smart_cli.select_samples import plan

    return [g.positions for g in plan(es, doc) if 0 < g.budget < len(g.positions)]


def test_sparse_facility_location_close_to_dense(synthetic):
    """Through select_samples: per group, the kNN path's FL value >= 0.98 of submodlib's dense one."""
    es, doc = synthetic
    dense = select_samples(es, doc, SampleConfig(max_dense_rows=10**9))
    sparse = select_samples(es, doc, SampleConfig(max_dense_rows=0, knn=8))
    row_of = {int(r): i for i, r in enumerate(es.rows)}
    emb = np.asarray(es.embeddings, dtype=np.float32)
    for positions in _plan_positions(es, doc):
        members = set(positions.tolist())
        values = []
        for table in (dense, sparse):
            picked = [row_of[r] for r in table.column("row").to_pylist() if row_of[r] in members]
            local = np.searchsorted(positions, picked)
            values.append(facility_location_value(emb[positions], local))
        assert values[1] >= 0.98 * values[0], values


@pytest.mark.parametrize("optimizer", ["lazy", "stochastic"])
def test_sparse_path_is_deterministic(synthetic, optimizer):
    es, doc = synthetic
    cfg = SampleConfig(max_dense_rows=0, optimizer=optimizer)
    assert select_samples(es, doc, cfg).equals(select_samples(es, doc, cfg))


def test_workers_give_the_same_bytes(synthetic, tmp_path):
    es, doc = synthetic
    limit = sorted(len(p) for p in _plan_positions(es, doc))[1]  # some groups dense, some sparse
    for workers in (1, 2):
        cfg = SampleConfig(max_dense_rows=limit, workers=workers)
        write_samples(select_samples(es, doc, cfg), tmp_path / f"w{workers}.parquet")
    assert (tmp_path / "w1.parquet").read_bytes() == (tmp_path / "w2.parquet").read_bytes()


def test_logdet_refuses_a_group_too_large(synthetic):
    es, doc = synthetic
    with pytest.raises(UsageError, match="logdet has no sparse path.*largest: task 'alpha'"):
        select_samples(es, doc, SampleConfig(function="logdet", max_dense_rows=100))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-dense-rows", "-1"], "--max-dense-rows must be >= 0"),
        (["--knn", "0"], "--knn must be at least 1"),
        (["--optimizer", "greedy"], "unknown --optimizer 'greedy'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--max-memory", "12Q"], "--max-memory: not a size: '12Q'"),
        (["--max-memory", "100"], "--max-memory: a memory budget of '100' is too small"),
    ],
)
def test_bad_sparse_options(args, message, tiny_mixture, tmp_path):
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app, ["select-samples", tiny_mixture["emb"], str(tiny_mixture["tasks"]), "--out", out, *args]
    )
    assert result.exit_code == 2 and message in result.output and not out.exists()


def test_precision_applies_to_the_transformer_only(tiny_dataset, tmp_path):
    out = tmp_path / "emb"
    result = CliRunner().invoke(
        app, ["embed", tiny_dataset, "--out", out, "--backend", "static", "--precision", "bf16"]
    )
    assert result.exit_code == 2 and "--precision bf16 applies to --backend transformer only" in result.output


def test_static_float16_end_to_end_through_the_cli(
    tiny_dataset, tiny_emb, static_encoder, static_cache, tmp_path, monkeypatch
):
    """embed --backend static --dtype float16, select with the sparse path in two workers, export, verify."""
    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    emb, tasks, samples, mix = tmp_path / "emb", tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    steps = [
        ["embed", tiny_dataset, "--out", emb, "--backend", "static", "--dtype", "float16", "--shard-rows", "16"],
        ["select-tasks", emb, "-m", "6", "-n", "40", "--out", tasks],
        ["select-samples", emb, tasks, "--out", samples, "--max-dense-rows", "0", "--workers", "2"],
        ["export", samples, "--out", mix],
        ["verify", mix],
    ]
    for step in steps:
        result = runner.invoke(app, [str(a) for a in step])
        assert result.exit_code == 0, (step[0], result.output)
    meta = json.loads((emb / "meta.json").read_text())
    transformer = json.loads((Path(tiny_emb) / "meta.json").read_text())
    assert meta["encoder"].startswith("static:") and meta["backend"] == "static" and meta["dtype"] == "float16"
    # Rows carried into the transformer's space by default (--row-map tokens): its dimension.
    assert meta["dim"] == transformer["dim"] != static_encoder.dim and meta["fingerprint"] != transformer["fingerprint"]
    fitted = sum(min(size, meta["row_map"]["sample_rows"]) for size in helpers.SIZES.values())
    assert meta["row_map"]["fitted_rows"] == fitted and meta["encoder"].endswith("+tokens")
    assert np.load(emb / "embeddings.npy", mmap_mode="r").dtype == np.float16
    _, smeta = read_samples(samples)
    assert smeta["groups"]["dense"] == 0 and smeta["embedding"]["encoder"].startswith("static:")
    assert len(mix.read_text().splitlines()) == 40


def test_static_word_cache_overflow(static_encoder, monkeypatch):
    """A full word cache is emptied and refilled with every word of the call, never read half-empty."""
    from smart_cli.backends import static

    texts = [f"word{i} science answer {i % 7}" for i in range(50)]
    expected = static_encoder.encode(texts)
    monkeypatch.setattr(static, "_WORD_CACHE_MAX", 8)
    static_encoder._words.clear()
    static_encoder.encode(texts[:5])
    np.testing.assert_array_equal(static_encoder.encode(texts), expected)


def test_release_pages_keeps_the_data(tmp_path):
    """Written and flushed pages handed back to the page cache are still in the file and the map."""
    matrix = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=np.float16, shape=(4096, 64))
    matrix[:] = np.arange(64, dtype=np.float16)
    matrix.flush()
    artifacts.release_pages(matrix)
    assert float(matrix[4095, 63]) == 63.0
    reader = np.load(tmp_path / "m.npy", mmap_mode="r")
    first = np.asarray(reader[[0, 4095]])
    artifacts.release_pages(reader)
    assert first.tolist() == np.asarray(reader[[0, 4095]]).tolist()
    artifacts.release_pages(np.zeros(3))  # not a memory map: nothing to do


def test_workers_leave_dense_and_sparse_groups_to_the_workers(synthetic, monkeypatch):
    """The parent process only takes whole and empty groups; the rest run once, in the workers."""
    from smart_cli import select_samples as module

    es, doc = synthetic
    real, seen = module.pick, []

    def spy(es_, group, objective, seed, cfg=None, max_dense_rows=None):
        seen.append(module.route(group, objective, max_dense_rows))
        return real(es_, group, objective, seed, cfg, max_dense_rows)

    monkeypatch.setattr(module, "pick", spy)
    select_samples(es, doc, SampleConfig(max_dense_rows=200, workers=2))
    assert seen and set(seen) <= {"whole", "empty"}


def test_group_seeds_fit_a_c_int():
    """faiss takes the k-means seed of the approximate kNN index (groups > 50,000 rows) as a C int."""
    from smart_cli.select_samples import Group, group_seed
    from smart_cli.sparse import knn_graph

    seeds = [group_seed(s, Group(t, j, np.empty(0, np.int64), 0)) for s in (0, 23) for t in range(50) for j in range(4)]
    assert all(0 <= x < 2**31 for x in seeds) and len(set(seeds)) == len(seeds)
    emb = clustered(400, 16, np.random.default_rng(0)).astype(np.float32)
    knn_graph(emb, 8, exact_max_rows=100, seed=max(seeds))  # the approximate path accepts the largest
