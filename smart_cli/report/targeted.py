"""The report's section on a targeted mixture (``--query``): what selecting toward the query bought.

Shown only where the manifest records a query. It reads the query ``EMB_DIR`` (its path is in the
manifest's ``paths``; its fingerprint must match), then compares the mixture with untargeted
SMART of the same M' and N' and with random rows of the collection (``targeted.compare``).
"""

from __future__ import annotations

from html import escape

import numpy as np

from smart_cli import artifacts
from smart_cli.errors import DataError
from smart_cli.report import page


def measure(man: dict, es: artifacts.EmbeddingSet, positions: np.ndarray, draws: int, seed: int) -> dict | None:
    """The comparison, or None for an untargeted mixture."""
    query = (man.get("select_tasks") or {}).get("query") or (man.get("select_samples") or {}).get("query")
    if not query:
        return None
    from smart_cli.targeted.compare import compare
    from smart_cli.targeted.query import open_query

    path = (man.get("paths") or {}).get("query")
    if not path:
        raise DataError("the manifest records a query but not where it is: run select-samples with --query again")
    qes, vectors = open_query(path)
    if qes.fingerprint != query.get("fingerprint"):
        raise DataError(f"{path} is not the query this mixture was selected toward (fingerprints differ)")
    num_tasks = (man.get("select_tasks") or {}).get("num_tasks") or len(np.unique(es.task_codes[positions]))
    return {"path": path, **compare(es, positions, vectors, int(num_tasks), draws=draws, seed=seed)}


def summary(stats: dict | None) -> dict:
    """The numbers ``smart-cli report --json`` adds for a targeted mixture (nothing otherwise)."""
    if stats is None:
        return {}
    keys = {"ours": "", "smart": "_smart", "random": "_random"}
    out = {f"query_coverage{k}": round(stats[w]["coverage"], 6) for w, k in keys.items()}
    out |= {f"query_relevance{k}": round(stats[w]["relevance"], 6) for w, k in keys.items()}
    return out | {"query_rows": stats["query_rows"], "query_headline": headline(stats)}


def headline(stats: dict) -> str:
    """One plain sentence: the query coverage of this mixture against untargeted SMART and random rows."""
    ours, smart, rand = stats["ours"]["coverage"], stats["smart"]["coverage"], stats["random"]["coverage"]
    return (
        f"query coverage {ours:.3f} (mean best cosine of the {stats['query_rows']:,} query rows to the mixture), "
        f"against {smart:.3f} for untargeted SMART of the same M' and N' and {rand:.3f} for random rows"
    )


def section(stats: dict | None, top: int = 25) -> str:
    """The section's HTML ('' for an untargeted mixture)."""
    if stats is None:
        return ""
    ours, smart, rand = stats["ours"], stats["smart"], stats["random"]
    rows = [
        ["this mixture", f"{ours['coverage']:.3f}", f"{ours['relevance']:.3f}"],
        ["untargeted SMART, same M' and N'", f"{smart['coverage']:.3f}", f"{smart['relevance']:.3f}"],
        ["random rows (mean of draws)", f"{rand['coverage']:.3f}", f"{rand['relevance']:.3f}"],
    ]
    table = page.table(["mixture", "query coverage", "mean row relevance"], rows, left=1)
    tasks = sorted(stats["tasks"].items(), key=lambda kv: (-kv[1]["relevance"], kv[0]))[:top]
    per_task = page.table(
        ["task", "rows", "relevance"],
        [[escape(name), f"{t['rows']:,}", f"{t['relevance']:.3f}"] for name, t in tasks],
        left=1,
    )
    better = ours["coverage"] > max(smart["coverage"], rand["coverage"])
    lead = (
        f"Selected toward the {stats['query_rows']:,} rows of {escape(str(stats['path']))}. Query coverage: for "
        "every query row, its best cosine to a row of the mixture, averaged; a row's relevance: its best "
        "cosine to a query row (a task's: the mean over its rows in the mixture)."
    )
    body = page.callout(escape(headline(stats)) + ".", good=better, neutral=not better) + table + per_task
    return page.section("Toward the query", lead, body, ident="targeted")
