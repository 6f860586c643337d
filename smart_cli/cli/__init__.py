"""The ``smart-cli`` command line: parses options, calls one library function, prints.

Heavy libraries (torch, sentence-transformers, faiss, submodlib, datasets) are imported inside
the commands, so ``smart-cli --help`` starts instantly.
"""

from __future__ import annotations

from smart_cli.cli import stages, tools
from smart_cli.cli.app import FLAGS, _describe, _state, app, flag
from smart_cli.cli.stages import embed, export, run, select_samples, select_tasks
from smart_cli.cli.tools import report, verify

__all__ = [
    "FLAGS",
    "_describe",
    "_state",
    "app",
    "embed",
    "export",
    "flag",
    "main",
    "report",
    "run",
    "select_samples",
    "select_tasks",
    "stages",
    "tools",
    "verify",
]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
