"""The commands around a mixture: ``verify``, ``report``, and ``cache info|clear``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from smart_cli import defaults
from smart_cli.cli.app import EmbDir, Out, Seed, _state, app, command
from smart_cli.cli.stages import _Result
from smart_cli.console import print_json


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
    toward = f"; {summary['query_headline']}" if "query_headline" in summary else ""  # a targeted mixture
    _state.done(_Result("report", summary, f"wrote {out}{toward}"))


cache_app = typer.Typer(help="Show or free the greedy orders kept in EMB_DIR/cache/.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@functools.partial(command, group=cache_app, name="info")
def cache_info(emb_dir: EmbDir) -> None:
    """Entries and bytes of EMB_DIR's order cache, per kind (tasks, samples) and function."""
    from smart_cli import order_cache

    held = order_cache.info(emb_dir)
    rows = [[k, f, f"{v['entries']:,}", f"{v['bytes']:,}"] for k, fs in held["kinds"].items() for f, v in fs.items()]
    columns = [("kind", "left"), ("function", "left"), ("entries", "right"), ("bytes", "right")]
    _state.reporter.table(f"{held['path']}: {held['entries']:,} entries, {held['bytes']:,} bytes", columns, rows)
    _state.done(_Result("cache info", held, f"{held['entries']:,} entries, {held['bytes']:,} bytes in {held['path']}"))


@functools.partial(command, group=cache_app, name="clear")
def cache_clear(emb_dir: EmbDir) -> None:
    """Remove EMB_DIR's order cache (later runs compute the orders again, with the same output)."""
    from smart_cli import order_cache

    held = order_cache.clear(emb_dir)
    _state.done(_Result("cache clear", held, f"removed {held['entries']:,} entries, {held['bytes']:,} bytes"))
