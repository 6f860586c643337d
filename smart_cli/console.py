"""All human-facing output: logs, tables and progress bars go to stderr through one rich console."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, highlight=False)
_state = {"quiet": False, "json": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def set_json(on: bool) -> None:
    _state["json"] = on


def is_json() -> bool:
    return _state["json"]


def result(summary: dict) -> None:
    """With ``--json``: the command's summary as one JSON object on stdout (for CI), else nothing."""
    if _state["json"]:
        import json

        print(json.dumps(summary, sort_keys=True, ensure_ascii=False, default=str), flush=True)


def log(message: str) -> None:
    if not _state["quiet"]:
        err.print(message, soft_wrap=True)  # one line per message, never a path broken in two


def warn(message: str) -> None:
    """Something the user should know about the result (shown even with --quiet)."""
    from rich.markup import escape

    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def show(renderable) -> None:
    if not _state["quiet"]:
        err.print(renderable)


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields ``advance(n)``. Silent when quiet."""
    if _state["quiet"]:
        yield _no_progress
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def _no_progress(n: int = 1) -> None:
    return None
