"""The order cache in EMB_DIR/cache/, grids in one recipe, and stages that are up to date.

Synthetic EMB_DIRs (``helpers.write_emb_dir``) for selection, the tiny dataset embedded with the
packaged model where a mixture is exported; real submodlib, faiss and numba throughout.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import helpers
import numpy as np
import pytest
from typer.testing import CliRunner

from smart_cli import artifacts, order_cache
from smart_cli.cli import app
from smart_cli.config import load_recipe
from smart_cli.errors import UsageError
from smart_cli.select_samples import SampleConfig, select_samples
from smart_cli.select_tasks import TaskConfig, select_tasks

TASKS = {"alpha": 700, "beta": 420, "gamma": 160, "delta": 60}
#: Twelve small tasks for stage 1: enough for several M', the last of them all tasks.
MANY = {f"t{i:02d}": 20 + 7 * i for i in range(12)}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def samples_bytes(table, path: Path) -> bytes:
    artifacts.write_samples(table, path)
    return path.read_bytes()


def entries(emb: Path, kind: str = "samples") -> list[Path]:
    return sorted((emb / "cache" / kind).glob("*.json"))


def record(path: Path) -> dict:
    return json.loads(path.read_text())


def rewrite(path: Path, array: np.ndarray, **changes) -> None:
    """Replace an entry's array and keep its record consistent (sha256, length) unless ``changes`` say otherwise."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    path.with_suffix(".npy").write_bytes(buffer.getvalue())
    rec = record(path) | {"sha256": hashlib.sha256(buffer.getvalue()).hexdigest(), "length": len(array)}
    path.write_text(json.dumps(rec | changes))


@pytest.fixture
def emb(tmp_path):
    helpers.write_emb_dir(tmp_path / "emb", TASKS)
    return tmp_path / "emb"


# --------------------------------------------------------------------------- select-samples


@pytest.mark.parametrize("max_dense", [10**9, 0, 300], ids=["dense", "sparse", "mixed"])
def test_cached_samples_are_the_uncached_bytes(emb, tmp_path, max_dense):
    """Fill (300), reuse a prefix (120), extend (500), reuse again (300): each equals a fresh run."""
    es = artifacts.open_embeddings(emb)
    lengths = {}
    for step, budget in enumerate((300, 120, 500, 300)):
        doc = select_tasks(es, TaskConfig(num_tasks=4, budget=budget))
        before = {p: p.stat().st_mtime_ns for p in entries(emb)}
        cached = samples_bytes(select_samples(es, doc, SampleConfig(max_dense_rows=max_dense)), tmp_path / "a.parquet")
        plain = SampleConfig(max_dense_rows=max_dense, no_cache=True)
        assert cached == samples_bytes(select_samples(es, doc, plain), tmp_path / "b.parquet"), budget
        rewritten = [p for p in before if p.stat().st_mtime_ns != before[p]]
        if step in (1, 3):  # budgets inside what the cache holds: lookups, nothing rewritten
            assert rewritten == [], budget  # (at 120, groups taken whole at 300 are new entries)
        if step == 3:
            assert sorted(before) == entries(emb)
        if step == 2:  # larger budgets: those groups computed again, to the longer prefix
            assert rewritten
        lengths[step] = {p: record(p)["length"] for p in entries(emb)}
    meta = json.loads(select_samples(es, doc, SampleConfig(max_dense_rows=max_dense)).schema.metadata[b"smart_cli"])
    heavy = meta["groups"]["dense"] + meta["groups"]["sparse"]
    assert len(lengths[2]) >= heavy > 0  # one entry per group selected in, longest order kept
    assert sum(lengths[2].values()) > sum(lengths[1].values())  # extended to the larger budgets
    assert not [k for k in meta if "cache" in k]  # the samples file does not say whether the cache was used


def test_a_valid_entry_is_used(emb, tmp_path):
    """A well-formed entry is a lookup: a reversed order in the cache shows up in the output."""
    es = artifacts.open_embeddings(emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=300))
    fresh = select_samples(es, doc, SampleConfig(max_dense_rows=10**9))
    for path in entries(emb):
        array = np.load(path.with_suffix(".npy"), allow_pickle=False)
        rewrite(path, array[::-1].copy())
    used = select_samples(es, doc, SampleConfig(max_dense_rows=10**9))
    assert used.column("row").to_pylist() != fresh.column("row").to_pylist()


