#!/usr/bin/env python
"""Generate a small, deterministic FLAN-2022-style demo dataset.

Usage: python scripts/make_demo_data.py --out data/demo [--seed 0] [--scale 1.0]

Writes OUT/train.parquet with string columns inputs, targets, task_name, task_source and
template_type. 49 tasks in families (sentiment, NLI, QA, translation, summarisation,
arithmetic, dialogue, ...) over the five FLAN sources, sized and skewed like FLAN (many small
NIv2 tasks, a few big Flan 2021 ones), with some exact duplicate prompts. The same seed and
scale give a byte-identical file. Only the standard library, pyarrow and PyYAML are used, so
the script runs without smart_cli installed.

The hand-written content is in data tables next to this script, in scripts/demo_data/:

- tasks.yaml: the tasks (source, family, size, template types, duplicate rate) and their
  prompt templates. Its sizes and sources give the dataset its FLAN-like shape.
- recipes.yaml: for each task family, the steps that draw one instance (template fields,
  target and answer options) in a small Python-like expression language, which
  scripts/demo_recipes.py interprets.
- vocab.yaml: the word lists the recipes draw from (people, cities, review phrases, a
  four-language parallel lexicon, ...).

This script seeds one random generator per task, draws its instances with the recipes,
renders them as zero- or few-shot prompts with or without answer options, copies some rows
verbatim, and writes the parquet file.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package
from demo_recipes import Recipes  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "demo_data"
COLUMNS = ("inputs", "targets", "task_name", "task_source", "template_type")
SOURCES = ("flan2021", "t0", "niv2", "cot", "dialog")
TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
# Few-shot prompts get exemplars only while they stay under this many words (at least one).
FEW_SHOT_WORD_BUDGET = 80
# FLAN mixes zero- and few-shot prompts about evenly; zero-shot is drawn more often here to
# keep prompts short, since `make demo` embeds every prompt on CPU.
ZERO_SHOT_WEIGHT = 2


def _load(name: str) -> dict:
    with open(DATA_DIR / f"{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


RECIPES, TASK_TABLE = Recipes(_load("vocab"), _load("recipes")), _load("tasks")


class Rand:
    """The few draws the recipes need, all from one explicitly seeded random.Random."""

    def __init__(self, rng: random.Random) -> None:
        self.g = rng
        draws = dict(pick=self.pick, randint=self.int, chance=self.chance, sample=self.sample)
        self.scope = RECIPES.scope(**draws, shuffled=self.shuffled)  # what the recipes see

    def pick(self, seq: Sequence):
        return seq[self.g.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.g.random() < p

    def sample(self, seq: Sequence, k: int) -> list:
        return self.g.sample(list(seq), k)

    def shuffled(self, seq: Sequence) -> list:
        out = list(seq)
        self.g.shuffle(out)
        return out

    def int(self, lo: int, hi: int) -> int:  # last, so that `int` above still means the type
        """Uniform integer in [lo, hi], both ends included."""
        return self.g.randint(lo, hi)


@dataclass(frozen=True)
class Ex:
    """One generated instance: template fields, the response, and answer options if any."""

    fields: dict[str, str]
    target: str
    options: Sequence[str] | None = None


# --- tasks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One entry of tasks.yaml (see there for its fields)."""

    name: str
    source: str
    family: str
    size: int
    types: tuple[str, ...]
    recipe: str
    templates: tuple[str, ...]
    args: dict = field(default_factory=dict)
    dup: float = 0.0  # fraction of rows that copy another row of the task verbatim
    opt_header: str = "OPTIONS:"
    input: str = ""  # NIv2: how the recipe's fields are written into the single field {x}
    definition: str = ""  # NIv2: the task definition its templates start with

    def example(self, r: Rand) -> Ex:
        fields, target, options = RECIPES.draw(self.recipe, self.args, r.scope)
        x = {"x": self.input.format(**fields)} if self.input else {}
        return Ex({**fields, **x, "definition": self.definition}, target, options)


