"""The report's figures: matplotlib (Agg) drawn to PNG and returned as base64, one style for all."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
BASELINE = "#f59e0b"
# Distinct from ACCENT (this mixture) and BASELINE, which the stage figures use.
SOURCE_COLOURS = {
    "flan2021": "#6366f1",
    "t0": "#eab308",
    "niv2": "#10b981",
    "cot": "#ef4444",
    "dialog": "#d946ef",
}
OTHER_COLOURS = ["#0ea5e9", "#ec4899", "#84cc16", "#a16207", "#14b8a6", "#64748b"]
UNKNOWN = "#9ca3af"


def source_colours(sources: Sequence[str | None]) -> dict:
    """A colour per source: FLAN's five fixed, others from a small palette in sorted order."""
    from smart_cli.baselines import source_key

    out: dict = {}
    others = iter(OTHER_COLOURS * 4)
    for s in sorted({s for s in sources if s is not None}, key=str):
        key = source_key(s)
        out[s] = SOURCE_COLOURS[key] if key else next(others, UNKNOWN)
    out[None] = UNKNOWN if out else ACCENT  # no sources recorded at all: one colour for every task
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 9.5,
            "axes.edgecolor": GRID,
            "axes.labelcolor": INK,
            "axes.titlesize": 10.5,
            "axes.titleweight": "bold",
            "axes.titlecolor": INK,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "xtick.color": MUTED,
            "ytick.color": MUTED,
            "axes.grid": True,
            "grid.color": GRID,
            "grid.linewidth": 0.8,
            "legend.frameon": False,
            "svg.hashsalt": "smart-cli",
        }
    )
    return plt


def png(fig) -> str:
    """The figure as a base64 PNG (no timestamp or software tag: equal figures give equal bytes)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def budgets(tasks: list[dict], colours: dict, top: int) -> str:
    """Horizontal bars: the rows given to the top tasks by budget, coloured by source."""
    plt = _plt()
    shown = sorted(tasks, key=lambda t: -t["count"])[:top]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(shown) + 1.1))
    y = np.arange(len(shown))[::-1]
    counts = [t["count"] for t in shown]
    sizes = [t.get("size", t["count"]) for t in shown]
    ax.barh(y, sizes, color=GRID, height=0.72, label="rows the task has", zorder=2)
    ax.barh(y, counts, color=[colours.get(t.get("source"), UNKNOWN) for t in shown], height=0.72, zorder=3)
    for yy, c, s in zip(y, counts, sizes):
        ax.text(s, yy, f" {c:,} / {s:,}", va="center", fontsize=8, color=MUTED)
    ax.set_yticks(y, [_short(t["task"]) for t in shown], fontsize=8.5, color=INK)
    ax.set_xlabel("rows in the mixture (coloured) of the rows the task has (grey)")
    ax.set_xlim(0, max(sizes) * 1.18 if sizes else 1)
    ax.grid(axis="y", visible=False)
    ax.margins(y=0.01)
    used = {t.get("source") for t in shown}
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in colours if s in used]
    ax.legend(handles, [str(s) if s is not None else "unknown" for s in colours if s in used], loc="lower right")
    return png(fig)


def shares(by_source: list[tuple[str, float, float]], by_template: list[tuple[str, float, float]]) -> str:
    """Two panels of grouped bars: share of the mixture vs share of the collection."""
    plt = _plt()
    panels = [(by_source, "by task source"), (by_template, "by template type")]
    panels = [(rows, title) for rows, title in panels if rows]
    ratios = [max(len(rows), 2) for rows, _ in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.1), gridspec_kw={"width_ratios": ratios}, squeeze=False)
    axes = axes[0]
    for ax, (rows, title) in zip(axes, panels):
        names = [r[0] for r in rows]
        x = np.arange(len(rows))
        mix = [100 * r[1] for r in rows]
        coll = [100 * r[2] for r in rows]
        ax.bar(x - 0.2, coll, width=0.38, color="#cbd5e1", label="collection", zorder=2)
        ax.bar(x + 0.2, mix, width=0.38, color=ACCENT, label="mixture", zorder=3)
        for xx, m in zip(x, mix):
            ax.text(xx + 0.2, m, f"{m:.0f}%", ha="center", va="bottom", fontsize=8, color=INK)
        ax.set_xticks(x, names, color=INK)
        ax.set_title(title, loc="left")
        ax.set_ylabel("share of rows (%)")
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, max(mix + coll + [1]) * 1.18)
    axes[0].legend(loc="upper right")
    fig.tight_layout()
    return png(fig)


def task_map(
    xy: np.ndarray,
    sizes: np.ndarray,
    selected: dict[int, int],
    sources: Sequence[str | None],
    colours: dict,
    names: Sequence[str],
    label: int = 8,
) -> str:
    """PCA of the task embeddings: every task a grey dot, the selected ones coloured, sized by rows given."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5.6))
    rest = np.array([i for i in range(len(xy)) if i not in selected], dtype=np.int64)
    area = 12 + 140 * np.sqrt(sizes / max(sizes.max(), 1))
    if len(rest):
        ax.scatter(xy[rest, 0], xy[rest, 1], s=area[rest], color="#d1d5db", edgecolor="white", lw=0.6, zorder=2)
    picked = np.array(sorted(selected, key=lambda i: -selected[i]), dtype=np.int64)
    if len(picked):
        given = np.array([selected[i] for i in picked], dtype=np.float64)
        ax.scatter(
            xy[picked, 0],
            xy[picked, 1],
            s=30 + 420 * np.sqrt(given / max(given.max(), 1)),
            color=[colours.get(sources[i], UNKNOWN) for i in picked],
            edgecolor="white",
            lw=1.0,
            alpha=0.9,
            zorder=3,
        )
        _labels(fig, ax, [(_short(names[i], 34), xy[i]) for i in picked[:label]])
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_xticks([])
    ax.set_yticks([])
    present = [s for s in colours if s is not None and s in {sources[i] for i in picked}]
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[s], markersize=8) for s in present]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="#d1d5db", markersize=8))
    ax.legend(handles, [*map(str, present), "not selected"], loc="best", fontsize=8.5)
    return png(fig)


