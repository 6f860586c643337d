"""The commands of the four stages and ``run``: each builds its stage's config, calls its ``run``, prints."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from smart_cli import defaults
from smart_cli.cli.app import EmbDir, Eta, GreedyBackend, Kernel, Lambda, NoCache, Out, Query, Seed, _state, command

# What is embedded and how (embed).
Text = Annotated[
    str,
    typer.Option(help="What to embed: prompt or prompt+response; chat rows: prompt, last-user, user, conversation."),
]
Precision = Annotated[
    str, typer.Option(help="Transformer inference: fp32, or bf16 (autocast; faster on CPUs with AVX512-BF16).")
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        help="Static backend: tokens of a text that count (0: all); the rest is not tokenized. Default: the "
        "transformer's own window (254 for the packaged model) where a sample of it is embedded, else 512.",
        show_default=False,
    ),
]
# Stage 1's task means of a static folder (embed).
TaskMeans = Annotated[
    str | None,
    typer.Option(
        help="Static backend: stage 1's task means from the transformer on a sample of each task's rows "
        "(transformer, the default), or the static rows' own (rows).",
        show_default=False,
    ),
]
RowMap = Annotated[
    str | None,
    typer.Option(
        help="Static backend: store every row in the transformer's space through token vectors fitted on "
        "that sample (tokens, the default) or one affine map fitted on it (transformer), or as the static "
        "model gives it (none).",
        show_default=False,
    ),
]
TaskSample = Annotated[
    int, typer.Option(help="Static backend: rows per task the transformer embeds for the task means.")
]

# Chat rows and several datasets (embed).
MessagesColumn = Annotated[
    str | None,
    typer.Option(help="Chat rows: column of conversations ({role, content} or ShareGPT {from, value} turns)."),
]
SystemTurns = Annotated[str, typer.Option(help="Chat rows: keep or drop system turns in the text.")]
RoleMap = Annotated[str | None, typer.Option(help="Chat rows: more role names, e.g. bot=assistant,narrator=system.")]
BadRows = Annotated[
    str, typer.Option(help="Chat rows: error on a malformed conversation (naming the row), or skip and count it.")
]
TaskFrom = Annotated[
    str | None, typer.Option(help="dataset: each row's task is the name of the dataset it comes from.")
]
# Where embed and select-samples run (never part of an artifact).
Engine = Annotated[str, typer.Option(help="local (this machine) or ray (a Ray cluster; same output).")]
Address = Annotated[
    str | None,
    typer.Option(
        help="--engine ray: the cluster, auto for the one started here [default: RAY_ADDRESS, else a new one]."
    ),
]
EmbedWorkers = Annotated[
    int | None,
    typer.Option(help="Encoder processes [default: 1; --engine ray: one actor per GPU, else per CPU].", min=1),
]


def _run(run, engine: str, address: str | None, workers: int | None, device: str | None = None, **options) -> None:
    """``run(reporter=, executor=)`` on the engine chosen, then its summary shown (Ray shut down if we started it).

    ``device``: embed's; unless ``cpu``, its Ray actors take one GPU each where the cluster has GPUs.
    """
    from smart_cli.engines import open_engine

    gpus = device != "cpu"
    with open_engine(engine, workers=workers, address=address, gpus=gpus, debug=_state.debug, **options) as executor:
        _state.done(run(reporter=_state.reporter, executor=executor))


@command
def embed(
    dataset: Annotated[
        list[str],
        typer.Argument(help="Hub id, save_to_disk folder, or parquet/jsonl/json/csv file(s); several: mixed into one."),
    ],
    out: Out,
    split: Annotated[str, typer.Option(help="Dataset split.")] = "train",
    prompt_column: Annotated[str, typer.Option(help="Column with the prompt.")] = "inputs",
    response_column: Annotated[str, typer.Option(help="Column with the response.")] = "targets",
    task_column: Annotated[str, typer.Option(help="Column with the task name.")] = "task_name",
    template_column: Annotated[
        str, typer.Option(help="Column with the template type; '' for none (one group per task).")
    ] = "template_type",
    text: Text = defaults.TEXT_MODES[0],
    model: Annotated[
        str, typer.Option(help="sentence-transformers id or local path (default: packaged, offline).")
    ] = defaults.MODEL,
    backend: Annotated[
        str, typer.Option(help="transformer, or static (fast distilled model2vec).")
    ] = defaults.BACKENDS[0],
    batch_size: Annotated[int, typer.Option(help="Texts per model batch.")] = defaults.BATCH_SIZE,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:0 or cuda:0,cuda:1 (several GPUs).")] = None,
    dtype: Annotated[str, typer.Option(help="float32, or float16 to halve the file.")] = defaults.DTYPES[0],
    precision: Precision = defaults.PRECISIONS[0],
    shard_rows: Annotated[int, typer.Option(help="Rows per resumable shard.")] = defaults.SHARD_ROWS,
    max_tokens: MaxTokens = None,
    task_means: TaskMeans = None,
    task_sample: TaskSample = defaults.TASK_SAMPLE,
    row_map: RowMap = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow model/dataset code from the hub.")] = False,
    source_column: Annotated[
        str, typer.Option(help="Column with the task source (for --cap flan2022 and the report); optional.")
    ] = "task_source",
    messages_column: MessagesColumn = None,
    system_turns: SystemTurns = "keep",
    role_map: RoleMap = None,
    bad_rows: BadRows = "error",
    task_from: TaskFrom = None,
    name: Annotated[str | None, typer.Option(help="Hub dataset: its config name.")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub dataset: a branch, tag or commit to read.")] = None,
    workers: EmbedWorkers = None,
    engine: Engine = defaults.ENGINES[0],
    address: Address = None,
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
        max_tokens=max_tokens,
        task_means=task_means,
        task_sample=task_sample,
        row_map=row_map,
        trust_remote_code=trust_remote_code,
        source_column=source_column or None,
        system_turns=system_turns,
        role_map=role_map,
        bad_rows=bad_rows,
        task_from=task_from,
        name=name,
        revision=revision,
    )
    _run(partial(stage.run, dataset[0] if len(dataset) == 1 else dataset, out, cfg), engine, address, workers, device)


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
        str | None,
        typer.Option(
            help="gc, fl, logdet, random; baselines: proportional (to task size), equal; with --query: flmi, "
            "flvmi, gcmi, logdetmi [default: gc; flmi with --query].",
            show_default=False,
        ),
    ] = None,
    lambda_: Lambda = None,
    seed: Seed = defaults.SEED,
    cap: Annotated[
        str | None,
        typer.Option(help="proportional/equal: most rows per task, N or flan2022 (FLAN 2022's per-source caps)."),
    ] = None,
    no_cache: NoCache = False,
    greedy_backend: GreedyBackend = defaults.GREEDY_BACKENDS[0],
    query: Query = None,
    eta: Eta = None,
) -> None:
    """Pick M' tasks by greedy submodular gain and split N' rows among them (TASKS.json).

    The full task order is kept in EMB_DIR/cache/ and every M' is its prefix; an existing TASKS.json
    for the same embeddings and options is left as it is (up to date).
    """
    from smart_cli import select_tasks as stage

    cfg = stage.TaskConfig(
        num_tasks=num_tasks,
        budget=budget,
        function=function,
        lambda_=lambda_,
        seed=seed,
        cap=cap,
        no_cache=no_cache,
        greedy_backend=greedy_backend,
        query=query,
        eta=eta,
    )
    _state.done(stage.run(emb_dir, out, cfg, reporter=_state.reporter))


@command
def select_samples(
    emb_dir: EmbDir,
    tasks: Annotated[Path, typer.Argument(help="TASKS.json written by `smart-cli select-tasks`.")],
    out: Out,
    function: Annotated[
        str | None,
        typer.Option(
            help="fl, gc, logdet or random; with --query: flmi, flvmi, gcmi, logdetmi [default: fl; random for a "
            "baseline's TASKS.json; flmi with --query]."
        ),
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
    workers: Annotated[
        int | None,
        typer.Option(help="Groups selected in parallel (same output) [default: 1; --engine ray: the cluster's CPUs]."),
    ] = None,
    no_cache: NoCache = False,
    greedy_backend: GreedyBackend = defaults.GREEDY_BACKENDS[0],
    query: Query = None,
    eta: Eta = None,
    engine: Engine = defaults.ENGINES[0],
    address: Address = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Memory the selection may take, e.g. 24G or 512M: kernels and parallel groups fit inside it "
            "[default: the memory available when it starts].",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the dense kernels' products run: cuda, cuda:1 (torch); the same bits as the CPU "
            "[default: numpy's BLAS on the CPU].",
            show_default=False,
        ),
    ] = None,
    kernel: Kernel = defaults.KERNELS[0],
) -> None:
    """Pick each selected task's rows by greedy submodular gain (SAMPLES.parquet).

    Each group's greedy order is kept in EMB_DIR/cache/: a later run with a budget inside it is a
    lookup. An existing SAMPLES.parquet for the same inputs and options is left as it is.
    """
    from smart_cli import select_samples as stage

    cfg = stage.SampleConfig(
        function=function,
        lambda_=lambda_,
        seed=seed,
        max_dense_rows=max_dense_rows,
        knn=knn,
        optimizer=optimizer,
        workers=1 if workers is None else workers,
        no_cache=no_cache,
        greedy_backend=greedy_backend,
        query=query,
        eta=eta,
        fixed_dense_limit=engine == "ray",  # the groups run elsewhere: not this machine's memory
        max_memory=max_memory,
        device=device,
        kernel=kernel,
    )
    cfg.objective()  # a wrong option is a usage error before any work (--workers 0 included)
    inputs = stage.SampleInputs(emb_dir, tasks)
    memory = cfg.memory()
    _run(partial(stage.run, inputs, out, cfg), engine, address, workers, memory=memory)


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
    """Run embed, select-tasks, select-samples and export from a recipe.

    Lists in select_tasks.num_tasks and/or budget run every (M', N') into OUT/m{M}-n{N}/ (a grid).
    """
    from smart_cli.pipeline import run_recipe

    summary = run_recipe(config, set_ or (), reporter=_state.reporter, wait_lock=_state.wait_lock, debug=_state.debug)
    line = f"mixture: {summary['path']} ({summary['lines']:,} lines)" if "path" in summary else ""
    if "mixtures" in summary:  # a grid
        line = f"{len(summary['mixtures'])} mixtures, each in its own m{{M}}-n{{N}} folder"
    _state.done(_Result("run", {"recipe": str(config), **summary}, line))