def test_the_memory_budget_does_not_key_an_order(emb, tmp_path):
    """A group's path is in its key; the budget only decides kernel or not (the same picks), so a
    run with another --max-memory (and the same pinned limit) is a lookup of the same entries."""
    es = artifacts.open_embeddings(emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=300))
    first = samples_bytes(select_samples(es, doc, SampleConfig(max_dense_rows=10**9)), tmp_path / "a.parquet")
    before = {p: p.stat().st_mtime_ns for p in entries(emb)}
    assert before
    for budget in ("1M", "64G"):  # 1 MiB: no group's kernel fits, every one would run kernel-free
        again = SampleConfig(max_dense_rows=10**9, max_memory=budget)
        assert samples_bytes(select_samples(es, doc, again), tmp_path / "b.parquet") == first
    assert {p: p.stat().st_mtime_ns for p in entries(emb)} == before  # looked up, nothing written


def _damage(path: Path, how: str) -> None:
    array = np.load(path.with_suffix(".npy"), allow_pickle=False)
    if how == "truncated":
        raw = path.with_suffix(".npy").read_bytes()
        path.with_suffix(".npy").write_bytes(raw[: len(raw) // 2])
    elif how == "dtype":
        rewrite(path, np.stack([array["index"], array["gain"]], axis=1).astype(np.float32))
    elif how == "key":
        rec = record(path)
        path.write_text(json.dumps(rec | {"key": rec["key"] | {"rows": rec["key"]["rows"] + 1}}))
    elif how == "range":
        bad = array.copy()
        bad["index"] += 10_000
        rewrite(path, bad)
    elif how == "duplicate":
        bad = array.copy()
        bad["index"][:] = bad["index"][0]
        rewrite(path, bad)
    elif how == "length":
        rewrite(path, array, length=len(array) + 5)
    elif how == "record":
        path.write_text("{not json")


@pytest.mark.parametrize("how", ["truncated", "dtype", "key", "range", "duplicate", "length", "record"])
def test_a_damaged_entry_is_ignored_and_recomputed(emb, tmp_path, how):
    es = artifacts.open_embeddings(emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=300))
    cfg = SampleConfig(max_dense_rows=300)  # dense and sparse groups
    fresh = samples_bytes(select_samples(es, doc, SampleConfig(max_dense_rows=300, no_cache=True)), tmp_path / "f")
    select_samples(es, doc, cfg)
    keys = {p: record(p)["key"] for p in entries(emb)}
    for path in keys:
        _damage(path, how)
    assert samples_bytes(select_samples(es, doc, cfg), tmp_path / "again") == fresh
    cache = order_cache.OrderCache(emb, "samples")
    assert all(cache.get(key, 1) is not None for key in keys.values())  # recomputed and written again


def test_random_and_stochastic_groups_are_not_cached(emb):
    es = artifacts.open_embeddings(emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=300))
    select_samples(es, doc, SampleConfig(function="random"))
    select_samples(es, doc, SampleConfig(max_dense_rows=0, optimizer="stochastic"))
    assert entries(emb) == []
    select_samples(es, doc, SampleConfig(max_dense_rows=0))
    assert entries(emb) and all(record(p)["key"]["optimizer"] == "lazy" for p in entries(emb))


