"""The ``smart-cli`` command line: parses options, calls one library function, prints.

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

from smart_cli import __version__, defaults
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
    "backend": "--backend",
    "bad_rows": "--bad-rows",
    "batch_size": "--batch-size",
    "budget": "--budget",
    "cap": "--cap",
    "dataset": "--dataset",
    "draws": "--draws",
    "emb_dir": "--emb-dir",
    "dtype": "--dtype",
    "eval_rows": "--eval-rows",
    "format": "--format",
    "function": "--function",
    "keep_columns": "--keep-columns",
    "knn": "--knn",
    "lambda_": "--lambda",
    "max_dense_rows": "--max-dense-rows",
    "messages_column": "--messages-column",
    "num_tasks": "--num-tasks",
    "optimizer": "--optimizer",
    "out": "--out",
    "overrides": "--set",
    "precision": "--precision",
    "prompt_column": "--prompt-column",
    "response_column": "--response-column",
    "role_map": "--role-map",
    "shard_rows": "--shard-rows",
    "source_column": "--source-column",
    "system": "--system",
    "system_turns": "--system-turns",
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


def command(fn):
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

    return app.command()(wrapper)


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


@command
def embed(
    dataset: Annotated[str, typer.Argument(help="Hub id, save_to_disk folder, or parquet/jsonl/json/csv file(s).")],
    out: Out,
    split: Annotated[str, typer.Option(help="Dataset split.")] = "train",
    prompt_column: Annotated[str, typer.Option(help="Column with the prompt.")] = "inputs",
    response_column: Annotated[str, typer.Option(help="Column with the response.")] = "targets",
    task_column: Annotated[str, typer.Option(help="Column with the task name.")] = "task_name",
    template_column: Annotated[
        str, typer.Option(help="Column with the template type; '' for none (one group per task).")
    ] = "template_type",
    text: Annotated[
        str,
        typer.Option(
            help="What to embed: prompt or prompt+response; chat rows: prompt, last-user, user, conversation."
        ),
    ] = defaults.TEXT_MODES[0],
    model: Annotated[
        str, typer.Option(help="sentence-transformers id or local path (default: packaged, offline).")
    ] = defaults.MODEL,
    backend: Annotated[
        str, typer.Option(help="transformer, or static (fast distilled model2vec).")
    ] = defaults.BACKENDS[0],
    batch_size: Annotated[int, typer.Option(help="Texts per model batch.")] = defaults.BATCH_SIZE,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:0 or cuda:0,cuda:1 (several GPUs).")] = None,
    dtype: Annotated[str, typer.Option(help="float32, or float16 to halve the file.")] = defaults.DTYPES[0],
    precision: Annotated[
        str, typer.Option(help="Transformer inference: fp32, or bf16 (autocast; faster on CPUs with AVX512-BF16).")
    ] = defaults.PRECISIONS[0],
    shard_rows: Annotated[int, typer.Option(help="Rows per resumable shard.")] = defaults.SHARD_ROWS,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow model/dataset code from the hub.")] = False,
    source_column: Annotated[
        str, typer.Option(help="Column with the task source (for --cap flan2022 and the report); optional.")
    ] = "task_source",
    messages_column: Annotated[
        str | None,
        typer.Option(help="Chat rows: column of conversations ({role, content} or ShareGPT {from, value} turns)."),
    ] = None,
    system_turns: Annotated[str, typer.Option(help="Chat rows: keep or drop system turns in the text.")] = "keep",
    role_map: Annotated[
        str | None, typer.Option(help="Chat rows: more role names, e.g. bot=assistant,narrator=system.")
    ] = None,
    bad_rows: Annotated[
        str, typer.Option(help="Chat rows: error on a malformed conversation (naming the row), or skip and count it.")
    ] = "error",
) -> None:
    """Embed every row's prompt into EMB_DIR (embeddings.npy, rows.parquet, meta.json).

    Chat rows (--messages-column): --text prompt embeds the turns before the last assistant turn;
    also last-user, user and conversation.
    """
    from smart_cli import embed as stage
    from smart_cli.data import Columns

    cfg = stage.EmbedConfig(
        split=split,
        columns=Columns(prompt_column, response_column, task_column, template_column or None, messages_column or None),
        text=text,
        model=model,
        backend=backend,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        precision=precision,
        shard_rows=shard_rows,
        trust_remote_code=trust_remote_code,
        source_column=source_column or None,
        system_turns=system_turns,
        role_map=role_map,
        bad_rows=bad_rows,
    )
    _state.done(stage.run(dataset, out, cfg, reporter=_state.reporter))


@command
def select_tasks(
    emb_dir: EmbDir,
    out: Out,
    budget: Annotated[int, typer.Option("--budget", "-n", help="N': total rows in the mixture.")],
    num_tasks: Annotated[
        int | None,
        typer.Option("--num-tasks", "-m", help="M': tasks to select (proportional/equal: default all tasks)."),
    ] = None,
    function: Annotated[
        str, typer.Option(help="gc, fl, logdet, random; baselines: proportional (to task size), equal.")
    ] = defaults.TASK_FUNCTION,
    lambda_: Lambda = None,
    seed: Seed = defaults.SEED,
    cap: Annotated[
        str | None,
        typer.Option(help="proportional/equal: most rows per task, N or flan2022 (FLAN 2022's per-source caps)."),
    ] = None,
) -> None:
    """Pick M' tasks by greedy submodular gain and split N' rows among them (TASKS.json)."""
    from smart_cli import select_tasks as stage

    cfg = stage.TaskConfig(num_tasks=num_tasks, budget=budget, function=function, lambda_=lambda_, seed=seed, cap=cap)
    _state.done(stage.run(emb_dir, out, cfg, reporter=_state.reporter))


@command
def select_samples(
    emb_dir: EmbDir,
    tasks: Annotated[Path, typer.Argument(help="TASKS.json written by `smart-cli select-tasks`.")],
    out: Out,
    function: Annotated[
        str | None,
        typer.Option(help="fl, gc, logdet or random [default: fl; random for a baseline's TASKS.json]."),
    ] = None,
    lambda_: Lambda = None,
    seed: Seed = defaults.SEED,
    max_dense_rows: Annotated[
        int | None,
        typer.Option(
            help="Largest group on the dense (reference) path; larger ones use a kNN graph. 0: all groups "
            "sparse [default: from available memory].",
            show_default=False,
        ),
    ] = None,
    knn: Annotated[int, typer.Option(help="Neighbours per row of the sparse path's kNN graph.")] = defaults.KNN,
    optimizer: Annotated[str, typer.Option(help="Sparse path's greedy: lazy or stochastic.")] = defaults.OPTIMIZERS[0],
    workers: Annotated[int, typer.Option(help="Processes selecting groups in parallel (same output).")] = 1,
) -> None:
    """Pick each selected task's rows by greedy submodular gain (SAMPLES.parquet)."""
    from smart_cli import select_samples as stage
    from smart_cli.executor import for_workers

    cfg = stage.SampleConfig(
        function=function,
        lambda_=lambda_,
        seed=seed,
        max_dense_rows=max_dense_rows,
        knn=knn,
        optimizer=optimizer,
        workers=workers,
    )
    cfg.objective()  # a wrong option is a usage error before any work (--workers 0 included)
    inputs = stage.SampleInputs(emb_dir, tasks)
    _state.done(stage.run(inputs, out, cfg, reporter=_state.reporter, executor=for_workers(workers)))


