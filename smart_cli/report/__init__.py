"""``smart-cli report X.jsonl``: one self-contained HTML page on what a mixture holds and what each
SMART stage bought, measured against the right baseline.

``build`` measures and assembles, ``metrics`` computes similarities in blocks (pure numpy),
``figures`` draws with matplotlib, ``page`` writes the HTML. Heavy imports stay inside functions.
"""

from smart_cli.report.build import ReportConfig, measure, write_report

__all__ = ["ReportConfig", "measure", "write_report"]
