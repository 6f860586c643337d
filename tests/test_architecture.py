"""The house rules that keep the layout readable, checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "smart_cli"
#: The middle floor: one module per stage. A stage reads other stages' artifacts, never their code.
STAGES = {"embed", "select_tasks", "select_samples", "export", "report", "verify"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(path: Path) -> set[str]:
    """Every smart_cli module that ``path`` imports (``from smart_cli import x`` counts as x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("smart_cli")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smart_cli"):
            names.add(node.module or "")
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_no_stage_imports_another_stage():
    for module, path in modules().items():
        mine = stage_of(module)
        if mine is None:
            continue
        others = {stage_of(name) for name in imported(path)} - {None, mine}
        assert not others, f"{module} imports stage(s) {sorted(others)}: share through artifacts or a ground module"


def test_nothing_imports_the_cli():
    for module, path in modules().items():
        if not module.startswith("smart_cli.cli") and module != "smart_cli.__main__":
            assert not any(name.startswith("smart_cli.cli") for name in imported(path)), module


def test_ground_floor_does_not_import_stages():
    ground = {"artifacts", "budgets", "submodular", "sparse", "backends", "data", "errors", "defaults", "executor"}
    ground |= {"reporter", "stage", "task_means", "formats", "manifest", "baselines", "order_cache"}
    ground |= {"dense_greedy", "dense_limit", "sources", "chat", "similarity", "engines", "dense_free", "targeted"}
    for module, path in modules().items():
        if module.count(".") and module.split(".")[1] in ground:
            stages = {stage_of(name) for name in imported(path)} - {None}
            assert not stages, f"{module} (ground floor) imports stage(s) {sorted(stages)}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= 450, f"{path.name} has {len(lines)} lines: split it along its seams"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 80, f"{path.name}: {node.name} is {length} lines"


def test_every_parameter_named_in_an_error_has_a_flag():
    """Library errors name parameters with ``param("x")``; the CLI's one table must know each."""
    from smart_cli.cli import FLAGS

    used = set()
    for path in ROOT.rglob("*.py"):
        used |= set(re.findall(r"""param\(["'](\w+)["']\)""", path.read_text()))
    assert used, "no parameter found: the scan is broken"
    assert used <= set(FLAGS), f"parameters without a flag: {sorted(used - set(FLAGS))}"
    assert all(flag.startswith("--") for flag in FLAGS.values())


def test_library_errors_name_parameters_and_the_cli_names_flags():
    from smart_cli.cli import _describe
    from smart_cli.errors import UsageError
    from smart_cli.select_tasks import TaskConfig

    with pytest.raises(UsageError) as info:
        TaskConfig(num_tasks=2, budget=5, function="gc", lambda_=float("nan")).objective()
    assert str(info.value).startswith("lambda_ must be a finite number")
    message, code = _describe(info.value)
    assert message.startswith("--lambda must be a finite number") and code == 2


def test_defaults_exist_once():
    """The CLI's defaults are the config dataclasses' defaults (both read ``defaults.py``)."""
    import inspect

    from smart_cli import cli, defaults
    from smart_cli.embed import EmbedConfig
    from smart_cli.export import ExportConfig
    from smart_cli.select_samples import SampleConfig
    from smart_cli.select_tasks import TaskConfig

    def default(command, name):
        return inspect.signature(command).parameters[name].default

    assert default(cli.select_tasks, "seed") == TaskConfig(num_tasks=1, budget=1).seed == defaults.SEED
    assert default(cli.export, "seed") == ExportConfig().seed == SampleConfig().seed == defaults.SEED
    assert default(cli.embed, "model") == EmbedConfig().model == defaults.MODEL
    assert default(cli.select_samples, "knn") == SampleConfig().knn == defaults.KNN
    source = "\n".join(p.read_text() for p in ROOT.rglob("*.py") if p.name != "defaults.py")
    assert f'"{defaults.MODEL}"' not in source, "the default model name is spelled out outside defaults.py"
    assert not re.search(r"seed: int = 23\b|Seed = 23\b", source), "a seed default outside defaults.py"
