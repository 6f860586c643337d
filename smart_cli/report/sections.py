"""The report page, one builder per section; the prose comes from ``templates/prose.yaml``.

``Report.of`` gathers what the sections share (labels, the selected tasks, the baselines' means,
what was sampled); each builder returns its part of the page as HTML, drawing its figure if it has
one. The templates are ``str.format`` strings: values that come from the data are escaped here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smart_cli import artifacts, manifest
from smart_cli.report import figures, page

if TYPE_CHECKING:
    from smart_cli.report.build import ReportConfig

SUBMODULAR = ("gc", "fl", "logdet")
TASK_HEADERS = ["#", "task", "source", "gain", "weight", "rows", "task size", "taken"]


@lru_cache(maxsize=1)
def prose() -> dict:
    """The page's prose, read once from the package's ``templates/prose.yaml``."""
    import yaml

    path = resources.files("smart_cli.report") / "templates" / "prose.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def labels(man: dict) -> tuple[str, str]:
    """A short name of this mixture's method, and of its task / row functions."""
    f1 = (man.get("select_tasks") or {}).get("function") or "?"
    f2 = (man.get("select_samples") or {}).get("function") or "?"
    if f1 in SUBMODULAR:
        name = "SMART"
    else:
        name = {"random": "random tasks"}.get(f1, f1)
    return name, f"{f1} → {f2}"


@dataclass
class Report:
    """What the sections share. ``fields`` are the numbers and phrases the prose templates name."""

    man: dict
    es: artifacts.EmbeddingSet
    positions: np.ndarray
    stats: dict
    cfg: ReportConfig
    mixture: Path
    ours: str
    sources: list
    colours: dict
    sizes: np.ndarray
    selected: dict[int, int]  # task code -> rows in the mixture
    task_rows: list[dict]  # the selected tasks, most rows first
    fields: dict[str, Any]

    @classmethod
    def of(cls, man: dict, es, positions: np.ndarray, stats: dict, cfg: ReportConfig, mixture: Path) -> Report:
        sources = artifacts.task_sources(es) or [None] * len(es.task_names)
        sizes = es.task_sizes()
        selected = {int(i): int(stats["task_counts"][i]) for i in stats["selected_tasks"]}
        return cls(
            man=man,
            es=es,
            positions=positions,
            stats=stats,
            cfg=cfg,
            mixture=mixture,
            ours=labels(man)[0],
            sources=sources,
            colours=figures.source_colours(sources),
            sizes=sizes,
            selected=selected,
            task_rows=_task_rows(man, es, sources, sizes, selected),
            fields=_fields(es, positions, stats, cfg, len(selected)),
        )


def _task_rows(man: dict, es, sources: list, sizes: np.ndarray, selected: dict[int, int]) -> list[dict]:
    """The selected tasks with their manifest entries, rows in the mixture and sizes; most rows first."""
    by_name = {t["task"]: t for t in man.get("tasks", [])}
    rows = [
        {
            **by_name.get(es.task_names[i], {}),
            "task": es.task_names[i],
            "source": sources[i],
            "count": c,
            "size": int(sizes[i]),
        }
        for i, c in selected.items()
    ]
    rows.sort(key=lambda t: (-t["count"], t["task"]))
    return rows


def _fields(es, positions: np.ndarray, stats: dict, cfg: ReportConfig, n_selected: int) -> dict[str, Any]:
    n_rows, n_mix = len(es.task_codes), int(len(positions))
    inside, coll, rand, prop = stats["inside"], stats["collection"], stats["random"], stats["proportional"]
    return {
        "n_mix": n_mix,
        "n_tasks": len(es.task_names),
        "n_rows": n_rows,
        "n_selected": n_selected,
        "cov_in": inside["coverage"],
        "dup_in": inside["dup"],
        "cov_all": coll["coverage"],
        "dup_all": coll["dup"],
        "rand_cov": float(np.mean(rand["coverage"])),
        "rand_dup": float(np.mean(rand["dup"])),
        "prop_cov": float(np.mean(prop["coverage"])),
        "prop_dup": float(np.mean(prop["dup"])),
        "share_selected": stats["rows_in_selected"] / max(n_rows, 1),
        "threshold": cfg.threshold,
        "draws": cfg.draws,
        "s": "s" if cfg.draws > 1 else "",
        "seed": cfg.seed,
        "eval_in": _sampled(stats["eval_in"], stats["rows_in_selected"], "rows_selected", cfg.seed),
        "eval_all": _sampled(stats["eval_all"], n_rows, "rows_collection", cfg.seed),
        "probe": _sampled(min(cfg.eval_rows, n_mix), n_mix, "rows_mixture", cfg.seed),
    }


def _sampled(k: int, of: int, what: str, seed: int) -> str:
    """Says whether all ``of`` rows were measured or a sample of ``k``."""
    t = prose()["sampled"]
    if k >= of:
        return t["all"].format(of=of, what=t[what])
    return t["some"].format(k=k, of=of, what=t[what], seed=seed)


