"""The CLI's reporter: logs, tables and progress bars on stderr through one rich console."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape

from smart_cli.reporter import Advance, Column, no_progress


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


@dataclass
class ConsoleReporter:
    """Draws on stderr; ``quiet`` keeps only warnings and errors."""

    quiet: bool = False
    err: Console = field(default_factory=stderr_console)

    def log(self, message: str, style: str | None = None) -> None:
        if not self.quiet:
            text = escape(message)
            # soft_wrap: one line per message, never a path broken in two
            self.err.print(f"[{style}]{text}[/]" if style else text, soft_wrap=True)

    def step(self, label: str, detail: str) -> None:
        if not self.quiet:
            self.err.print(f"[bold]{escape(label)}[/] {escape(detail)}", soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        if self.quiet:
            return
        from rich.table import Table

        table = Table(title=escape(title))
        for name, justify in columns:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        self.err.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        if self.quiet:
            yield no_progress
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=False,
        )
        with bar:
            task = bar.add_task(escape(description), total=total)

            def advance(n: int = 1) -> None:
                bar.advance(task, n)

            yield advance


def print_json(summary: dict) -> None:
    """A command's summary as one JSON object on stdout (``--json``, for CI)."""
    print(json.dumps(summary, sort_keys=True, ensure_ascii=False, default=str), flush=True)  # noqa: T201
