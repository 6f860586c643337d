"""Shared outputs, full disks and dying workers: one clear line, never a wrong artifact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import write_emb_dir
from typer.testing import CliRunner

from smart_cli import artifacts
from smart_cli.cli import app
from smart_cli.executor import ProcessPool, WorkerDied

runner = CliRunner()
CLI = [sys.executable, "-m", "smart_cli"]
FILES = (artifacts.EMBEDDINGS, artifacts.ROWS, artifacts.META)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def same_files(a, b) -> None:
    for name in FILES:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), name


# ------------------------------------------------------------------------------- one writer


def test_a_second_writer_is_refused_naming_the_holder(tiny_emb, tmp_path):
    out = tmp_path / "new" / "tasks.json"
    with artifacts.exclusive(out):
        r = invoke("select-tasks", tiny_emb, "-m", "3", "-n", "12", "--out", out)
        assert r.exit_code == 1, r.output
        assert f"is being written by another smart-cli command (pid {os.getpid()}" in r.output
        assert "--wait-lock" in r.output and "Traceback" not in r.output
        assert not out.exists()
    assert not (tmp_path / "new").exists()  # the lock and the folder made for it are gone
    assert invoke("select-tasks", tiny_emb, "-m", "3", "-n", "12", "--out", out).exit_code == 0
    assert not artifacts.lock_path(out).exists()


def test_wait_lock_waits_for_the_holder(tiny_emb, tmp_path):
    out = tmp_path / "tasks.json"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with artifacts.exclusive(out):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(0.6, release.set).start()
    start = time.monotonic()
    r = invoke("--wait-lock", "20", "select-tasks", tiny_emb, "-m", "3", "-n", "12", "--out", out)
    holder.join()
    assert r.exit_code == 0, r.output
    assert time.monotonic() - start >= 0.5 and out.exists()


def test_two_embeds_into_one_folder_at_once(tiny_dataset, tiny_emb, tmp_path):
    """Started together: exactly one writes the folder, the other says who holds it; the folder is a clean run's."""
    out = tmp_path / "emb"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [*CLI, "embed", tiny_dataset, "--out", str(out), "--shard-rows", "32"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    results = [(p.wait(300), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert "is being written by another smart-cli command (pid" in refused and "Traceback" not in refused
    assert len(refused.strip().splitlines()) == 1
    same_files(out, tiny_emb)


# ------------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, where the platform lets a test mount one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode}): needs root on Linux"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the filesystem of ``mount`` until about ``leave`` bytes are free."""
    filler = mount / "filler"
    filler.write_bytes(b"\0" * max(0, artifacts.free_bytes(mount) - leave))
    return filler


def test_embed_refuses_a_disk_too_small_then_resumes_to_the_same_bytes(small_disk, tiny_dataset, tiny_emb):
    out = small_disk / "emb"
    filler = fill(small_disk, 60_000)  # the tiny EMB_DIR needs ~125 KB of vectors
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 1, r.output
    assert "not enough space in" in r.output and "it needs" in r.output and "free" in r.output
    assert "Traceback" not in r.output and not (out / artifacts.META).exists()
    filler.unlink()
    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", "32")
    assert r.exit_code == 0, r.output
    same_files(out, tiny_emb)


@pytest.mark.parametrize("leave", [2_000, 12_000])  # full at the lock or the mixture; at the manifest
def test_a_full_disk_while_exporting_is_one_line_and_leaves_nothing(small_disk, tiny_mixture, leave):
    out = small_disk / "mix.jsonl"
    fill(small_disk, leave)
    r = invoke("export", tiny_mixture["samples"], "--out", out)
    assert r.exit_code == 1, r.output
    assert "cannot write" in r.output and "No space left on device" in r.output and "free" in r.output
    assert "Traceback" not in r.output and [x for x in r.output.splitlines() if "error" in x][0].startswith("error:")
    assert len([x for x in r.output.splitlines() if "error" in x]) == 1
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


# ------------------------------------------------------------------------------- dying workers


def die_on_two(ctx, item: int) -> int:
    if item == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return item


def test_a_killed_worker_names_the_item_it_was_on():
    with pytest.raises(WorkerDied) as info:
        ProcessPool(2).map(die_on_two, list(range(6)), dict)
    assert 2 in info.value.items


def _workers_of(pid: int) -> list[int]:
    """Process-pool workers among the children of ``pid`` (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the workers through /proc (Linux)")
def test_select_samples_with_a_killed_worker(tmp_path):
    """SIGKILL one worker mid-run: one line naming what was running and how to use less memory; no output."""
    emb = tmp_path / "emb"
    write_emb_dir(emb, {"alpha": 12000, "beta": 11000, "gamma": 10000, "delta": 9000}, d=64)
    tasks, out = tmp_path / "t.json", tmp_path / "s.parquet"
    assert invoke("select-tasks", emb, "-m", "4", "-n", "16000", "--out", tasks).exit_code == 0
    cmd = [*CLI, "select-samples", str(emb), str(tasks), "--out", str(out), "--workers", "2"]
    cmd += ["--max-dense-rows", "0", "--knn", "64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
        time.sleep(0.2)
        workers = _workers_of(proc.pid)
    if proc.poll() is not None:
        pytest.fail(
            f"select-samples ended before a worker could be killed: {proc.stderr.read() if proc.stderr else ''}"
        )
    time.sleep(0.5)  # starting up or selecting: either way the pool is broken
    os.kill(workers[0], signal.SIGKILL)
    code = proc.wait(300)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: a worker process was killed"), err
    assert "--workers" in line and "--max-dense-rows" in line and "Traceback" not in err
    assert not out.exists()