def test_no_cache_writes_nothing_and_cli_info_and_clear(emb, tmp_path):
    tasks, samples = tmp_path / "t.json", tmp_path / "s.parquet"
    r = invoke("select-tasks", emb, "-m", 4, "-n", 300, "--out", tasks, "--no-cache")
    assert r.exit_code == 0, r.output
    r = invoke("select-samples", emb, tasks, "--out", samples, "--max-dense-rows", 300, "--no-cache")
    assert r.exit_code == 0, r.output
    assert not (emb / "cache").exists()
    uncached = samples.read_bytes()
    samples.unlink()
    r = invoke("select-samples", emb, tasks, "--out", samples, "--max-dense-rows", 300)
    assert r.exit_code == 0 and samples.read_bytes() == uncached
    r = invoke("select-tasks", emb, "-m", 2, "-n", 300, "--out", tmp_path / "t2.json")
    assert r.exit_code == 0, r.output
    r = invoke("--json", "cache", "info", emb)
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout.strip().splitlines()[-1])
    on_disk = sum(p.stat().st_size for p in (emb / "cache").rglob("*") if p.is_file())
    assert info["command"] == "cache info" and info["bytes"] == on_disk > 0
    assert info["kinds"]["tasks"]["gc"]["entries"] == 1 and info["kinds"]["samples"]["fl"]["entries"] >= 6
    assert info["entries"] == len(entries(emb)) + len(entries(emb, "tasks"))
    r = invoke("--json", "cache", "clear", emb)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["bytes"] == on_disk
    assert not (emb / "cache").exists()
    r = invoke("--json", "cache", "info", emb)
    assert json.loads(r.stdout.strip().splitlines()[-1])["entries"] == 0
    r = invoke("cache", "info", tmp_path)
    assert r.exit_code == 1 and "not a folder written by smart-cli embed" in r.output


# --------------------------------------------------------------------------- stage 1


@pytest.mark.parametrize("function", ["gc", "fl", "logdet"])
def test_task_prefixes_equal_direct_runs(tmp_path, function):
    es = helpers.write_emb_dir(tmp_path / "emb", MANY)
    n = len(MANY)
    select_tasks(es, TaskConfig(num_tasks=3, budget=40, function=function))  # fills the full order
    (entry,) = entries(tmp_path / "emb", "tasks")
    assert record(entry)["length"] == n and record(entry)["key"]["function"] == function
    for m in (1, 2, 5, n - 1, n):
        budget = 20 * m
        cached = select_tasks(es, TaskConfig(num_tasks=m, budget=budget, function=function))
        direct = select_tasks(es, TaskConfig(num_tasks=m, budget=budget, function=function, no_cache=True))
        assert artifacts.canonical_json(cached) == artifacts.canonical_json(direct), m
        assert len(cached["tasks"]) == m
    # a valid entry is used: a reordered full order changes the tasks chosen
    array = np.load(entry.with_suffix(".npy"), allow_pickle=False)
    rewrite(entry, array[::-1].copy())
    used = select_tasks(es, TaskConfig(num_tasks=2, budget=40, function=function))
    assert [t["task"] for t in used["tasks"]] == [es.task_names[i] for i in array["index"][::-1][:2]]


def test_random_tasks_are_not_cached(tmp_path):
    es = helpers.write_emb_dir(tmp_path / "emb", MANY)
    select_tasks(es, TaskConfig(num_tasks=3, budget=40, function="random"))
    assert not (tmp_path / "emb" / "cache").exists()


# --------------------------------------------------------------------------- grids


def _grid_recipe(tmp_path, dataset, emb, out: Path, extra: str = "") -> Path:
    shutil.copytree(emb, out / "embeddings")
    recipe = tmp_path / f"{out.name}.yaml"
    recipe.write_text(
        f"dataset: {dataset}\nout: {out}\nembed: {{shard_rows: 32}}\n"
        f"select_tasks: {{num_tasks: [3, 8], budget: [20, 30]}}\nselect_samples: {{max_dense_rows: 6{extra}}}\n"
    )
    return recipe


