"""The four stages in order, from a recipe: EMB_DIR, tasks.json, samples.parquet, mixture.jsonl.

A loop over the stages' ``run``: each step names its stage, its input artifact(s), its output
and its config; the output of one is the input of the next. A recipe with a grid (lists of
M' and/or N') runs every combination into ``OUT/m{M}-n{N}/`` over one EMB_DIR: every task file
first (one cached task order), then one pass that fills the order cache with the longest prefix
each group needs anywhere in the grid, then each mixture's samples (lookups) and export.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smart_cli import artifacts, embed, export, select_samples, select_tasks, sources
from smart_cli.config import Recipe, load_recipe
from smart_cli.executor import Executor
from smart_cli.reporter import Reporter, or_silent
from smart_cli.stage import Stage


@dataclass(frozen=True)
class Step:
    name: str
    run: Stage
    inputs: Any
    out: Path
    cfg: Any


def outputs(out: Path, embeddings: Path | None = None) -> dict[str, Path]:
    """Where ``run`` puts each stage's artifact inside the recipe's ``out`` folder."""
    return {
        "embeddings": embeddings or out / "embeddings",
        "tasks": out / "tasks.json",
        "samples": out / "samples.parquet",
        "mixture": out / "mixture.jsonl",
    }


def grid_folder(out: Path, num_tasks: int | None, budget: int) -> Path:
    """Where a grid puts the mixture of (M', N'): ``OUT/m{M}-n{N}`` (``mall`` for all tasks)."""
    return out / f"m{'all' if num_tasks is None else num_tasks}-n{budget}"


def steps(recipe: Recipe) -> list[Step]:
    paths = outputs(recipe.out, recipe.embeddings)
    emb, tasks, samples = paths["embeddings"], paths["tasks"], paths["samples"]
    return [
        Step("embed", embed.run, recipe.dataset, emb, recipe.embed),
        Step("select-tasks", select_tasks.run, emb, tasks, recipe.tasks),
        Step("select-samples", select_samples.run, select_samples.SampleInputs(emb, tasks), samples, recipe.samples),
        Step("export", export.run, samples, paths["mixture"], recipe.export),
    ]


def run(
    recipe: Recipe,
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
    wait_lock: float = 0.0,
    debug: bool = False,
) -> dict:
    """Run every stage of ``recipe``; return the mixture's summary and where the other artifacts are.

    Each output is locked while its stage writes it (``wait_lock``: seconds to wait for another writer).
    ``recipe.engine`` ray (and no ``executor`` given): embed and select-samples run on Ray
    (``debug``: with Ray's logs on the screen).
    """
    if executor is None and recipe.engine != "local":
        from smart_cli.engines import open_engine

        gpus = recipe.embed.device != "cpu"
        with open_engine(recipe.engine, address=recipe.address, gpus=gpus, debug=debug) as ray:
            return run(recipe, reporter=reporter, executor=ray, wait_lock=wait_lock)
    if recipe.grid:
        return run_grid(recipe, reporter=reporter, executor=executor, wait_lock=wait_lock)
    reporter = or_silent(reporter)
    recipe.tasks.objective()
    recipe.samples.objective()
    recipe.embed.validate()
    plan = steps(recipe)
    for step in plan:  # an output that cannot be written is refused before any work
        artifacts.check_output(step.out, directory=step.name == "embed")
    summary = None
    for i, step in enumerate(plan, 1):
        summary = _run_step(step, f"{i}/{len(plan)}", reporter, executor, wait_lock)
    assert isinstance(summary, export.ExportSummary)
    return _mixture(summary, plan)


def _run_step(step: Step, label: str, reporter: Reporter, executor: Executor | None, wait_lock: float):
    shown = " ".join(getattr(d, "path", d) for d in sources.as_list(step.inputs)) if step.name == "embed" else ""
    reporter.step(f"{label} {step.name}", f"{shown} -> {step.out}".lstrip())
    with artifacts.exclusive(step.out, wait=wait_lock):
        return step.run(step.inputs, step.out, step.cfg, reporter=reporter, executor=executor)


def _mixture(summary: export.ExportSummary, plan: list[Step]) -> dict:
    """The mixture's summary, and where the artifacts it came from are."""
    mixture = summary.as_json()
    del mixture["command"], mixture["out"]
    artifacts_at = dict(zip(("embeddings", "tasks", "samples"), (str(s.out) for s in plan[:-1])))
    return {**mixture, **artifacts_at}


def run_grid(
    recipe: Recipe, *, reporter: Reporter | None = None, executor: Executor | None = None, wait_lock: float = 0.0
) -> dict:
    """Every (M', N') of ``recipe.grid`` into ``OUT/m{M}-n{N}/``, sharing the EMB_DIR and its order cache.

    Returns ``{"mixtures": [...], "embeddings": ...}``: each mixture's summary with its M' and N'.
    """
    reporter = or_silent(reporter)
    assert recipe.grid
    recipe.samples.objective()
    recipe.embed.validate()
    cells = []
    for m, n in recipe.grid:
        cell = dataclasses.replace(recipe, out=grid_folder(recipe.out, m, n), grid=None)
        cell.embeddings = recipe.embeddings or recipe.out / "embeddings"
        cell.tasks = dataclasses.replace(recipe.tasks, num_tasks=m, budget=n)
        cell.tasks.objective()
        cells.append(steps(cell))
    for step in [cells[0][0], *(s for plan in cells for s in plan[1:])]:  # before any work
        artifacts.check_output(step.out, directory=step.name == "embed")
    total = 2 + 3 * len(cells)
    _run_step(cells[0][0], f"1/{total}", reporter, executor, wait_lock)
    emb = cells[0][0].out
    es = artifacts.open_embeddings(emb)  # opened and checked once for every mixture
    for i, plan in enumerate(cells):
        _run_step(dataclasses.replace(plan[1], inputs=es), f"{2 + i}/{total}", reporter, executor, wait_lock)
    reporter.step(f"{2 + len(cells)}/{total} fill the order cache", f"{emb}")
    samples_cfg = _pin_dense_limit(recipe.samples, emb, cells[0][1].out)
    docs = [artifacts.load_tasks(plan[1].out, es) for plan in cells]
    select_samples.prefill(es, docs, samples_cfg, reporter=reporter, executor=executor)
    mixtures = []
    for i, plan in enumerate(cells):
        done = 3 + len(cells) + 2 * i
        step = dataclasses.replace(plan[2], inputs=select_samples.SampleInputs(es, plan[1].out), cfg=samples_cfg)
        _run_step(step, f"{done}/{total}", reporter, executor, wait_lock)
        summary = _run_step(plan[3], f"{done + 1}/{total}", reporter, executor, wait_lock)
        num_tasks, budget = recipe.grid[i]
        mixtures.append({"num_tasks": num_tasks, "budget": budget, **_mixture(summary, plan)})
    _show_grid(reporter, mixtures)
    return {"mixtures": mixtures, "embeddings": str(emb)}


def _pin_dense_limit(cfg: select_samples.SampleConfig, emb: Path, tasks: Path) -> select_samples.SampleConfig:
    """The grid's select-samples config with the dense limit resolved once (from memory where not given),
    so every mixture routes its groups alike and finds the orders the cache was filled with."""
    if cfg.max_dense_rows is not None:
        return cfg
    function = cfg.for_tasks(artifacts.load_tasks(tasks)).objective().name
    return dataclasses.replace(cfg, max_dense_rows=cfg.dense_limit(function))


def _show_grid(reporter: Reporter, mixtures: list[dict]) -> None:
    columns = [("M'", "right"), ("N'", "right"), ("lines", "right"), ("sha256", "left"), ("mixture", "left")]
    rows = [
        [str(m["num_tasks"] or "all"), f"{m['budget']:,}", f"{m['lines']:,}", m["sha256"][:12], m["path"]]
        for m in mixtures
    ]
    reporter.table(f"{len(mixtures)} mixtures", columns, rows)


def run_recipe(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
    wait_lock: float = 0.0,
    debug: bool = False,
) -> dict:
    recipe = load_recipe(path, overrides)
    return run(recipe, reporter=reporter, executor=executor, wait_lock=wait_lock, debug=debug)
