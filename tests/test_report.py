"""``smart-cli report``: blocked similarity metrics against brute force, and the HTML on tiny data."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from smart_cli.cli import app
from smart_cli.report import ReportConfig, metrics, write_report


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("q_block", "t_block"), [(3, 4), (1000, 1000), (7, 1)])
def test_best_similarity_matches_brute_force(q_block, t_block):
    emb = _unit(40, 8)
    emb[5] = emb[9]  # an exact duplicate pair
    queries, targets = np.array([9, 0, 5, 33, 2]), np.array([5, 9, 12, 0, 30, 31])
    full = emb[queries] @ emb[targets].T
    got = metrics.best_similarity(emb, queries, targets, q_block=q_block, t_block=t_block)
    np.testing.assert_allclose(got, full.max(axis=1), atol=1e-6)
    full[queries[:, None] == targets[None, :]] = -np.inf
    got = metrics.best_similarity(emb, queries, targets, exclude_self=True, q_block=q_block, t_block=t_block)
    np.testing.assert_allclose(got, full.max(axis=1), atol=1e-6)
    assert got[0] == pytest.approx(1.0, abs=1e-6)  # row 9's nearest other is its duplicate, row 5


def test_near_duplicate_rate_and_float16():
    emb = _unit(30, 6, seed=1)
    emb[[1, 2]] = emb[0]
    mixture = np.arange(10)
    rate = metrics.near_duplicate_rate(emb, mixture, 0.95, np.random.default_rng(0), max_rows=100)
    assert rate == pytest.approx(0.3)  # rows 0, 1, 2
    half = emb.astype(np.float16)
    best = metrics.coverage(half, np.arange(30), mixture)
    assert best.dtype == np.float32 and np.all(best[:10] > 0.99)


def test_random_rows_keep_group_counts():
    task_codes = np.array([0, 0, 0, 1, 1, 1, 1, 2], dtype=np.int32)
    template_codes = np.array([0, 1, 1, 0, 0, 1, 1, 0], dtype=np.int32)
    groups = metrics.groups(task_codes, template_codes)
    assert groups[(1, 0)].tolist() == [3, 4] and groups[(0, 1)].tolist() == [1, 2]
    counts = metrics.group_counts(groups, ["zs_opt", "zs_noopt"], {0: 2, 1: 3})
    assert counts == {(0, 0): 1, (0, 1): 1, (1, 0): 2, (1, 1): 1}
    picks = metrics.random_rows(groups, counts, np.random.default_rng(0))
    assert len(picks) == 5 and len(set(picks.tolist())) == 5
    assert np.bincount(task_codes[picks], minlength=3).tolist() == [2, 3, 0]


def test_pca_is_deterministic():
    x = _unit(12, 5, seed=2)
    a, b = metrics.pca_2d(x), metrics.pca_2d(x.copy())
    assert a.shape == (12, 2) and np.array_equal(a, b)
    assert metrics.pca_2d(x[:1]).shape == (1, 2)


@pytest.fixture(scope="module")
def report(tiny_mixture, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    summary = write_report(tiny_mixture["mixture"], out, ReportConfig(draws=2))
    return out, summary


def test_report_is_one_self_contained_page(report):
    out, summary = report
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 5
    assert all(__import__("base64").b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    for section in ("Where the rows go", "Shares by source", "Map of the tasks", "What stage 2 bought",
                    "What stage 1 bought", "Provenance"):  # fmt: skip
        assert section in html
    assert summary["lines"] == 30 and summary["tasks_selected"] == 4 and summary["tasks"] == 8


def test_report_headline_numbers(report):
    out, s = report
    html = out.read_text(encoding="utf-8")
    keys = ("coverage_selected", "coverage_selected_random", "coverage_collection", "coverage_collection_proportional")
    for key in keys:
        assert -1 <= s[key] <= 1
        assert f"{s[key]:.3f}" in html
    assert f"{s['dup_rate']:.1%}" in html and f"{s['dup_rate_random']:.1%}" in html
    assert s["eval_rows_collection"] == 81 and s["eval_rows_selected"] <= 81
    if s["coverage_collection"] < s["coverage_collection_proportional"]:
        assert "covers the whole collection less well than spreading" in html


def test_report_is_deterministic(tiny_mixture, report, tmp_path):
    again = tmp_path / "again.html"
    write_report(tiny_mixture["mixture"], again, ReportConfig(draws=2))
    assert again.read_bytes() == report[0].read_bytes()


def test_report_cli_subsamples_and_says_so(tiny_mixture, tmp_path):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        app, ["--json", "report", str(tiny_mixture["mixture"]), "--out", str(out), "--eval-rows", "20", "--draws", "1"]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["eval_rows_collection"] == 20 and summary["command"] == "report"
    assert "a random sample of 20 of the 81 rows of the collection" in out.read_text(encoding="utf-8")


def test_report_needs_the_manifest(tiny_mixture, tmp_path):
    lonely = tmp_path / "m.jsonl"
    lonely.write_bytes(tiny_mixture["mixture"].read_bytes())
    r = CliRunner().invoke(app, ["report", str(lonely), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 1 and "no manifest beside" in r.output and not (tmp_path / "r.html").exists()


def test_cli_import_stays_light():
    code = (
        "import sys; from smart_cli import cli; "
        "heavy = [m for m in ('torch','sentence_transformers','faiss','submodlib','datasets','matplotlib',"
        "'smart_cli.report','scipy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
