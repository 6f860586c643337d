"""The four stages in order, from a recipe: EMB_DIR, tasks.json, samples.parquet, mixture.jsonl.

A loop over the stages' ``run``: each step names its stage, its input artifact(s), its output
and its config; the output of one is the input of the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smart_cli import artifacts, embed, export, select_samples, select_tasks
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
    recipe: Recipe, *, reporter: Reporter | None = None, executor: Executor | None = None, wait_lock: float = 0.0
) -> dict:
    """Run every stage of ``recipe``; return the mixture's summary and where the other artifacts are.

    Each output is locked while its stage writes it (``wait_lock``: seconds to wait for another writer).
    """
    reporter = or_silent(reporter)
    recipe.tasks.objective()
    recipe.samples.objective()
    recipe.embed.validate()
    plan = steps(recipe)
    for step in plan:  # an output that cannot be written is refused before any work
        artifacts.check_output(step.out, directory=step.name == "embed")
    summary = None
    for i, step in enumerate(plan, 1):
        shown = step.inputs if step.name == "embed" else ""
        reporter.step(f"{i}/{len(plan)} {step.name}", f"{shown} -> {step.out}".lstrip())
        with artifacts.exclusive(step.out, wait=wait_lock):
            summary = step.run(step.inputs, step.out, step.cfg, reporter=reporter, executor=executor)
    assert isinstance(summary, export.ExportSummary)
    mixture = summary.as_json()
    del mixture["command"], mixture["out"]
    artifacts_at = dict(zip(("embeddings", "tasks", "samples"), (str(s.out) for s in plan[:-1])))
    return {**mixture, **artifacts_at}


def run_recipe(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
    wait_lock: float = 0.0,
) -> dict:
    return run(load_recipe(path, overrides), reporter=reporter, executor=executor, wait_lock=wait_lock)
