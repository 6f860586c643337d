"""The four stages in order, from a recipe: EMB_DIR, tasks.json, samples.parquet, mixture.jsonl."""

from __future__ import annotations

from pathlib import Path

from smart_cli import artifacts, console
from smart_cli.config import Recipe, load_recipe
from smart_cli.embed import embed
from smart_cli.export import export
from smart_cli.select_samples import select_samples, write_samples
from smart_cli.select_tasks import select_tasks, summary_table


def outputs(out: Path) -> dict[str, Path]:
    """Where ``run`` puts each stage's artifact inside the recipe's ``out`` folder."""
    return {
        "embeddings": out / "embeddings",
        "tasks": out / "tasks.json",
        "samples": out / "samples.parquet",
        "mixture": out / "mixture.jsonl",
    }


def run(recipe: Recipe) -> dict:
    paths = outputs(recipe.out)
    recipe.tasks.objective()
    recipe.samples.objective()
    recipe.embed.validate()
    console.log(f"[bold]1/4 embed[/] {recipe.dataset} -> {paths['embeddings']}")
    embed(recipe.dataset, paths["embeddings"], recipe.embed)
    es = artifacts.open_embeddings(paths["embeddings"])
    console.log(f"[bold]2/4 select-tasks[/] -> {paths['tasks']}")
    tasks_doc = select_tasks(es, recipe.tasks)
    artifacts.write_json(paths["tasks"], tasks_doc)
    console.show(summary_table(tasks_doc))
    console.log(f"[bold]3/4 select-samples[/] -> {paths['samples']}")
    write_samples(select_samples(es, tasks_doc, recipe.samples), paths["samples"])
    console.log(f"[bold]4/4 export[/] -> {paths['mixture']}")
    return export(paths["samples"], paths["mixture"], recipe.export)


def run_recipe(path: str | Path) -> dict:
    return run(load_recipe(path))
