"""The report's HTML: one self-contained page (inline CSS, figures as data: URIs), no scripts."""

from __future__ import annotations

from html import escape

CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; --card:#ffffff; --accent:#2563eb;
        --good:#047857; --bad:#b91c1c; --warn:#b45309; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); line-height:1.5;
       font:15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background:linear-gradient(120deg,#0f172a 0%,#1e3a8a 60%,#2563eb 100%); color:#fff; padding:34px 0 72px; }
.wrap { max-width:1120px; margin:0 auto; padding:0 28px; }
header .kicker { text-transform:uppercase; letter-spacing:.12em; font-size:12px; opacity:.75; margin:0 0 6px; }
header h1 { margin:0 0 6px; font-size:30px; font-weight:700; letter-spacing:-.01em; }
header .sub { margin:0 0 18px; opacity:.85; font-size:15px; word-break:break-all; }
.chips { display:flex; flex-wrap:wrap; gap:8px; }
.chip { background:rgba(255,255,255,.12); border:1px solid rgba(255,255,255,.22); border-radius:999px;
        padding:3px 12px; font-size:12.5px; white-space:nowrap; }
.chip b { font-weight:600; opacity:.7; margin-right:5px; }
main { padding:26px 0 10px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:14px; margin:-48px 0 26px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:14px 16px;
        box-shadow:0 1px 2px rgba(0,0,0,.04),0 4px 14px rgba(15,23,42,.06); }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.06em; }
.card .value { font-size:26px; font-weight:700; margin:2px 0 0; font-variant-numeric:tabular-nums; }
.card .note { font-size:12.5px; color:var(--muted); }
.delta.up { color:var(--good); font-weight:600; } .delta.down { color:var(--bad); font-weight:600; }
section { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:20px 24px 16px;
          margin:0 0 20px; }
section h2 { font-size:19px; margin:0 0 4px; }
section p.lead { color:#374151; margin:4px 0 12px; }
figure { margin:10px 0 4px; }
figure img { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
.callout { border-left:4px solid var(--warn); background:#fffbeb; padding:10px 14px; border-radius:6px;
           margin:10px 0 6px; color:#78350f; }
.callout.good { border-color:var(--good); background:#ecfdf5; color:#064e3b; }
.callout.neutral { border-color:#94a3b8; background:#f1f5f9; color:#334155; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:right; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
td.l, th.l { text-align:left; } tbody tr:nth-child(even) { background:#f9fafb; }
.dot { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:6px; vertical-align:middle; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; font-size:13px; margin:6px 0; }
dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; word-break:break-all; font-family:ui-monospace,Menlo,monospace; }
footer { color:var(--muted); font-size:12.5px; padding:4px 0 34px; }
"""


def chips(items: list[tuple[str, str]]) -> str:
    return "".join(f'<span class="chip"><b>{escape(k)}</b>{escape(v)}</span>' for k, v in items)


def card(label: str, value: str, note: str = "") -> str:
    """A headline number; ``note`` is trusted HTML (built here from numbers)."""
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="note">{note}</div></div>'
    )


def delta(ours: float, theirs: float, fmt: str, higher_is_better: bool = True) -> str:
    diff = ours - theirs
    good = diff > 0 if higher_is_better else diff < 0
    cls = "up" if good else "down" if diff != 0 else ""
    return f'<span class="delta {cls}">{"+" if diff >= 0 else "−"}{fmt.format(abs(diff))}</span>'


def figure(b64: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def section(title: str, lead: str, body: str, ident: str = "") -> str:
    anchor = f' id="{escape(ident)}"' if ident else ""
    return f'<section{anchor}><h2>{escape(title)}</h2><p class="lead">{lead}</p>{body}</section>'


def callout(text: str, good: bool = False, neutral: bool = False) -> str:
    kind = " neutral" if neutral else " good" if good else ""
    return f'<div class="callout{kind}">{text}</div>'


def table(headers: list[str], rows: list[list[str]], left: int = 2) -> str:
    """A table; the first ``left`` columns are left-aligned. Cells are trusted HTML."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv(items: list[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def page(
    title: str, kicker: str, subtitle: str, chip_html: str, cards_html: str, sections: list[str], foot: str
) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><div class="wrap">
<p class="kicker">{escape(kicker)}</p>
<h1>{escape(title)}</h1>
<p class="sub">{escape(subtitle)}</p>
<div class="chips">{chip_html}</div>
</div></header>
<main><div class="wrap">
<div class="cards">{cards_html}</div>
{"".join(sections)}
</div></main>
<footer><div class="wrap">{foot}</div></footer>
</body>
</html>
"""