@command
def export(
    samples: Annotated[Path, typer.Argument(help="SAMPLES.parquet written by `smart-cli select-samples`.")],
    out: Out,
    dataset: Annotated[str | None, typer.Option(help="Source dataset, if not where `embed` found it.")] = None,
    seed: Seed = defaults.SEED,
    format_: Annotated[
        str, typer.Option("--format", "-f", help="prompt-response, messages, prompt-completion or alpaca.")
    ] = defaults.LINE_FORMAT,
    system: Annotated[
        str | None, typer.Option(help="--format messages: a system message put first on every line.")
    ] = None,
    provenance_fields: Annotated[
        bool | None,
        typer.Option(
            "--provenance-fields/--no-provenance-fields",
            help="Add task and row to every line [default: only for prompt-response].",
            show_default=False,
        ),
    ] = None,
    keep_columns: Annotated[
        str | None, typer.Option(help="Source columns copied into every line, e.g. id,source (any format).")
    ] = None,
) -> None:
    """Write the selected rows as a shuffled JSONL mixture (.jsonl.gz: gzip) and X.manifest.json beside it."""
    from smart_cli import export as stage

    cfg = stage.ExportConfig(
        seed=seed,
        dataset=dataset,
        format=format_,
        system=system,
        provenance_fields=provenance_fields,
        keep_columns=keep_columns or (),  # type: ignore[arg-type]  # split by ExportConfig
    )
    cfg.line_format()  # a wrong --format is a usage error before any work
    _state.done(stage.run(samples, out, cfg, reporter=_state.reporter))


