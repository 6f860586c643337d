"""Measure a mixture against its baselines and assemble the report page."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smart_cli import artifacts, baselines, defaults, manifest
from smart_cli.errors import DataError, UsageError, param
from smart_cli.report import metrics
from smart_cli.report import targeted as toward_query
from smart_cli.reporter import Reporter, or_silent


@dataclass
class ReportConfig:
    """Defaults of ``smart-cli report``."""

    top: int = 25  # tasks in the budget figure and table
    eval_rows: int = 50_000  # evaluation rows sampled for coverage (and mixture rows probed for duplicates)
    draws: int = 3  # random baseline draws
    threshold: float = 0.95  # cosine above which two rows are near-duplicates
    emb_dir: Path | None = None  # EMB_DIR, if not where the manifest says
    seed: int = defaults.SEED

    def validate(self) -> None:
        for name in ("top", "eval_rows", "draws"):
            if getattr(self, name) < 1:
                raise UsageError(f"{param(name)} must be at least 1")
        if not -1.0 < self.threshold <= 1.0:
            raise UsageError(f"{param('threshold')} must be in (-1, 1], got {self.threshold}")


def _positions(es: artifacts.EmbeddingSet, rows: list) -> np.ndarray:
    """Positions in EMB_DIR of the mixture's source rows."""
    rows_arr = np.asarray(rows, dtype=np.int64)
    if len(rows_arr) == 0:
        raise DataError("the mixture is empty: nothing to report")
    pos_of = np.full(int(max(es.rows.max(), rows_arr.max())) + 1, -1, dtype=np.int64)
    pos_of[es.rows] = np.arange(len(es.rows))
    positions = pos_of[rows_arr] if rows_arr.min() >= 0 else np.full(len(rows_arr), -1)
    if (positions < 0).any():
        raise DataError(f"the mixture names rows that are not in {es.path}")
    return positions


def measure(
    es: artifacts.EmbeddingSet, mixture: np.ndarray, cfg: ReportConfig, reporter: Reporter | None = None
) -> dict:
    """Coverage and near-duplicate rate of ``mixture`` (EMB_DIR positions) and of its two baselines:
    random rows with the same (task, template) counts, and an examples-proportional mixture of the
    same size over all tasks (random rows inside tasks)."""
    emb = es.embeddings
    n = len(es.task_codes)
    groups = metrics.groups(es.task_codes, es.template_codes)
    keys = list(zip(es.task_codes[mixture].tolist(), es.template_codes[mixture].tolist()))
    counts = dict(Counter(keys))
    selected = sorted({t for t, _ in counts})
    in_tasks = np.flatnonzero(np.isin(es.task_codes, selected))
    eval_in = metrics.subsample(in_tasks, cfg.eval_rows, np.random.default_rng([cfg.seed, 0]))
    eval_all = metrics.subsample(np.arange(n), cfg.eval_rows, np.random.default_rng([cfg.seed, 1]))

    def dup(pos: np.ndarray, k: int) -> float:
        return metrics.near_duplicate_rate(
            emb, pos, cfg.threshold, np.random.default_rng([cfg.seed, 2, k]), cfg.eval_rows
        )

    sizes = es.task_sizes()
    order = baselines.order_by_size(sizes)
    prop = baselines.proportional_budgets(len(mixture), [int(sizes[i]) for i in order])
    prop_counts = metrics.group_counts(groups, es.template_names, {int(i): b for i, b in zip(order, prop)})

    total = 2 + 4 * cfg.draws
    with or_silent(reporter).progress("measuring coverage", total) as advance:
        ours_in = metrics.coverage(emb, eval_in, mixture)
        ours_all = metrics.coverage(emb, eval_all, mixture)
        ours_dup = dup(mixture, 0)
        advance(2)
        rand: dict[str, list] = {"best": [], "coverage": [], "dup": []}
        prop_runs: dict[str, list] = {"best": [], "coverage": [], "dup": []}
        for k in range(cfg.draws):
            pos = metrics.random_rows(groups, counts, np.random.default_rng([cfg.seed, 3, k]))
            best = metrics.coverage(emb, eval_in, pos)
            rand["best"].append(best)
            rand["coverage"].append(float(best.mean()))
            rand["dup"].append(dup(pos, k + 1))
            advance(2)
            pos = metrics.random_rows(groups, prop_counts, np.random.default_rng([cfg.seed, 4, k]))
            best = metrics.coverage(emb, eval_all, pos)
            prop_runs["best"].append(best)
            prop_runs["coverage"].append(float(best.mean()))
            prop_runs["dup"].append(dup(pos, 100 + k))
            advance(2)
    return {
        "selected_tasks": selected,
        "task_counts": np.bincount(es.task_codes[mixture], minlength=len(es.task_names)),
        "rows_in_selected": int(len(in_tasks)),
        "eval_in": int(len(eval_in)),
        "eval_all": int(len(eval_all)),
        "inside": {"best": ours_in, "coverage": float(ours_in.mean()), "dup": ours_dup},
        "collection": {"best": ours_all, "coverage": float(ours_all.mean()), "dup": ours_dup},
        "random": rand,
        "proportional": prop_runs,
    }