def _task(spec: dict) -> Task:
    """A tasks.yaml entry; named template types and templates are looked up (niv2 by default)."""
    types, templates = spec["types"], spec.get("templates", "niv2")
    types = TASK_TABLE["type_sets"][types] if isinstance(types, str) else types
    templates = TASK_TABLE["templates"][templates] if isinstance(templates, str) else templates
    return Task(**spec | {"types": tuple(types), "templates": tuple(templates)})


TASKS: tuple[Task, ...] = tuple(_task(spec) for spec in TASK_TABLE["tasks"])


def task_families() -> dict[str, str]:
    """task_name -> family, for checking that selections follow the task clusters."""
    return {t.name: t.family for t in TASKS}


# --- rendering -----------------------------------------------------------------------------


def render(ex: Ex, template: str, with_options: bool, header: str) -> str:
    """Fills a template; options go where it says {options}, else at the end."""
    opts = ""
    if with_options:
        opts = f"\n\n{header}\n" + "\n".join(f"- {o}" for o in ex.options or ())
    if "{options}" in template:
        return template.format(**ex.fields, options=opts)
    return template.format(**ex.fields) + opts


def make_row(task: Task, r: Rand) -> dict[str, str]:
    ttype = r.pick([t for t in task.types for _ in range(ZERO_SHOT_WEIGHT if t[:2] == "zs" else 1)])
    template = r.pick(task.templates)
    opt = ttype.endswith("_opt")
    ex = task.example(r)
    if opt and not ex.options:
        raise ValueError(f"task {task.name} has template type {ttype} but no answer options")
    prompt = render(ex, template, opt, task.opt_header)
    if ttype.startswith("fs"):
        shots: list[str] = []
        words = len(prompt.split())
        for _ in range(r.int(1, 3)):
            ex_i = task.example(r)
            shot = f"{render(ex_i, template, opt, task.opt_header)}\n{ex_i.target}"
            if shots and words + len(shot.split()) > FEW_SHOT_WORD_BUDGET:
                break
            shots.append(shot)
            words += len(shot.split())
        prompt = "\n\n".join([*shots, prompt])
    return dict(zip(COLUMNS, (prompt, ex.target, task.name, task.source, ttype), strict=True))


def task_rows(task: Task, index: int, seed: int, scale: float) -> list[dict[str, str]]:
    # One generator per task, keyed by (seed, task index), so tasks stay independent of each
    # other. A str seed is hashed with SHA-512, the same on every run and platform.
    r = Rand(random.Random(f"smart-demo/{seed}/{index}"))
    n = max(2, round(task.size * scale))
    n_dup = int(task.dup * n)
    rows = [make_row(task, r) for _ in range(n - n_dup)]
    rows += [dict(rows[r.int(0, len(rows) - 1)]) for _ in range(n_dup)]
    return r.shuffled(rows)


def generate(seed: int = 0, scale: float = 1.0) -> pa.Table:
    """The demo dataset as a table, grouped by source then task like the FLAN releases."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rows: list[dict[str, str]] = []
    order = sorted(range(len(TASKS)), key=lambda i: SOURCES.index(TASKS[i].source))
    for i in order:
        rows += task_rows(TASKS[i], i, seed, scale)
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    return pa.table({c: [row[c] for row in rows] for c in COLUMNS}, schema=schema)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Atomic write with fixed writer options, so the bytes depend only on the table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=3,
            use_dictionary=True,
            write_statistics=True,
            version="2.6",
            row_group_size=1 << 20,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies task sizes (min 2 rows per task)")
    args = ap.parse_args(argv)
    if args.scale <= 0:
        ap.error("--scale must be positive")
    table = generate(args.seed, args.scale)
    path = args.out / "train.parquet"
    write_parquet(table, path)
    tasks = len(set(table.column("task_name").to_pylist()))
    sources = len(set(table.column("task_source").to_pylist()))
    sys.stderr.write(f"wrote {table.num_rows} rows, {tasks} tasks, {sources} sources to {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