@dataclass(frozen=True)
class _Result:
    """The summary of a command that is not one stage (run, report): its JSON and its line."""

    command: str
    fields: dict
    line: str

    def message(self) -> str:
        return self.line

    def as_json(self) -> dict:
        return {"command": self.command, **self.fields}


@command
def run(
    config: Annotated[Path, typer.Argument(help="YAML recipe, e.g. configs/demo.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe key: --set select_tasks.num_tasks=8 --set seed=1 (repeatable)."),
    ] = None,
) -> None:
    """Run embed, select-tasks, select-samples and export from a recipe."""
    from smart_cli.pipeline import run_recipe

    summary = run_recipe(config, set_ or (), reporter=_state.reporter, wait_lock=_state.wait_lock)
    line = f"mixture: {summary['path']} ({summary['lines']:,} lines)"
    _state.done(_Result("run", {"recipe": str(config), **summary}, line))


@command
def verify(
    mixture: Annotated[Path, typer.Argument(help="MIXTURE.jsonl written by `smart-cli export`.")],
    dataset: Annotated[str | None, typer.Option(help="Source dataset, if not where the manifest says.")] = None,
    checksum_only: Annotated[bool, typer.Option(help="Check the sha256 only, not the lines.")] = False,
) -> None:
    """Check a mixture against X.manifest.json: its sha256 and, where the source is reachable, every line."""
    from smart_cli.verify import VerifyConfig
    from smart_cli.verify import verify as run_verify

    summary = run_verify(mixture, VerifyConfig(dataset=dataset, checksum_only=checksum_only), reporter=_state.reporter)
    checked = f"every line is its source row ({summary['source']})" if summary["rows_checked"] else "checksum only"
    if _state.json:
        print_json({"command": "verify", **summary})
    else:  # the verdict is the command's output: stdout
        typer.echo(f"ok: {mixture}: {summary['lines']:,} lines, sha256 {summary['sha256'][:12]}…, {checked}")


@command
def report(
    mixture: Annotated[Path, typer.Argument(help="MIXTURE.jsonl with its manifest beside it.")],
    out: Out = Path("report.html"),
    top: Annotated[int, typer.Option(help="Tasks shown in the budget figure and table.")] = 25,
    eval_rows: Annotated[int, typer.Option(help="Rows sampled (with --seed) to evaluate coverage.")] = 50_000,
    draws: Annotated[int, typer.Option(help="Random baseline draws averaged.")] = 3,
    threshold: Annotated[float, typer.Option(help="Cosine above which two rows are near-duplicates.")] = 0.95,
    emb_dir: Annotated[Path | None, typer.Option(help="EMB_DIR, if not where the manifest says.")] = None,
    seed: Seed = defaults.SEED,
) -> None:
    """Write a self-contained HTML report: budgets, shares, task map, and what each stage bought."""
    from smart_cli.report import ReportConfig, write_report

    cfg = ReportConfig(top=top, eval_rows=eval_rows, draws=draws, threshold=threshold, emb_dir=emb_dir, seed=seed)
    summary = write_report(mixture, out, cfg, reporter=_state.reporter)
    _state.done(_Result("report", summary, f"wrote {out}"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
