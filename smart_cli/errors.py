"""Exceptions that the CLI turns into one readable line and an exit code.

The library speaks in parameters, the CLI in flags: a message names a parameter with
:func:`param` (``f"{param('budget')} must be at least 1"``). ``str(exc)`` shows the parameter's
Python name (``budget must be at least 1``); the CLI renders the same error with its own flag
names (``--budget must be at least 1``) through :meth:`SmartError.render` and one table in
``cli.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Delimits a parameter name inside a message; never part of user text (a control character).
_MARK = "\x1f"
_PARAM = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}")


def param(name: str) -> str:
    """A parameter's name inside an error message, rendered by whoever shows the message."""
    return f"{_MARK}{name}{_MARK}"


def render(text: str, name: Callable[[str], str] = str) -> str:
    """``text`` with every :func:`param` mark replaced by ``name(parameter)``."""
    return _PARAM.sub(lambda m: name(m.group(1)), text)


class SmartError(Exception):
    """A mistake in the user's input or data: shown as one line, never as a traceback."""

    exit_code = 1

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message with parameters named by ``name`` (the CLI passes its flag table)."""
        return render(super().__str__(), name)

    def __str__(self) -> str:
        return self.render()


class DataError(SmartError):
    """The data or an artifact is wrong (exit 1)."""

    exit_code = 1


class UsageError(SmartError):
    """An option or argument is wrong (exit 2, like a usage error)."""

    exit_code = 2


def closest(name: str, choices: list[str]) -> str | None:
    """The choice most similar to ``name``, to suggest in an error message."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a line that says what was kept and how to go on (exit 130).

    A ``KeyboardInterrupt`` still, so library callers see the interruption they expect.
    """

    exit_code = 130

    def render(self, name: Callable[[str], str] = str) -> str:
        return render(super().__str__(), name)

    def __str__(self) -> str:
        return self.render()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
