"""Every subcommand through Typer's runner on tiny data with the real packaged model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from smart_cli.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_four_commands_chain(tiny_dataset, tmp_path):
    emb, tasks, samples, mix = tmp_path / "emb", tmp_path / "t.json", tmp_path / "s.parquet", tmp_path / "m.jsonl"
    r = invoke("embed", tiny_dataset, "--out", emb, "--shard-rows", "16")
    assert r.exit_code == 0, r.output
    assert (emb / "embeddings.npy").exists() and (emb / "meta.json").exists()
    r = invoke("select-tasks", emb, "--num-tasks", "3", "--budget", "20", "--out", tasks)
    assert r.exit_code == 0, r.output
    doc = json.loads(tasks.read_text())
    assert len(doc["tasks"]) == 3 and sum(t["budget"] for t in doc["tasks"]) == 20
    assert {"task", "gain", "weight", "budget", "size"} <= set(doc["tasks"][0])
    r = invoke("select-samples", emb, tasks, "--out", samples)
    assert r.exit_code == 0, r.output
    r = invoke("export", samples, "--out", mix)
    assert r.exit_code == 0, r.output
    lines = mix.read_text().splitlines()
    assert len(lines) == 20
    assert set(json.loads(lines[0])) == {"prompt", "response", "task", "row"}


def test_run_recipe(tiny_dataset, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"dataset: {tiny_dataset}\nout: {tmp_path / 'run'}\nseed: 7\n"
        "select_tasks: {num_tasks: 4, budget: 30}\nselect_samples: {function: fl}\n"
    )
    r = invoke("run", recipe)
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "run" / "mixture.jsonl").read_text().splitlines()
    assert len(lines) == 30
    assert json.loads((tmp_path / "run" / "tasks.json").read_text())["seed"] == 7


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["select-tasks", "{emb}", "--num-tasks", "0", "--budget", "5", "--out", "{out}"], 2, "between 1 and 8"),
        (["select-tasks", "{emb}", "--num-tasks", "99", "--budget", "5", "--out", "{out}"], 2, "between 1 and 8"),
        (["select-tasks", "{emb}", "--num-tasks", "2", "--budget", "0", "--out", "{out}"], 2, "at least 1"),
        (
            ["select-tasks", "{emb}", "--num-tasks", "2", "--budget", "5", "--function", "xx", "--out", "{out}"],
            2,
            "unknown --function",
        ),
        (["select-tasks", "{missing}", "--num-tasks", "2", "--budget", "5", "--out", "{out}"], 1, "not found"),
        (["embed", "{missing}", "--out", "{out}"], 1, "not found"),
        (["embed", "{data}", "--prompt-column", "input", "--out", "{out}"], 1, "did you mean 'inputs'"),
    ],
)
def test_mistakes_give_one_line_and_no_output(tiny_emb, tiny_dataset, tmp_path, args, code, message):
    out = tmp_path / "out.json"
    fill = {"emb": tiny_emb, "out": out, "missing": tmp_path / "nope.parquet", "data": tiny_dataset}
    r = invoke(*[a.format(**fill) for a in args])
    assert r.exit_code == code, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert not out.exists()


def registered_commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_registered_command_has_help():
    names = registered_commands()
    assert {"embed", "select-tasks", "select-samples", "export", "run", "verify", "report"} <= set(names)
    for name in names:
        r = invoke(name, "--help")
        assert r.exit_code == 0 and "Usage" in r.output, name
        assert len(r.output.split("Usage", 1)[1].strip()) > 40, name  # a description, not a bare usage line


def test_embed_shows_no_third_party_progress(tmp_path):
    """datasets' "Generating train split" and transformers' "Loading weights" stay off stderr."""
    from helpers import SIZES, make_rows, write_parquet

    fresh = write_parquet(make_rows(SIZES), tmp_path / "fresh.parquet")  # new to datasets' cache: it would say so
    r = runner.invoke(app, ["embed", fresh, "--out", str(tmp_path / "emb")])
    assert r.exit_code == 0, r.output
    for foreign in ("Generating", "Loading weights", "Saving the dataset", "it/s]", "examples/s]", "LOAD REPORT"):
        assert foreign not in r.output, (foreign, r.output)
    assert "embedding" in r.output and "embedded 81 rows" in r.output  # the tool's own bar and line


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from smart_cli import cli; "
        "heavy = [m for m in ('torch','sentence_transformers','faiss','submodlib','datasets') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
