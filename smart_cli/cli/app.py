"""The Typer app and what every command shares: global options, the flag table, errors, locks.

Heavy libraries (torch, sentence-transformers, faiss, submodlib, datasets) are imported inside
the commands, so ``smart-cli --help`` starts instantly.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from smart_cli import __version__
from smart_cli.console import ConsoleReporter, print_json
from smart_cli.errors import Interrupted, SmartError, first_line

app = typer.Typer(
    name="smart-cli",
    help="Build instruction-tuning data mixtures with SMART (submodular data mixture strategy).\n\n"
    "embed DATASET -> EMB_DIR -> select-tasks -> TASKS.json -> select-samples -> SAMPLES.parquet "
    "-> export -> MIXTURE.jsonl, or all four from a recipe with `run`.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    """What the global options set for the command that follows."""

    reporter: ConsoleReporter = field(default_factory=ConsoleReporter)
    json: bool = False
    debug: bool = False
    #: Seconds a command waits for another one writing the same output (0: refuse at once).
    wait_lock: float = 0.0

    def done(self, summary: Any) -> None:
        """The command's one line for a person, and with ``--json`` its summary on stdout."""
        self.reporter.log(summary.message(), "green")
        if self.json:
            print_json(summary.as_json())


_state = State()

#: The library names parameters (``errors.param``); the command line shows them as these flags.
FLAGS = {
    "address": "--address",
    "backend": "--backend",
    "bad_rows": "--bad-rows",
    "batch_size": "--batch-size",
    "budget": "--budget",
    "cap": "--cap",
    "dataset": "--dataset",
    "device": "--device",
    "draws": "--draws",
    "emb_dir": "--emb-dir",
    "dtype": "--dtype",
    "engine": "--engine",
    "eta": "--eta",
    "eval_rows": "--eval-rows",
    "format": "--format",
    "function": "--function",
    "greedy_backend": "--greedy-backend",
    "kernel": "--kernel",
    "keep_columns": "--keep-columns",
    "knn": "--knn",
    "lambda_": "--lambda",
    "max_dense_rows": "--max-dense-rows",
    "max_memory": "--max-memory",
    "max_tokens": "--max-tokens",
    "model": "--model",
    "name": "--name",
    "revision": "--revision",
    "messages_column": "--messages-column",
    "no_cache": "--no-cache",
    "num_tasks": "--num-tasks",
    "optimizer": "--optimizer",
    "out": "--out",
    "overrides": "--set",
    "precision": "--precision",
    "prompt_column": "--prompt-column",
    "query": "--query",
    "response_column": "--response-column",
    "role_map": "--role-map",
    "shard_rows": "--shard-rows",
    "source_column": "--source-column",
    "system": "--system",
    "row_map": "--row-map",
    "task_means": "--task-means",
    "task_sample": "--task-sample",
    "system_turns": "--system-turns",
    "task_from": "--task-from",
    "task_column": "--task-column",
    "template_column": "--template-column",
    "text": "--text",
    "threshold": "--threshold",
    "top": "--top",
    "wait_lock": "--wait-lock",
    "workers": "--workers",
}


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.rstrip("_").replace("_", "-"))


Seed = Annotated[int, typer.Option(min=0, help="Random seed (ties, random baselines, shuffling).")]
Lambda = Annotated[float | None, typer.Option("--lambda", help="Lambda of gc (default 0.4) or logdet (default 1).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output path.")]
EmbDir = Annotated[Path, typer.Argument(help="Folder written by `smart-cli embed`.", show_default=False)]
NoCache = Annotated[
    bool,
    typer.Option("--no-cache", help="Neither read nor write the greedy orders kept in EMB_DIR/cache/ (same output)."),
]
Query = Annotated[
    Path | None,
    typer.Option(
        help="EMB_DIR embedded from target examples (same --model/--backend/--text): select toward them "
        "by mutual information [default function: flmi].",
        show_default=False,
    ),
]
Eta = Annotated[
    float | None,
    typer.Option(
        help="With --query: eta of flmi, flvmi, logdetmi (query relevance vs diversity) [default: 1].",
        show_default=False,
    ),
]
GreedyBackend = Annotated[
    str,
    typer.Option(help="Dense lazy greedy: smart (this package's engine) or submodlib (the library); same picks."),
]
Kernel = Annotated[
    str,
    typer.Option(
        help="Dense kernel arithmetic: fixed (the same bits on any machine) or blas (numpy's float32 "
        "x @ x.T: submodlib's picks on that product, on this machine only; recorded)."
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smart-cli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object summarising what the command wrote (for CI).")
    ] = False,
    wait_lock: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait while another smart-cli command writes the same output."),
    ] = 0.0,
) -> None:
    _state.reporter = ConsoleReporter(quiet=quiet)
    _state.json = json_
    _state.debug = debug
    _state.wait_lock = wait_lock


def _describe(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code an error gives on the command line."""
    if isinstance(exc, SmartError):
        return exc.render(flag), exc.exit_code
    if isinstance(exc, Interrupted):
        return exc.render(flag) or "interrupted", 130
    if isinstance(exc, KeyboardInterrupt):
        return str(exc) or "interrupted", 130
    if isinstance(exc, MemoryError):
        what = "out of memory"
    elif isinstance(exc, OSError) and exc.strerror:
        what = f"{type(exc).__name__}: {f'{exc.filename}: ' if exc.filename else ''}{exc.strerror}"
    else:
        what = f"{type(exc).__name__}: {first_line(exc)}"
    return f"{what}; run with --debug for the traceback", 1


def command(fn, group: typer.Typer | None = None, name: str | None = None):
    """Register ``fn`` and turn every error into one line on stderr and an exit code.

    Known mistakes (``SmartError``) exit 1 (data) or 2 (usage); anything unexpected (a bug, or a
    library error not anticipated) exits 1 with its type and first line; Ctrl-C exits 130.
    ``--debug`` re-raises for the traceback. An ``--out`` that cannot be written is refused
    before any work, and one that another command is writing too (its lock is held).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _quiet_libraries(), _writing(kwargs.get("out"), directory=fn.__name__ == "embed"):
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):  # typer's own exits and usage errors
            raise
        except (Exception, KeyboardInterrupt) as exc:  # never a traceback unless --debug
            if _state.debug:
                raise
            message, code = _describe(exc)
            _state.reporter.error(" ".join(message.split("\n")))  # a library's message may span lines
            raise typer.Exit(code) from None

    return (group or app).command(name)(wrapper)


@contextlib.contextmanager
def _writing(out: Any, *, directory: bool):
    """Check ``out`` can be written, and hold its lock while the command runs."""
    if not isinstance(out, Path):
        yield
        return
    from smart_cli.artifacts import check_output, exclusive

    check_output(out, directory=directory)
    with exclusive(out, wait=_state.wait_lock):
        yield


@contextlib.contextmanager
def _quiet_libraries():
    """Keep library warnings and log lines (transformers, datasets) off the user's screen."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers sets its own log level when first imported (after this): its multi-line load
    # report for the packaged model would otherwise land on stderr on every embed.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("sentence_transformers", "transformers", "datasets", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.ERROR)
        yield