def write_report(
    mixture: str | Path, out: str | Path, cfg: ReportConfig | None = None, *, reporter: Reporter | None = None
) -> dict:
    """Write the HTML report of ``mixture`` (found with its manifest) to ``out``; return the headline numbers."""
    cfg = cfg or ReportConfig()
    cfg.validate()
    mixture = Path(mixture)
    man = manifest.read(mixture)
    emb_dir = cfg.emb_dir or (man.get("paths") or {}).get("embeddings")
    if not emb_dir:
        raise DataError(f"{manifest.manifest_path(mixture)} records no embeddings folder: pass {param('emb_dir')}")
    es = artifacts.open_embeddings(emb_dir)
    expected = (man.get("embedding") or {}).get("fingerprint")
    if expected and expected != es.fingerprint:
        raise DataError(f"{emb_dir} is not the embeddings folder this mixture was made from (fingerprints differ)")
    positions = _positions(es, man.get("rows") or [])
    stats = measure(es, positions, cfg, reporter)
    toward = toward_query.measure(man, es, positions, cfg.draws, cfg.seed)  # None unless made with --query
    html = render(man, es, positions, stats, cfg, mixture, toward)
    with artifacts.atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    rand, prop = stats["random"], stats["proportional"]
    return {
        "out": str(out),
        "bytes": Path(out).stat().st_size,
        "lines": int(len(positions)),
        "tasks_selected": len(stats["selected_tasks"]),
        "tasks": len(es.task_names),
        "coverage_selected": round(stats["inside"]["coverage"], 6),
        "coverage_selected_random": round(float(np.mean(rand["coverage"])), 6),
        "dup_rate": round(stats["inside"]["dup"], 6),
        "dup_rate_random": round(float(np.mean(rand["dup"])), 6),
        "coverage_collection": round(stats["collection"]["coverage"], 6),
        "coverage_collection_proportional": round(float(np.mean(prop["coverage"])), 6),
        "dup_rate_proportional": round(float(np.mean(prop["dup"])), 6),
        "eval_rows_selected": stats["eval_in"],
        "eval_rows_collection": stats["eval_all"],
        **toward_query.summary(toward),
    }


def render(
    man: dict, es, positions: np.ndarray, stats: dict, cfg: ReportConfig, mixture: Path, toward: dict | None = None
) -> str:
    """The report page: header, headline cards, one section per part of the page (see ``sections``)."""
    from smart_cli.report import page, sections
    from smart_cli.task_means import task_means

    r = sections.Report.of(man, es, positions, stats, cfg, mixture)
    xy = metrics.pca_2d(task_means(es))
    title, kicker, subtitle, chips = sections.header(r)
    body = [
        sections.budgets(r),
        sections.shares(r),
        sections.task_map(r, xy),
        sections.stage2(r),
        sections.stage1(r),
        toward_query.section(toward, cfg.top),
        sections.method(r),
        sections.provenance(r),
    ]
    return page.page(title, kicker, subtitle, chips, sections.cards(r), body, sections.footer(r))