def header(r: Report) -> tuple[str, str, str, str]:
    """The page's title, kicker, subtitle and chips."""
    t = prose()["header"]
    info, st, ds = r.man["mixture"], r.man.get("select_tasks") or {}, r.man.get("dataset") or {}
    n_mix = r.fields["n_mix"]
    title = t["title"].format(name=f"{r.ours[:1].upper()}{r.ours[1:]}")
    subtitle = t["subtitle"].format(
        file=r.mixture.name, n_mix=n_mix, n_tasks=r.fields["n_tasks"], spec=ds.get("spec") or "the dataset"
    )
    chips = page.chips(
        [
            ("dataset", str(ds.get("spec") or "?")),
            ("model", str((r.man.get("embedding") or {}).get("model") or "?")),
            ("stages", labels(r.man)[1]),
            ("λ", "–" if st.get("lambda") is None else str(st.get("lambda"))),
            ("M'", f"{st.get('num_tasks')}"),
            ("N'", f"{st.get('budget', n_mix):,}"),
            ("seed", str(st.get("seed"))),
            ("format", str(info.get("format"))),
        ]
    )
    return title, t["kicker"], subtitle, chips


def cards(r: Report) -> str:
    """The headline numbers, each against its baseline."""
    f = r.fields
    values = {
        **f,
        "format": escape(r.man["mixture"].get("format") or ""),
        "delta_cov_in": page.delta(f["cov_in"], f["rand_cov"], "{:.3f}"),
        "delta_dup_in": page.delta(100 * f["dup_in"], 100 * f["rand_dup"], "{:.1f} pts", False),
        "delta_cov_all": page.delta(f["cov_all"], f["prop_cov"], "{:.3f}"),
    }
    return "".join(
        page.card(c["label"].format(**values), c["value"].format(**values), c["note"].format(**values))
        for c in prose()["cards"]
    )


def _number(value, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, (int, float)) else "–"


def _task_cells(k: int, t: dict, colours: dict) -> list[str]:
    dot = f'<span class="dot" style="background:{colours.get(t.get("source"), figures.UNKNOWN)}"></span>'
    return [
        str(k),
        dot + escape(t["task"]),
        escape(str(t.get("source") or "–")),
        _number(t.get("gain"), "{:.3f}"),
        _number(t.get("weight"), "{:.4f}"),
        f"{t['count']:,}",
        f"{t['size']:,}",
        f"{t['count'] / max(t['size'], 1):.0%}",
    ]


def budgets(r: Report) -> str:
    """Where the rows go: the budget figure and the table of the largest selected tasks."""
    t, rows, top = prose()["budgets"], r.task_rows, r.cfg.top
    fig = figures.budgets(rows, r.colours, top)
    table = page.table(TASK_HEADERS, [_task_cells(k, row, r.colours) for k, row in enumerate(rows[:top], 1)], 3)
    if len(rows) > top:
        table += t["more"].format(more=len(rows) - top)
    function = escape(str((r.man.get("select_tasks") or {}).get("function")))
    lead = t["lead"].format(shown=min(top, len(rows)), n_selected=len(rows), function=function)
    return page.section(t["title"], lead, page.figure(fig, t["alt"], t["caption"]) + table, "budgets")


def _shares(r: Report) -> tuple[list, list]:
    """Shares of the mixture vs the collection, by source and by template type."""
    es, sources, n_mix, n_rows = r.es, r.sources, r.fields["n_mix"], r.fields["n_rows"]
    src_all = Counter(sources[t] for t in es.task_codes.tolist())
    src_mix = Counter(sources[t] for t in es.task_codes[r.positions].tolist())
    by_source = [
        (str(s) if s is not None else "unknown", src_mix[s] / n_mix, c / n_rows) for s, c in src_all.most_common()
    ]
    if not any(sources):
        by_source = []  # no source column recorded: the figure shows template types only
    tpl_all = np.bincount(es.template_codes, minlength=len(es.template_names))
    tpl_mix = np.bincount(es.template_codes[r.positions], minlength=len(es.template_names))
    by_template = [
        (str(name) if name is not None else "none", tpl_mix[j] / n_mix, tpl_all[j] / n_rows)
        for j, name in enumerate(es.template_names)
    ]
    return by_source, by_template


def shares(r: Report) -> str:
    """The mixture's shares by source and template type, next to the collection's."""
    t = prose()["shares"]
    fig = figures.shares(*_shares(r))
    caption = t["caption"] if any(r.sources) else t["caption_no_source"]
    return page.section(t["title"], t["lead"], page.figure(fig, t["alt"], caption), "shares")


def task_map(r: Report, xy: np.ndarray) -> str:
    """Every task's mean embedding in two dimensions (``xy``), the selected ones coloured."""
    t = prose()["map"]
    fig = figures.task_map(xy, r.sizes, r.selected, r.sources, r.colours, r.es.task_names)
    caption = t["caption"].format(labelled=min(8, len(r.selected)))
    return page.section(t["title"], t["lead"].format(**r.fields), page.figure(fig, t["alt"], caption), "map")


