"""Recipes: --set overrides, the paper grid in configs/paper/, and --json summaries of `run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_cli.cli import app
from smart_cli.config import apply_overrides, load_recipe
from smart_cli.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
BASE = {"dataset": "d", "out": "o", "select_tasks": {"num_tasks": 4, "budget": 30}}


def test_overrides_dotted_keys_and_yaml_scalars():
    raw = apply_overrides(
        BASE,
        [
            "select_tasks.num_tasks=8",
            "seed=1",
            "select_tasks.function=fl",
            "export.format=messages",
            "select_tasks.lambda=0.5",
            "export.system=null",
            "out=runs/x",
        ],
    )
    assert raw["select_tasks"] == {"num_tasks": 8, "budget": 30, "function": "fl", "lambda": 0.5}
    assert raw["seed"] == 1 and raw["out"] == "runs/x" and raw["export"] == {"format": "messages", "system": None}
    assert BASE["select_tasks"]["num_tasks"] == 4  # the parsed recipe is not changed in place


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sed=1", "unknown key 'sed'; did you mean 'seed'?"),
        ("select_tasks=3", "name one key inside"),
        ("seed.x=3", "has no keys inside"),
        ("select_tasks.a.b=1", "name one key inside"),
        ("novalue", "key=value"),
        ("select_tasks.num_tasks=[1, 2]", "must be a scalar"),
    ],
)
def test_bad_overrides_are_refused_by_name(item, message):
    with pytest.raises(UsageError, match=message.replace("?", r"\?").replace("[", r"\[")):
        apply_overrides(BASE, [item])


def test_unknown_key_inside_a_section_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: d\nout: o\nselect_tasks: {num_tasks: 2, budget: 5}\n")
    with pytest.raises(UsageError, match="unknown key 'num_task' in recipe section 'select_tasks'"):
        load_recipe(recipe, ["select_tasks.num_task=3"])
    assert load_recipe(recipe, ["select_tasks.num_tasks=3"]).tasks.num_tasks == 3
    r = load_recipe(recipe, ["select_tasks.function=equal", "select_tasks.cap=flan2022", "embeddings=shared"])
    assert (r.tasks.function, r.tasks.cap, r.embeddings) == ("equal", "flan2022", Path("shared"))


def test_paper_grid_is_generated_and_loads():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_paper_recipes.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    files = sorted(p for p in (ROOT / "configs" / "paper").glob("*.yaml") if p.stem != "grid")
    assert len(files) == 9 * 5 + 3 * 5
    grid = load_recipe(ROOT / "configs" / "paper" / "grid.yaml")  # the 45 SMART mixtures in one recipe
    assert grid.grid is not None and len(grid.grid) == 45 and (1840, 400_000) in grid.grid
    assert grid.embeddings == load_recipe(files[0]).embeddings and grid.tasks.function == "gc"
    recipes = {f.stem: load_recipe(f) for f in files}
    r = recipes["flan2022-m256-n400k"]
    assert (r.tasks.num_tasks, r.tasks.budget, r.tasks.function, r.tasks.lambda_) == (256, 400_000, "gc", 0.4)
    assert r.samples.function == "fl" and r.embed.model == "thenlper/gte-large" and r.tasks.seed == 23
    assert len({r.embeddings for r in recipes.values()}) == 1  # one EMB_DIR for the whole grid
    assert recipes["flan2022-proportional-flancap-n25k"].tasks.cap == "flan2022"
    for recipe in recipes.values():
        recipe.tasks.objective()  # every recipe's options fit together


def test_demo_recipe_loads():
    r = load_recipe(ROOT / "configs" / "demo.yaml")
    assert r.tasks.num_tasks == 16 and r.tasks.budget == 2000


def test_run_with_set_and_json(tiny_dataset, tiny_emb, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"dataset: {tiny_dataset}\nout: {tmp_path / 'run'}\nembeddings: {tiny_emb}\n"
        "select_tasks: {num_tasks: 4, budget: 30}\n"
    )
    r = CliRunner().invoke(
        app,
        ["--json", "-q", "run", str(recipe), "--set", "select_tasks.budget=20", "--set", "export.format=alpaca"],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["command"] == "run" and summary["lines"] == 20 and summary["format"] == "alpaca"
    assert summary["embeddings"] == tiny_emb  # the shared EMB_DIR was used, not embedded again
    lines = [json.loads(x) for x in Path(summary["path"]).read_text().splitlines()]
    assert len(lines) == 20 and set(lines[0]) == {"instruction", "input", "output"}
    assert Path(summary["manifest"]).is_file()
    r = CliRunner().invoke(app, ["run", str(recipe), "--set", "select_tasks.bogus=1"])
    assert r.exit_code == 2 and "bogus" in r.output
