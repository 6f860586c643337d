"""The one shape every stage has.

A stage module (``embed``, ``select_tasks``, ``select_samples``, ``export``) exposes

    run(inputs, out, cfg, *, reporter=None, executor=None) -> Summary

which opens its inputs, computes, writes ``out`` atomically (nothing is left at ``out`` when it
fails) and returns a small typed summary. ``cfg`` is the stage's config dataclass, whose
defaults are the tool's; ``reporter`` receives progress and logs (``reporter.py``), and
``executor`` runs the stage's independent pieces of work (``executor.py``) where it has any.
The CLI builds ``cfg``, calls ``run`` and prints the summary; ``pipeline.run`` calls the stages'
``run`` in order. A new stage is a module with such a ``run``, a config and a summary.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from smart_cli.executor import Executor
from smart_cli.reporter import Reporter

I = TypeVar("I", contravariant=True)  # noqa: E741
C = TypeVar("C", contravariant=True)


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a stage wrote: its output and a few facts about it (``--json`` prints them)."""

    #: The command that runs the stage (``select-tasks``).
    command: ClassVar[str] = ""
    out: Path

    def as_json(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"command": self.command, **{k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}}

    def message(self) -> str:
        """One line for a person: what was written where."""
        return f"wrote {self.out}"


class Stage(Protocol[I, C]):
    def __call__(
        self, inputs: I, out: Path, cfg: C, *, reporter: Reporter | None = None, executor: Executor | None = None
    ) -> Summary: ...