def _mine(r: Report) -> str:
    return "SMART" if r.ours == "SMART" else "this mixture"


def _stage2_text(r: Report, function) -> str:
    t, f = prose()["stage2"], r.fields
    if function == "random":
        return t["random"].format(**f)
    return t["chosen"].format(
        **f,
        function=escape(str(function)),
        cover="cover" if f["cov_in"] > f["rand_cov"] else "do not cover",
        fewer="fewer" if f["dup_in"] <= f["rand_dup"] else "more",
    )


def stage2(r: Report) -> str:
    """What stage 2 bought: the mixture against random rows with the same group budgets."""
    t, f = prose()["stage2"], r.fields
    inside, rand = r.stats["inside"], r.stats["random"]
    fig = figures.stage(inside, rand, _mine(r), "random rows", r.cfg.threshold, "selected tasks'")
    function = (r.man.get("select_samples") or {}).get("function")
    good = f["cov_in"] > f["rand_cov"] and f["dup_in"] <= f["rand_dup"]
    body = page.callout(_stage2_text(r, function), good=good, neutral=function == "random")
    body += page.figure(fig, t["alt"], t["caption"].format(**f))
    return page.section(t["title"], t["lead"].format(**f), body, "stage2")


def _stage1_text(r: Report) -> str:
    t, f = prose()["stage1"], r.fields
    subject = escape(r.ours if r.ours == "SMART" else f"The {r.ours} mixture")
    gap = f["cov_all"] - f["prop_cov"]
    if gap < 0 and f["n_selected"] < f["n_tasks"]:
        text = t["pruned"].format(**f, subject=subject)
    else:
        how = "about as well as" if abs(gap) < 0.005 else "better than" if gap > 0 else "less well than"
        text = t["compared"].format(**f, subject=subject, how=how)
    return f"{text} {t['duplicates'].format(**f)}"


def stage1(r: Report) -> str:
    """What stage 1 bought: the mixture against an examples-proportional one over all tasks."""
    t, f = prose()["stage1"], r.fields
    coll, prop = r.stats["collection"], r.stats["proportional"]
    fig = figures.stage(coll, prop, _mine(r), "proportional", r.cfg.threshold, "collection")
    body = page.callout(_stage1_text(r), good=f["cov_all"] - f["prop_cov"] > -0.005)
    body += page.figure(fig, t["alt"], t["caption"].format(**f))
    return page.section(t["title"], t["lead"].format(**f), body, "stage1")


def method(r: Report) -> str:
    """How the numbers were measured: what was sampled, the threshold, the draws."""
    t = prose()["method"]
    items = [(key, value.format(**r.fields)) for key, value in t["items"]]
    return page.section(t["title"], t["lead"], page.kv(items), "method")


def _params(doc: dict, keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={doc.get(k)}" for k in keys if doc.get(k) is not None)


def _revision(identity: dict) -> str:
    if identity.get("revision"):
        return f"revision {identity['revision']}"
    return "local files" if identity.get("local") else "revision unknown"


def provenance(r: Report) -> str:
    """Where the mixture came from, as its manifest records it."""
    t, man = prose()["provenance"], r.man
    info, st, ss = man["mixture"], man.get("select_tasks") or {}, man.get("select_samples") or {}
    ds, emb = man.get("dataset") or {}, man.get("embedding") or {}
    items = [
        ("mixture", f"{r.mixture} ({info.get('lines', r.fields['n_mix']):,} lines, {info.get('format')})"),
        ("sha256", str(man.get("sha256"))),
        ("dataset", f"{ds.get('spec')} · split {ds.get('split')} · {_revision(ds)}"),
        ("columns", ", ".join(f"{k}={v}" for k, v in (man.get("columns") or {}).items())),
        ("embedding", f"{emb.get('model')} ({emb.get('text')}, {emb.get('dim')}-d, {emb.get('dtype')})"),
        ("stage 1", _params(st, ("function", "lambda", "num_tasks", "budget", "seed", "cap"))),
        ("stage 2", _params(ss, ("function", "lambda", "seed"))),
        ("embeddings", str(r.es.path)),
        ("samples", str((man.get("paths") or {}).get("samples"))),
        ("tool", f"{man['producer'].get('name')} {man['producer'].get('version')}"),
    ]
    return page.section(t["title"], t["lead"], page.kv(items), "provenance")


def footer(r: Report) -> str:
    """Which tool wrote the page, from which manifest."""
    producer = r.man.get("producer") or {}
    return prose()["footer"].format(
        name=escape(str(producer.get("name"))),
        version=escape(str(producer.get("version"))),
        manifest=escape(manifest.manifest_path(r.mixture).name),
        sha=escape(str(r.man.get("sha256"))[:16]),
    )
