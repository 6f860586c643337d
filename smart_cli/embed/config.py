"""``embed``'s options and their defaults (recipes in ``configs/`` override them by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

from smart_cli import chat, data, defaults, sources
from smart_cli.errors import UsageError, param


@dataclass
class EmbedConfig:
    """Defaults of ``smart-cli embed``; recipes in ``configs/`` override them by name."""

    split: str = "train"
    columns: data.Columns = field(default_factory=data.Columns)
    text: str = defaults.TEXT_MODES[0]
    model: str = defaults.MODEL
    backend: str = defaults.BACKENDS[0]
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    dtype: str = defaults.DTYPES[0]
    # Inference precision of the transformer backend (bf16: autocast); the static one has none.
    precision: str = defaults.PRECISIONS[0]
    # The static backend's window (0: none; None: ``window``'s default); the transformer's is its model's.
    max_tokens: int | None = None
    shard_rows: int = defaults.SHARD_ROWS
    #: Static backend: stage 1's task means from the transformer on ``task_sample`` rows per task
    #: (None: ``transformer``), or ``rows``: the static vectors' own means.
    task_means: str | None = None
    task_sample: int = defaults.TASK_SAMPLE
    #: Static backend: every row through the affine map to the transformer fitted on that sample
    #: (None: ``transformer``), or ``none``: the static vectors as they are.
    row_map: str | None = None
    #: Set by ``embed`` itself, not an option: the map file the static encoder applies (workers load it).
    static_map: str | None = None
    trust_remote_code: bool = False
    # Recorded per row as rows.parquet's ``source`` (for --cap flan2022 and the report); a dataset
    # without this column is fine: the folder then has no ``source``.
    source_column: str | None = "task_source"
    # Chat rows (``columns.messages`` set): system turns in the embedded text, extra role names
    # ("bot=assistant,narrator=system"), and what a malformed conversation does.
    system_turns: str = chat.SYSTEM_TURNS[0]
    role_map: str | None = None
    bad_rows: str = chat.BAD_ROWS[0]
    #: ``"dataset"``: each row's task is the name of the dataset it comes from (no task column).
    task_from: str | None = None
    #: A hub dataset's config and revision (branch, tag or commit).
    name: str | None = None
    revision: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.columns.messages is not None

    @property
    def stage1(self) -> str:
        """Where stage 1's task means come from: ``transformer`` (a sample, for a static folder) or ``rows``."""
        if self.backend != "static":
            return "rows"
        return self.task_means or defaults.TASK_MEANS[0]

    @property
    def row_kind(self) -> str:
        """How a static folder's rows reach the transformer's space (``defaults.ROW_MAPS``)."""
        return self.row_map or defaults.ROW_MAPS[0]

    @property
    def maps_rows(self) -> bool:
        """The static rows are stored through a map to the transformer's space (tokens or affine)."""
        return self.backend == "static" and self.row_kind != "none"

    @property
    def samples_teacher(self) -> bool:
        """``embed`` embeds a sample of each task with the transformer (for the task means or the map)."""
        return self.stage1 == "transformer" or self.maps_rows

    def window(self, model: str) -> int | None:
        """The static backend's window for the transformer folder ``model`` (None for a transformer folder):
        ``max_tokens`` where given; else the transformer's own where ``embed`` samples it (the map and
        the task means then relate the same text), else ``defaults.STATIC_MAX_TOKENS``."""
        from smart_cli.backends.base import model_window

        if self.backend != "static":
            return None
        if self.max_tokens is not None:
            return self.max_tokens
        return (model_window(model) if self.samples_teacher else None) or defaults.STATIC_MAX_TOKENS

    def validate(self) -> None:
        for name, choices in (
            ("text", chat.TEXT_MODES if self.is_chat else defaults.TEXT_MODES),
            ("system_turns", chat.SYSTEM_TURNS),
            ("bad_rows", chat.BAD_ROWS),
            ("dtype", defaults.DTYPES),
            ("backend", defaults.BACKENDS),
            ("precision", defaults.PRECISIONS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise UsageError(f"unknown {param(name)} {value!r}; choose from {', '.join(choices)}")
        precision = param("precision")
        if self.precision != "fp32" and self.backend != "transformer":
            raise UsageError(f"{precision} {self.precision} applies to {param('backend')} transformer only")
        if self.precision != "fp32" and self.device and "," in self.device:
            raise UsageError(f"{precision} {self.precision} needs one device; several GPUs run in fp32")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise UsageError(f"{param('max_tokens')} must be at least 0 (0: no window), got {self.max_tokens}")
        if self.max_tokens is not None and self.backend != "static":
            raise UsageError(f"{param('max_tokens')} applies to {param('backend')} static only")
        if self.batch_size < 1:
            raise UsageError(f"{param('batch_size')} must be at least 1")
        if self.shard_rows < 1:
            raise UsageError(f"{param('shard_rows')} must be at least 1")
        self._check_task_means()
        chat.check_options(self.is_chat, self.role_map, self.system_turns, self.bad_rows)
        if self.task_from is not None and self.task_from not in sources.TASK_FROM:
            raise UsageError(
                f"unknown {param('task_from')} {self.task_from!r}; choose from {', '.join(sources.TASK_FROM)}"
            )

    def _check_task_means(self) -> None:
        if self.task_means is not None and self.task_means not in defaults.TASK_MEANS:
            raise UsageError(
                f"unknown {param('task_means')} {self.task_means!r}; choose from {', '.join(defaults.TASK_MEANS)}"
            )
        if self.task_means == "transformer" and self.backend != "static":
            raise UsageError(
                f"{param('task_means')} transformer applies to {param('backend')} static only "
                "(a transformer folder's row means are the transformer's)"
            )
        if self.row_map is not None and self.row_map not in defaults.ROW_MAPS:
            raise UsageError(f"unknown {param('row_map')} {self.row_map!r}; choose from {', '.join(defaults.ROW_MAPS)}")
        if self.row_map in ("tokens", "transformer") and self.backend != "static":
            raise UsageError(f"{param('row_map')} {self.row_map} applies to {param('backend')} static only")
        if self.task_sample < 1:
            raise UsageError(f"{param('task_sample')} must be at least 1, got {self.task_sample}")
        if self.task_sample != defaults.TASK_SAMPLE and not self.samples_teacher:
            raise UsageError(
                f"{param('task_sample')} applies to {param('backend')} static with {param('task_means')} "
                f"or {param('row_map')} tokens or transformer"
            )
