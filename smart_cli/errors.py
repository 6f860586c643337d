"""Exceptions that the CLI turns into one readable line and an exit code."""

from __future__ import annotations


class SmartError(Exception):
    """A mistake in the user's input or data: shown as one line, never as a traceback."""

    exit_code = 1


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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
