"""Measure a mixture against its baselines and assemble the report page."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from smart_cli import artifacts, baselines, console, manifest
from smart_cli.errors import DataError, UsageError
from smart_cli.report import metrics

SUBMODULAR = ("gc", "fl", "logdet")


@dataclass
class ReportConfig:
    """Defaults of ``smart-cli report``."""

    top: int = 25  # tasks in the budget figure and table
    eval_rows: int = 50_000  # evaluation rows sampled for coverage (and mixture rows probed for duplicates)
    draws: int = 3  # random baseline draws
    threshold: float = 0.95  # cosine above which two rows are near-duplicates
    emb_dir: Path | None = None  # EMB_DIR, if not where the manifest says
    seed: int = 23

    def validate(self) -> None:
        for name in ("top", "eval_rows", "draws"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if not -1.0 < self.threshold <= 1.0:
            raise UsageError(f"--threshold must be in (-1, 1], got {self.threshold}")


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


def measure(es: artifacts.EmbeddingSet, mixture: np.ndarray, cfg: ReportConfig) -> dict:
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
    with console.progress("measuring coverage", total) as advance:
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


def write_report(mixture: str | Path, out: str | Path, cfg: ReportConfig | None = None) -> dict:
    """Write the HTML report of ``mixture`` (found with its manifest) to ``out``; return the headline numbers."""
    cfg = cfg or ReportConfig()
    cfg.validate()
    mixture = Path(mixture)
    man = manifest.read(mixture)
    emb_dir = cfg.emb_dir or (man.get("paths") or {}).get("embeddings")
    if not emb_dir:
        raise DataError(f"{manifest.manifest_path(mixture)} records no embeddings folder: pass --emb-dir")
    es = artifacts.open_embeddings(emb_dir)
    expected = (man.get("embedding") or {}).get("fingerprint")
    if expected and expected != es.fingerprint:
        raise DataError(f"{emb_dir} is not the embeddings folder this mixture was made from (fingerprints differ)")
    positions = _positions(es, man.get("rows") or [])
    stats = measure(es, positions, cfg)
    html = render(man, es, positions, stats, cfg, mixture)
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
    }


def _labels(man: dict) -> tuple[str, str]:
    """A short name of this mixture's method, and of its task / row functions."""
    f1 = (man.get("select_tasks") or {}).get("function") or "?"
    f2 = (man.get("select_samples") or {}).get("function") or "?"
    if f1 in SUBMODULAR:
        name = "SMART"
    else:
        name = {"random": "random tasks"}.get(f1, f1)
    return name, f"{f1} → {f2}"


