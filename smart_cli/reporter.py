"""How the library tells a person what it is doing, without knowing who is watching.

Every stage takes a ``reporter``: progress bars, log lines, warnings and tables go through it.
The library's default, :class:`Silent`, shows nothing but warnings (on the ``smart_cli``
logger); the CLI passes ``console.ConsoleReporter``, which draws on stderr with rich. A test or
another program passes its own (anything with these five methods).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

#: ``advance(n)``: n more units of work are done.
Advance = Callable[[int], None]
#: A table column: its heading and ``"left"`` or ``"right"``.
Column = tuple[str, str]


class Reporter(Protocol):
    def log(self, message: str, style: str | None = None) -> None:
        """A line about what is happening (``style``: a colour such as ``"green"``, or none)."""

    def step(self, label: str, detail: str) -> None:
        """The start of one step of several (``1/4 embed``, ``data -> out``)."""

    def warn(self, message: str) -> None:
        """Something the user should know about the result (shown even when quiet)."""

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """A small table of results."""

    def progress(self, description: str, total: int | None) -> contextlib.AbstractContextManager[Advance]:
        """A progress bar for ``total`` units; the context yields ``advance``."""


def no_progress(n: int = 1) -> None:
    return None


class Silent:
    """The library's default: no progress, no logs; warnings on the ``smart_cli`` logger."""

    def log(self, message: str, style: str | None = None) -> None:
        return None

    def step(self, label: str, detail: str) -> None:
        return None

    def warn(self, message: str) -> None:
        logging.getLogger("smart_cli").warning(message)

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        return None

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        yield no_progress


SILENT: Reporter = Silent()


def or_silent(reporter: Reporter | None) -> Reporter:
    return SILENT if reporter is None else reporter
