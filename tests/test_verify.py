"""``smart-cli verify``: passes on a mixture, fails on a tampered copy or without its manifest."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from smart_cli.cli import app
from smart_cli.errors import DataError
from smart_cli.export import ExportConfig, export
from smart_cli.verify import VerifyConfig, verify

runner = CliRunner()


def _copy(tiny_mixture, tmp_path, name="mix"):
    mix, man = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.manifest.json"
    shutil.copy(tiny_mixture["mixture"], mix)
    shutil.copy(tiny_mixture["manifest"], man)
    return mix, man


def test_passes_on_the_mixture(tiny_mixture):
    r = runner.invoke(app, ["verify", str(tiny_mixture["mixture"])])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: ") and "30 lines" in r.stdout and "every line is its source row" in r.stdout


@pytest.mark.parametrize("fmt", ["messages", "prompt-completion", "alpaca"])
def test_passes_on_every_format(tiny_mixture, tmp_path, fmt):
    out = tmp_path / f"{fmt}.jsonl.gz"
    export(tiny_mixture["samples"], out, ExportConfig(format=fmt, system="S." if fmt == "messages" else None))
    summary = verify(out)
    assert summary["ok"] and summary["rows_checked"] and summary["lines"] == 30


def test_fails_on_a_tampered_copy(tiny_mixture, tmp_path):
    mix, _ = _copy(tiny_mixture, tmp_path)
    text = mix.read_text(encoding="utf-8")
    i = text.index('"response": "') + len('"response": "')
    mix.write_text(text[:i] + ("X" if text[i] != "X" else "Y") + text[i + 1 :], encoding="utf-8")  # one character
    r = runner.invoke(app, ["verify", str(mix)])
    assert r.exit_code == 1
    assert "sha256 differs" in r.output and "line 1" in r.output and "response differs" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_fails_when_lines_are_swapped_even_with_a_matching_checksum(tiny_mixture, tmp_path):
    mix, man = _copy(tiny_mixture, tmp_path)
    lines = mix.read_text(encoding="utf-8").splitlines(keepends=True)
    mix.write_text("".join([lines[1], lines[0], *lines[2:]]), encoding="utf-8")
    doc = json.loads(man.read_text())
    doc["sha256"] = __import__("hashlib").sha256(mix.read_bytes()).hexdigest()
    man.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="line 1"):
        verify(mix)


def test_fails_without_manifest(tiny_mixture, tmp_path):
    mix, man = _copy(tiny_mixture, tmp_path)
    man.unlink()
    r = runner.invoke(app, ["verify", str(mix)])
    assert r.exit_code == 1 and "no manifest beside" in r.output and "mix.manifest.json" in r.output


def test_checksum_only_when_the_source_is_gone(tiny_mixture, tmp_path):
    mix, man = _copy(tiny_mixture, tmp_path)
    doc = json.loads(man.read_text())
    for key in ("read_from", "path", "spec"):
        doc["dataset"][key] = str(tmp_path / "moved.parquet")
    man.write_text(json.dumps(doc))
    summary = verify(mix)
    assert summary["ok"] and not summary["rows_checked"]
    assert not verify(tiny_mixture["mixture"], VerifyConfig(checksum_only=True))["rows_checked"]
    r = runner.invoke(app, ["--json", "verify", str(mix)])
    assert r.exit_code == 0 and json.loads(r.stdout)["rows_checked"] is False