def render(man: dict, es, positions: np.ndarray, stats: dict, cfg: ReportConfig, mixture: Path) -> str:
    from smart_cli.report import figures, page
    from smart_cli.select_tasks import task_means

    info, st, ss = man["mixture"], man.get("select_tasks") or {}, man.get("select_samples") or {}
    ds, emb = man.get("dataset") or {}, man.get("embedding") or {}
    ours, functions = _labels(man)
    subject = ours if ours == "SMART" else f"The {ours} mixture"
    n_rows, n_tasks, n_mix = len(es.task_codes), len(es.task_names), int(len(positions))
    sources = artifacts.task_sources(es) or [None] * n_tasks
    colours = figures.source_colours(sources)
    counts = stats["task_counts"]
    sizes = es.task_sizes()
    selected = {int(i): int(counts[i]) for i in stats["selected_tasks"]}
    by_name = {t["task"]: t for t in man.get("tasks", [])}
    task_rows = [
        {
            **by_name.get(es.task_names[i], {}),
            "task": es.task_names[i],
            "source": sources[i],
            "count": c,
            "size": int(sizes[i]),
        }
        for i, c in selected.items()
    ]
    task_rows.sort(key=lambda t: (-t["count"], t["task"]))
    inside, coll, rand, prop = stats["inside"], stats["collection"], stats["random"], stats["proportional"]
    rand_cov, rand_dup = float(np.mean(rand["coverage"])), float(np.mean(rand["dup"]))
    prop_cov, prop_dup = float(np.mean(prop["coverage"])), float(np.mean(prop["dup"]))
    share_selected = stats["rows_in_selected"] / max(n_rows, 1)

    # Shares of the mixture vs the collection, by source and by template type.
    mix_tasks, mix_templates = es.task_codes[positions], es.template_codes[positions]
    src_all = Counter(sources[t] for t in es.task_codes.tolist())
    src_mix = Counter(sources[t] for t in mix_tasks.tolist())
    by_source = [
        (str(s) if s is not None else "unknown", src_mix[s] / n_mix, c / n_rows) for s, c in src_all.most_common()
    ]
    if not any(sources):
        by_source = []  # no source column recorded: the figure shows template types only
    tpl_all = np.bincount(es.template_codes, minlength=len(es.template_names))
    tpl_mix = np.bincount(mix_templates, minlength=len(es.template_names))
    by_template = [
        (str(name) if name is not None else "none", tpl_mix[j] / n_mix, tpl_all[j] / n_rows)
        for j, name in enumerate(es.template_names)
    ]

    xy = metrics.pca_2d(task_means(es))
    fig_budget = figures.budgets(task_rows, colours, cfg.top)
    fig_shares = figures.shares(by_source, by_template)
    fig_map = figures.task_map(xy, sizes, selected, sources, colours, es.task_names)
    rand_label = "random rows"
    prop_label = "proportional"
    mine = "SMART" if ours == "SMART" else "this mixture"
    fig_in = figures.stage(inside, rand, mine, rand_label, cfg.threshold, "selected tasks'")
    fig_all = figures.stage(coll, prop, mine, prop_label, cfg.threshold, "collection")

    def sampled(k: int, of: int, what: str) -> str:
        return f"all {of:,} {what}" if k >= of else f"a random sample of {k:,} of the {of:,} {what} (seed {cfg.seed})"

    eval_in_text = sampled(stats["eval_in"], stats["rows_in_selected"], "rows of the selected tasks")
    eval_all_text = sampled(stats["eval_all"], n_rows, "rows of the collection")
    probe_text = sampled(min(cfg.eval_rows, n_mix), n_mix, "mixture rows")
    fmt3, pct = "{:.3f}", "{:.1%}"

    cards = [
        page.card(
            "Mixture", f"{n_mix:,} rows", f"{len(selected):,} of {n_tasks:,} tasks · {escape(info.get('format') or '')}"
        ),
        page.card(
            "Coverage in selected tasks",
            fmt3.format(inside["coverage"]),
            f"{page.delta(inside['coverage'], rand_cov, fmt3)} vs {rand_cov:.3f} for random rows",
        ),
        page.card(
            f"Near-duplicates (cos > {cfg.threshold:g})",
            pct.format(inside["dup"]),
            f"{page.delta(100 * inside['dup'], 100 * rand_dup, '{:.1f} pts', False)} vs {rand_dup:.1%} for random rows",
        ),
        page.card(
            "Coverage of the collection",
            fmt3.format(coll["coverage"]),
            f"{page.delta(coll['coverage'], prop_cov, fmt3)} vs {prop_cov:.3f} examples-proportional",
        ),
        page.card("Selected tasks hold", f"{share_selected:.0%}", f"of the collection's {n_rows:,} rows"),
    ]

    inside_better = inside["coverage"] > rand_cov
    if ss.get("function") == "random":
        stage2_text = (
            "This mixture's rows are random inside their tasks too, so both sides are random draws "
            f"({inside['coverage']:.3f} vs {rand_cov:.3f} mean best similarity)."
        )
    else:
        stage2_text = (
            f"Inside the selected tasks, <b>{escape(str(ss.get('function')))}</b> picks "
            f"{'cover' if inside_better else 'do not cover'} the tasks' rows better than random rows with the "
            "same per-task budgets: "
            f"mean best similarity <b>{inside['coverage']:.3f}</b> vs {rand_cov:.3f}; "
            f"{'fewer' if inside['dup'] <= rand_dup else 'more'} near-duplicates "
            f"(<b>{inside['dup']:.1%}</b> vs {rand_dup:.1%})."
        )
    gap = coll["coverage"] - prop_cov
    if gap < 0 and len(selected) < n_tasks:
        stage1_text = (
            f"<b>{escape(subject)}'s task pruning covers the whole collection less well than spreading the same "
            f"{n_mix:,} rows over all {n_tasks:,} tasks in proportion to their size</b> "
            f"({coll['coverage']:.3f} vs {prop_cov:.3f} mean best similarity). That is by design: it spends the "
            f"budget on {len(selected):,} representative tasks that hold {share_selected:.0%} of the rows, so rows "
            "of the tasks it leaves out lie farther from the mixture. What the paper claims for SMART is better "
            "downstream scores (MMLU, BBH) at equal budget, not better coverage of the collection."
        )
    else:
        how = "about as well as" if abs(gap) < 0.005 else "better than" if gap > 0 else "less well than"
        stage1_text = (
            f"{escape(subject)} covers the whole collection {how} an examples-proportional mixture of the same size "
            f"({coll['coverage']:.3f} vs {prop_cov:.3f} mean best similarity), with {len(selected):,} of "
            f"{n_tasks:,} tasks."
        )
    stage1_text += f" Near-duplicates: {coll['dup']:.1%} vs {prop_dup:.1%}."

    table_rows = [
        [
            str(k),
            f'<span class="dot" style="background:{colours.get(t.get("source"), figures.UNKNOWN)}"></span>'
            f"{escape(t['task'])}",
            escape(str(t.get("source") or "–")),
            f"{t['gain']:.3f}" if isinstance(t.get("gain"), (int, float)) else "–",
            f"{t['weight']:.4f}" if isinstance(t.get("weight"), (int, float)) else "–",
            f"{t['count']:,}",
            f"{t['size']:,}",
            f"{t['count'] / max(t['size'], 1):.0%}",
        ]
        for k, t in enumerate(task_rows[: cfg.top], 1)
    ]
    more = len(task_rows) - cfg.top
    tasks_table = page.table(["#", "task", "source", "gain", "weight", "rows", "task size", "taken"], table_rows, 3)
    if more > 0:
        tasks_table += f'<p class="lead" style="font-size:13px">… and {more:,} more tasks (all in the manifest).</p>'

    sections = [
        page.section(
            "Where the rows go",
            f"The {min(cfg.top, len(task_rows))} tasks with the most rows in the mixture, out of "
            f"{len(task_rows):,} selected. Stage 1 ({escape(str(st.get('function')))}) gave each a budget from "
            "its gain; a task smaller than its budget gives all its rows and the rest is spread over the others.",
            page.figure(
                fig_budget,
                "rows per task",
                "Rows in the mixture per task (coloured by source) against the rows the task has (grey).",
            )
            + tasks_table,
            "budgets",
        ),
        page.section(
            "Shares by source and template type",
            "How the mixture's rows split by task source and by template type, next to the whole collection.",
            page.figure(
                fig_shares,
                "shares",
                "Share of rows, mixture (blue) vs collection (grey)."
                + ("" if any(sources) else " No task source was recorded: embed with --source-column."),
            ),
            "shares",
        ),
        page.section(
            "Map of the tasks",
            f"Every task's mean embedding, projected on its first two principal components (PCA of the "
            f"{n_tasks:,} task means). Selected tasks are coloured by source and sized by their rows in the mixture.",
            page.figure(
                fig_map,
                "task map",
                f"Grey: tasks left out, sized by their rows. The {min(8, len(selected))} "
                "largest selected tasks are labelled.",
            ),
            "map",
        ),
        page.section(
            "What stage 2 bought: rows inside the selected tasks",
            f"The mixture against random rows with the same budget in every (task, template) group, "
            f"{cfg.draws} draw{'s' if cfg.draws > 1 else ''} (band and whiskers: min to max).",
            page.callout(
                stage2_text, good=inside_better and inside["dup"] <= rand_dup, neutral=ss.get("function") == "random"
            )
            + page.figure(
                fig_in,
                "stage 2",
                f"Coverage of {eval_in_text}: each row's best cosine similarity to a "
                f"mixture row. Near-duplicates: share of {probe_text} whose nearest other mixture row "
                f"has cosine above {cfg.threshold:g}.",
            ),
            "stage2",
        ),
        page.section(
            "What stage 1 bought: the whole collection",
            f"The mixture against an examples-proportional mixture of the same {n_mix:,} rows over all "
            f"{n_tasks:,} tasks (budgets proportional to task size, random rows inside tasks), "
            f"{cfg.draws} draw{'s' if cfg.draws > 1 else ''}.",
            page.callout(stage1_text, good=gap > -0.005)
            + page.figure(fig_all, "stage 1", f"Coverage of {eval_all_text}. Near-duplicates as above."),
            "stage1",
        ),
        page.section(
            "How this was measured",
            "Similarities are cosine similarities of the unit-normalised embeddings in EMB_DIR, computed in "
            "blocks (never a full n × n matrix).",
            page.kv(
                [
                    ("coverage, selected tasks", eval_in_text),
                    ("coverage, collection", eval_all_text),
                    ("near-duplicates", f"{probe_text}; cosine > {cfg.threshold:g} to the nearest other row"),
                    ("baseline draws", f"{cfg.draws}, seeds derived from {cfg.seed}"),
                ]
            ),
            "method",
        ),
        page.section(
            "Provenance",
            "From the manifest beside the mixture; <code>smart-cli verify</code> re-checks it.",
            page.kv(
                [
                    ("mixture", f"{mixture} ({info.get('lines', n_mix):,} lines, {info.get('format')})"),
                    ("sha256", str(man.get("sha256"))),
                    ("dataset", f"{ds.get('spec')} · split {ds.get('split')} · {_revision(ds)}"),
                    ("columns", ", ".join(f"{k}={v}" for k, v in (man.get("columns") or {}).items())),
                    ("embedding", f"{emb.get('model')} ({emb.get('text')}, {emb.get('dim')}-d, {emb.get('dtype')})"),
                    ("stage 1", _params(st, ("function", "lambda", "num_tasks", "budget", "seed", "cap"))),
                    ("stage 2", _params(ss, ("function", "lambda", "seed"))),
                    ("embeddings", str(es.path)),
                    ("samples", str((man.get("paths") or {}).get("samples"))),
                    ("tool", f"{man['producer'].get('name')} {man['producer'].get('version')}"),
                ]
            ),
            "provenance",
        ),
    ]
    chips = page.chips(
        [
            ("dataset", str(ds.get("spec") or "?")),
            ("model", str(emb.get("model") or "?")),
            ("stages", functions),
            ("λ", "–" if st.get("lambda") is None else str(st.get("lambda"))),
            ("M'", f"{st.get('num_tasks')}"),
            ("N'", f"{st.get('budget', n_mix):,}"),
            ("seed", str(st.get("seed"))),
            ("format", str(info.get("format"))),
        ]
    )
    producer = man.get("producer") or {}
    foot = (
        f"Generated by {escape(str(producer.get('name')))} {escape(str(producer.get('version')))} from "
        f"{escape(manifest.manifest_path(mixture).name)} · sha256 {escape(str(man.get('sha256'))[:16])}…"
    )
    return page.page(
        f"{ours[:1].upper()}{ours[1:]} mixture report",
        "smart-cli report",
        f"{mixture.name} · {n_mix:,} rows from {n_tasks:,} tasks of {ds.get('spec') or 'the dataset'}",
        chips,
        "".join(cards),
        sections,
        foot,
    )


def _params(doc: dict, keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={doc.get(k)}" for k in keys if doc.get(k) is not None)


def _revision(identity: dict) -> str:
    if identity.get("revision"):
        return f"revision {identity['revision']}"
    return "local files" if identity.get("local") else "revision unknown"