def stage(ours: dict, baseline: dict, ours_label: str, baseline_label: str, threshold: float, title_scope: str) -> str:
    """Three panels: coverage curve (share of rows covered at >= t), mean coverage, near-duplicate rate.

    ``ours`` has ``best`` (best similarity of each evaluation row), ``coverage``, ``dup``;
    ``baseline`` has the same per draw, as lists.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    names = [_short(ours_label, 16), _short(baseline_label, 16)]
    _coverage_curve(axes[0], ours, baseline, ours_label, baseline_label, title_scope)
    _mean_coverage(axes[1], ours, baseline, names)
    _duplicates(axes[2], ours, baseline, names, threshold)
    fig.tight_layout()
    return png(fig)


def _coverage_curve(ax, ours: dict, baseline: dict, ours_label: str, baseline_label: str, title_scope: str) -> None:
    grid = np.linspace(-1.0, 0.99, 399)  # not 1.0: a row's similarity to itself rounds just below it

    def covered(best: np.ndarray) -> np.ndarray:
        s = np.sort(best)
        return 100 * (1 - np.searchsorted(s, grid, side="left") / max(len(s), 1))

    base_curves = np.array([covered(b) for b in baseline["best"]])
    ax.fill_between(grid, base_curves.min(0), base_curves.max(0), color=BASELINE, alpha=0.18, lw=0)
    ax.plot(grid, base_curves.mean(0), color=BASELINE, lw=2, ls="--", label=baseline_label)
    ax.plot(grid, covered(ours["best"]), color=ACCENT, lw=2.2, label=ours_label)
    lo = float(np.quantile(np.concatenate([ours["best"], *baseline["best"]]), 0.01))
    ax.set_xlim(max(min(lo, 0.9) - 0.02, -1.0), 0.99)
    ax.set_ylim(0, 102)
    ax.set_xlabel("cosine similarity to the nearest mixture row ≥ t")
    ax.set_ylabel(f"{title_scope} rows covered (%)")
    ax.set_title("coverage curve", loc="left")
    ax.legend(loc="lower left", fontsize=8.5)


def _value_label(ax, text: str, at: tuple[float, float], above: int) -> None:
    ax.annotate(
        text, at, xytext=(0, above), textcoords="offset points", ha="center", fontsize=9, color=INK, fontweight="bold"
    )


def _mean_coverage(ax, ours: dict, baseline: dict, names: list[str]) -> None:
    # Mean coverage as dots: their axis need not start at 0, so small differences stay visible
    # without the exaggeration of a truncated bar.
    bv = np.asarray(baseline["coverage"], dtype=np.float64)
    vals = [float(ours["coverage"]), float(bv.mean())]
    ax.hlines([0, 1], [vals[0], bv.min()], [vals[0], bv.max()], color=[ACCENT, BASELINE], lw=3, zorder=2)
    ax.scatter(vals, [0, 1], s=90, color=[ACCENT, BASELINE], zorder=3)
    for y, v in zip([0, 1], vals):
        _value_label(ax, f"{v:.3f}", (v, y), 9)
    lo, hi = min(vals + [bv.min()]), max(vals + [bv.max()])
    pad = max(hi - lo, 0.01) * 0.35
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, 1.6)
    ax.set_yticks([0, 1], names, fontsize=8.5, color=INK)
    ax.invert_yaxis()
    ax.set_xlabel("mean best similarity")
    ax.set_title("mean coverage", loc="left")
    ax.grid(axis="y", visible=False)


def _duplicates(ax, ours: dict, baseline: dict, names: list[str], threshold: float) -> None:
    bv = 100 * np.asarray(baseline["dup"], dtype=np.float64)
    vals = [100 * float(ours["dup"]), float(bv.mean())]
    err = [[0, vals[1] - float(bv.min())], [0, float(bv.max()) - vals[1]]]
    ax.bar(
        [0, 1],
        vals,
        color=[ACCENT, BASELINE],
        width=0.62,
        yerr=err,
        capsize=4,
        zorder=3,
        error_kw={"ecolor": MUTED, "lw": 1},
    )
    for x, v, whisker in zip([0, 1], vals, [vals[0], float(bv.max())]):
        _value_label(ax, f"{v:.1f}%", (x, whisker), 3)
    ax.set_xticks([0, 1], names, fontsize=8.5, color=INK)
    ax.set_ylabel("share of mixture rows (%)")
    ax.set_title(f"near-duplicates (cos > {threshold:g})", loc="left")
    ax.grid(axis="x", visible=False)
    ax.set_ylim(0, max(vals + [float(bv.max())]) * 1.25 + 0.5)


def _labels(fig, ax, labels: list) -> None:
    """Annotate points, trying a few offsets per label so that labels do not overlap each other."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list = []
    offsets = ((7, 5, "left"), (7, -13, "left"), (-7, 5, "right"), (-7, -13, "right"), (0, 11, "center"))
    for text, point in labels:
        for dx, dy, ha in offsets:
            ann = ax.annotate(
                text, point, xytext=(dx, dy), textcoords="offset points", ha=ha, fontsize=8, color=INK, zorder=4
            )
            box = ann.get_window_extent(renderer).expanded(1.04, 1.15)
            fits = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if fits and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            ann.remove()
        # a label with no free spot is left out rather than drawn over another


def _short(text: str, width: int = 42) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