def test_grid_recipe_equals_the_four_commands_one_by_one(tiny_dataset, tiny_emb, tmp_path):
    grid = tmp_path / "grid"
    recipe = _grid_recipe(tmp_path, tiny_dataset, tiny_emb, grid)
    r = invoke("--json", "run", recipe)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert [(m["num_tasks"], m["budget"]) for m in summary["mixtures"]] == [(3, 20), (3, 30), (8, 20), (8, 30)]
    assert "4 mixtures" in r.output  # the summary table (stderr)
    one = tmp_path / "one"
    shutil.copytree(tiny_emb, one / "embeddings", ignore=shutil.ignore_patterns("cache"))  # other tests fill it
    files = ("tasks.json", "samples.parquet", "mixture.jsonl", "mixture.manifest.json")
    for m, n in ((3, 20), (3, 30), (8, 20), (8, 30)):
        d, e = one / f"m{m}-n{n}", one / "embeddings"
        d.mkdir()
        assert invoke("select-tasks", e, "-m", m, "-n", n, "--out", d / files[0], "--no-cache").exit_code == 0
        cmd = ["select-samples", e, d / files[0], "--out", d / files[1], "--max-dense-rows", 6, "--no-cache"]
        assert invoke(*cmd).exit_code == 0
        assert invoke("export", d / files[1], "--out", d / files[2]).exit_code == 0
        for name in files:
            assert (grid / f"m{m}-n{n}" / name).read_bytes() == (d / name).read_bytes(), (m, n, name)
        mixture = next(x for x in summary["mixtures"] if (x["num_tasks"], x["budget"]) == (m, n))
        assert mixture["path"] == str(grid / f"m{m}-n{n}" / "mixture.jsonl") and mixture["lines"] == n
    assert not (one / "embeddings" / "cache").exists() and (grid / "embeddings" / "cache" / "samples").is_dir()


def test_grid_recipes_are_checked():
    from smart_cli.config import _grid

    values, grid = _grid({"num_tasks": 4, "budget": [10, 20]})
    assert values == {"num_tasks": 4, "budget": 10} and grid == [(4, 10), (4, 20)]
    assert _grid({"budget": [10]}) == ({"budget": 10}, [(None, 10)])
    assert _grid({"num_tasks": 4, "budget": 10}) == ({"num_tasks": 4, "budget": 10}, None)
    for bad, message in (([], "empty list"), ([8, 8], "twice"), (["8"], "whole number")):
        with pytest.raises(UsageError, match=message):
            _grid({"num_tasks": bad, "budget": 10})


# --------------------------------------------------------------------------- up to date


def test_up_to_date_stages_keep_their_files(tiny_emb, tmp_path):
    emb = tmp_path / "emb"
    shutil.copytree(tiny_emb, emb)
    tasks, samples, mix = tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    commands = {
        tasks: ["select-tasks", emb, "-m", 4, "-n", 30, "--out", tasks],
        samples: ["select-samples", emb, tasks, "--out", samples, "--max-dense-rows", 6],
        mix: ["export", samples, "--out", mix],
    }
    for args in commands.values():
        assert invoke(*args).exit_code == 0
    manifest = tmp_path / "m.manifest.json"
    stamps = {p: p.stat().st_mtime_ns for p in (tasks, samples, mix, manifest)}
    for out, args in commands.items():
        r = invoke(*args)
        assert r.exit_code == 0 and "up to date" in r.output, (out, r.output)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # a changed parameter computes again; so does a damaged output
    before = tasks.read_bytes()
    r = invoke("select-tasks", emb, "-m", 4, "-n", 31, "--out", tasks)
    assert r.exit_code == 0 and "up to date" not in r.output and tasks.read_bytes() != before
    r = invoke(*commands[samples])
    assert r.exit_code == 0 and "up to date" not in r.output
    r = invoke("export", samples, "--out", mix, "--seed", 5)
    assert r.exit_code == 0 and "up to date" not in r.output
    first = mix.read_bytes()
    mix.write_bytes(first[:-10])
    os.utime(mix, ns=(stamps[mix], stamps[mix]))
    r = invoke("export", samples, "--out", mix, "--seed", 5)
    assert r.exit_code == 0 and "up to date" not in r.output and mix.read_bytes() == first
    samples.write_bytes(samples.read_bytes()[:100])
    r = invoke(*commands[samples])
    assert r.exit_code == 0 and "up to date" not in r.output and artifacts.read_samples(samples)[0].num_rows == 31


def test_a_grid_run_twice_is_up_to_date(tiny_dataset, tiny_emb, tmp_path):
    grid = tmp_path / "grid"
    recipe = _grid_recipe(tmp_path, tiny_dataset, tiny_emb, grid)
    assert invoke("run", recipe).exit_code == 0
    outputs = sorted(p for p in grid.glob("m*/*") if p.is_file())
    assert len(outputs) == 4 * 4
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    r = invoke("run", recipe)
    assert r.exit_code == 0 and r.output.count("up to date") == 3 * 4
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps
    assert load_recipe(recipe).grid == [(3, 20), (3, 30), (8, 20), (8, 30)]
