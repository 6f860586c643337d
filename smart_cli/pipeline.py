"""The four stages in order, from a recipe: EMB_DIR, tasks.json, samples.parquet, mixture.jsonl."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from smart_cli import artifacts, console
from smart_cli.config import Recipe, load_recipe
from smart_cli.embed import embed
from smart_cli.export import export
from smart_cli.select_samples import select_samples, write_samples
from smart_cli.select_tasks import select_tasks, summary_table


def outputs(out: Path, embeddings: Path | None = None) -> dict[str, Path]:
    """Where ``run`` puts each stage's artifact inside the recipe's ``out`` folder."""
    return {
        "embeddings": embeddings or out / "embeddings",
        "tasks": out / "tasks.json",
        "samples": out / "samples.parquet",
        "mixture": out / "mixture.jsonl",
    }


def run(recipe: Recipe) -> dict:
    paths = outputs(recipe.out, recipe.embeddings)
    recipe.tasks.objective()
    recipe.samples.objective()
    recipe.embed.validate()
    for key, path in paths.items():  # an output that cannot be written is refused before any work
        artifacts.check_output(path, directory=key == "embeddings")
    console.log(f"[bold]1/4 embed[/] {recipe.dataset} -> {paths['embeddings']}")
    embed(recipe.dataset, paths["embeddings"], recipe.embed)
    es = artifacts.open_embeddings(paths["embeddings"])
    console.log(f"[bold]2/4 select-tasks[/] -> {paths['tasks']}")
    tasks_doc = select_tasks(es, recipe.tasks)
    artifacts.write_json(paths["tasks"], tasks_doc)
    console.show(summary_table(tasks_doc))
    console.log(f"[bold]3/4 select-samples[/] -> {paths['samples']}")
    located = {**tasks_doc, "path": str(paths["tasks"].resolve())}  # recorded in the manifest
    write_samples(select_samples(es, located, recipe.samples), paths["samples"])
    console.log(f"[bold]4/4 export[/] -> {paths['mixture']}")
    summary = export(paths["samples"], paths["mixture"], recipe.export)
    return {**summary, **{k: str(v) for k, v in paths.items() if k != "mixture"}}


def run_recipe(path: str | Path, overrides: Sequence[str] = ()) -> dict:
    return run(load_recipe(path, overrides))
