"""``--engine ray``: the same bytes as ``--engine local``, on a local Ray and on a simulated cluster.

The CLI tests start their own local Ray in a subprocess (as a user's command does). The rest share
one simulated cluster for the module (``ray.cluster_utils.Cluster``: a head without CPUs and two
one-CPU nodes with a pretend GPU each, so embed puts one actor per GPU); a node is removed in the
middle of an embed. Pretend GPUs test the scheduling only: the model runs on the CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]'): the Ray engine is not tested")

from smart_cli import artifacts  # noqa: E402
from smart_cli.artifacts import PROGRESS, partial  # noqa: E402
from smart_cli.cli import app  # noqa: E402
from smart_cli.dense_limit import PROCESS_BYTES  # noqa: E402
from smart_cli.embed import EmbedConfig, embed  # noqa: E402
from smart_cli.engines import open_engine  # noqa: E402
from smart_cli.engines.ray_executor import plan_bundles  # noqa: E402
from smart_cli.engines.shared import check_shared, node_signatures, refuse_differences, signature  # noqa: E402
from smart_cli.errors import DataError, Interrupted  # noqa: E402
from smart_cli.executor import WorkerDied  # noqa: E402
from smart_cli.select_samples import SampleConfig, select_samples  # noqa: E402
from smart_cli.select_tasks import TaskConfig, select_tasks  # noqa: E402

runner = CliRunner()
SHARD = 8  # 81 rows: 11 shards
FILES = ("embeddings.npy", "rows.parquet", "meta.json")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def same_folder(a: Path, b: Path) -> None:
    for name in FILES:
        assert sha(Path(a) / name) == sha(Path(b) / name), name
    assert not (Path(a) / PROGRESS).exists()


@pytest.fixture(scope="module")
def ref_emb(tiny_dataset, tmp_path_factory) -> Path:
    """The local engine's EMB_DIR with this module's shard size: what every Ray run must equal."""
    out = tmp_path_factory.mktemp("ref") / "emb"
    embed(tiny_dataset, out, EmbedConfig(shard_rows=SHARD))
    return out


@pytest.fixture(scope="module")
def ref_tasks(ref_emb, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tasks") / "tasks.json"
    artifacts.write_tasks(path, select_tasks(artifacts.open_embeddings(ref_emb), TaskConfig(num_tasks=6, budget=40)))
    return path


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _done_rows(out: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(json.loads((out / PROGRESS).read_text())["done"])
    return 0


# --------------------------------------------------------------------------- without Ray at all


def test_engine_options_are_checked_in_one_line(ref_emb, ref_tasks, tmp_path):
    r = invoke("select-samples", ref_emb, ref_tasks, "--out", tmp_path / "s.parquet", "--engine", "spark")
    assert r.exit_code == 2 and "error: unknown --engine 'spark'; choose from local, ray" in r.output
    r = invoke("select-samples", ref_emb, ref_tasks, "--out", tmp_path / "s.parquet", "--address", "auto")
    assert r.exit_code == 2 and "--address is the address of a Ray cluster: it needs --engine ray" in r.output
    assert not (tmp_path / "s.parquet").exists()


def test_an_address_nothing_answers_at_is_one_line_at_once(ref_emb, ref_tasks, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        args = ["select-samples", ref_emb, ref_tasks, "--out", tmp_path / "s.parquet", "--no-cache"]
        r = invoke(*args, "--engine", "ray", "--address", address)
    assert r.exit_code == 1, r.output
    assert f"error: --engine ray: cannot reach the Ray cluster at {address} (Connection refused)" in r.output
    assert not (tmp_path / "s.parquet").exists()


def test_without_ray_installed_the_engine_says_how_to_get_it(ref_emb, ref_tasks, tmp_path):
    """``sys.modules['ray'] = None`` makes ``import ray`` fail as on a machine without it."""
    code = (
        "import sys; sys.modules['ray'] = None; from smart_cli.cli import main; "
        f"sys.argv = ['smart-cli', 'select-samples', {str(ref_emb)!r}, {str(ref_tasks)!r}, "
        f"'--out', {str(tmp_path / 's.parquet')!r}, '--engine', 'ray']; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --engine ray needs Ray, which is not installed: pip install 'smart-cli[ray]'"
    ]


def test_progress_record_is_a_set_of_shards():
    assert partial.as_ranges({0, 1, 2, 5, 7, 8}) == [[0, 3], [5, 6], [7, 9]]
    assert partial.finished_shards({"shards": [[0, 3], [5, 6]]}, 81, 8) == {0, 1, 2, 5}
    assert partial.finished_shards({"done": 16}, 81, 8) == {0, 1}  # an older prefix record
    assert partial.finished_shards({"done": 81}, 81, 8) == set(range(11))
    assert partial.finished_shards({"shards": [[3, 12]]}, 81, 8) == set()  # past the last shard: refused
    assert partial.shard_rows_total({9, 10}, 81, 8) == 8 + 1


def test_small_groups_are_bundled_large_ones_go_alone():
    mb = 1 << 20
    weights = [PROCESS_BYTES + w * mb for w in (200, 1, 100, 2, 3)]  # as select-samples estimates them
    assert plan_bundles([0, 2, 4, 3, 1], weights) == [[0], [2], [4, 3, 1]]
    assert plan_bundles([1, 0], None) == [[1], [0]]
    many = [PROCESS_BYTES + mb] * 200
    assert [len(b) for b in plan_bundles(range(200), many)] == [64, 64, 64, 8]


# --------------------------------------------------------------------------- the CLI, on its own local Ray


def _interrupt_after(cmd: list, out: Path, rows: int):
    """Runs ``cmd`` on its own local Ray and sends Ctrl-C once ``rows`` rows are embedded."""
    proc = subprocess.Popen(
        [*cmd, "--engine", "ray", "--workers", "1"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and _done_rows(out) < rows:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, err


def test_cli_on_its_own_local_ray_interrupted_then_resumed(tiny_dataset, ref_emb, tmp_path):
    """``embed --engine ray`` starts a local Ray; Ctrl-C in the middle keeps the finished shards and
    exits 130 with one line (nothing of Ray's on the screen); the local engine finishes that run to
    the same bytes."""
    out = tmp_path / "emb"
    cmd = [
        sys.executable,
        "-m",
        "smart_cli",
        "-q",
        "embed",
        tiny_dataset,
        "--out",
        str(out),
        "--shard-rows",
        str(SHARD),
    ]
    for _ in range(3):  # on a loaded machine the run may finish before the signal lands: then again
        proc, err = _interrupt_after(cmd, out, rows=8)
        if proc.returncode == 0 and (out / "meta.json").exists():
            shutil.rmtree(out)
            continue
        break
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted: ") and "run the same embed" in lines[0], err
    done = _done_rows(out)
    assert 8 <= done < 81 and not (out / "meta.json").exists()

    r = invoke("embed", tiny_dataset, "--out", out, "--shard-rows", SHARD)  # the local engine resumes Ray's run
    assert r.exit_code == 0 and f"resuming: {done} of 81 rows already embedded" in r.output, r.output
    same_folder(out, ref_emb)


# --------------------------------------------------------------------------- a simulated cluster


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs and two one-CPU nodes with a pretend GPU each; this process connected."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 128 << 20, "include_dashboard": False},
    )
    nodes = [c.add_node(num_cpus=1, num_gpus=1, object_store_memory=128 << 20) for _ in range(2)]
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    c.wait_for_nodes()
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def _alive() -> int:
    return sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU"))


class StopAfter:
    """A reporter whose progress bar raises Ctrl-C once ``rows`` rows are embedded (a real interruption)."""

    def __init__(self, rows: int):
        self.rows, self.seen = rows, 0

    def log(self, message, style=None):
        return None

    def step(self, label, detail):
        return None

    def warn(self, message):
        return None

    def table(self, title, columns, rows):
        return None

    @contextlib.contextmanager
    def progress(self, description, total):
        def advance(n=1):
            self.seen += n
            if self.seen >= self.rows:
                raise KeyboardInterrupt

        yield advance


def _remove_node_once(c, node, out: Path, rows: int, removed_at: list) -> threading.Thread:
    """Remove ``node`` from the cluster as soon as ``out``'s progress record counts ``rows`` rows."""

    def remove():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and _done_rows(out) < rows:
            time.sleep(0.01)
        removed_at.append(_done_rows(out))
        c.remove_node(node)

    watcher = threading.Thread(target=remove, daemon=True)
    watcher.start()
    return watcher


def test_ray_and_local_resume_each_others_runs_and_ray_survives_a_lost_node(cluster, tiny_dataset, ref_emb, tmp_path):
    """Ray's partial run (shards in any order) finished by the local engine; the local engine's
    finished by Ray, on actors one per (pretend) GPU, one of whose nodes goes away mid-run."""
    c, nodes = cluster
    a, b = tmp_path / "a", tmp_path / "b"
    with open_engine("ray", workers=1) as ex, pytest.raises(Interrupted):
        embed(tiny_dataset, a, EmbedConfig(shard_rows=SHARD), executor=ex, reporter=StopAfter(3 * SHARD))
    record = json.loads((a / PROGRESS).read_text())
    assert 3 * SHARD <= record["done"] < 81 and record["shards"]
    embed(tiny_dataset, a, EmbedConfig(shard_rows=SHARD))  # local finishes Ray's run
    same_folder(a, ref_emb)

    with pytest.raises(Interrupted):
        embed(tiny_dataset, b, EmbedConfig(shard_rows=SHARD), reporter=StopAfter(4 * SHARD))
    assert json.loads((b / PROGRESS).read_text())["shards"] == [[0, 4]]
    removed_at: list[int] = []
    watcher = _remove_node_once(c, nodes[1], b, 5 * SHARD, removed_at)
    with open_engine("ray", gpus=True) as ex:  # Ray finishes the local run
        assert ex.workers == 2  # one CPU on each node
        embed(tiny_dataset, b, EmbedConfig(shard_rows=SHARD), executor=ex)
    watcher.join(timeout=60)
    assert removed_at and removed_at[0] < 81, "the node was not removed in the middle of the run"
    assert _alive() == 1
    same_folder(b, ref_emb)


@pytest.mark.parametrize("max_dense_rows", [None, 0], ids=["dense", "sparse"])
def test_select_samples_on_a_cluster_gives_the_local_bytes(cluster, ref_emb, ref_tasks, max_dense_rows, tmp_path):
    es = artifacts.open_embeddings(ref_emb)
    doc = artifacts.load_tasks(ref_tasks, es)
    cfg = SampleConfig(max_dense_rows=max_dense_rows, no_cache=True)
    artifacts.write_samples(select_samples(es, doc, cfg, tasks_path=ref_tasks), tmp_path / "local.parquet")
    ray_cfg = SampleConfig(max_dense_rows=max_dense_rows, no_cache=True, fixed_dense_limit=True)
    with open_engine("ray", workers=2) as ex:
        table = select_samples(es, doc, ray_cfg, tasks_path=ref_tasks, executor=ex)
    artifacts.write_samples(table, tmp_path / "ray.parquet")
    assert sha(tmp_path / "ray.parquet") == sha(tmp_path / "local.parquet")
    assert table.num_rows == 40


def _refuse(ctx, item):
    raise DataError(f"group {item} is broken")


def _die(ctx, item):
    os._exit(3)


def test_a_task_error_comes_back_as_our_own(cluster):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    with open_engine("ray", workers=2) as ex:
        with pytest.raises(DataError) as caught:
            ex.map(_refuse, [1, 2], dict, weights=[1 << 20, 1 << 20])
        assert str(caught.value) in ("group 1 is broken", "group 2 is broken")
        assert type(caught.value) is DataError  # not Ray's wrapper with a remote traceback
        with pytest.raises(WorkerDied) as died:
            ex.map(_die, [7], dict)
        assert died.value.items == [0]
        assert ex.map(lambda ctx, x: x * 2, list(range(5)), dict, order=[4, 3, 2, 1, 0]) == [0, 2, 4, 6, 8]


def test_cli_select_samples_on_ray(cluster, ref_emb, ref_tasks, tmp_path):
    """The flags reach the engine (this process's Ray is used as it is, and left running)."""
    local, remote = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    assert invoke("select-samples", ref_emb, ref_tasks, "--out", local, "--no-cache").exit_code == 0
    r = invoke("select-samples", ref_emb, ref_tasks, "--out", remote, "--no-cache", "--engine", "ray", "--workers", 2)
    assert r.exit_code == 0, r.output
    assert sha(remote) == sha(local) and ray.is_initialized()


def test_paths_are_compared_on_every_node(cluster, ref_emb, tmp_path):
    from smart_cli.select_samples import OpenEmbeddings

    with open_engine("ray") as ex:
        session = ex.session
        check_shared(session, OpenEmbeddings(str(ref_emb), {}))
        assert session._checked is not None and len(session._checked[1]) == _alive() + 1  # every node, head too
        copy = tmp_path / "copy.npy"
        copy.write_bytes(np.zeros(3).tobytes())
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        seen = node_signatures(ray, nodes, [str(copy)])
        real = str(Path(ref_emb) / "embeddings.npy")
        with pytest.raises(DataError, match=r"is not shared with the Ray node at .* \(it differs from this machine"):
            refuse_differences([real], [signature(real)], seen)
        seen = node_signatures(ray, nodes, [str(tmp_path / "nowhere")])
        with pytest.raises(DataError, match=r"\(it is not there\); DATASET and EMB_DIR must be on storage"):
            refuse_differences([real], [signature(real)], seen)


def test_recipe_engine_ray_gives_the_local_mixture(cluster, tiny_dataset, ref_emb, tmp_path):
    from smart_cli.config import load_recipe
    from smart_cli.pipeline import run_recipe

    mixtures = {}
    for engine in ("local", "ray"):
        recipe = tmp_path / f"{engine}.yaml"
        recipe.write_text(
            f"dataset: {tiny_dataset}\nout: {tmp_path / engine}\nembeddings: {ref_emb}\nengine: {engine}\n"
            f"embed: {{shard_rows: {SHARD}}}\nselect_tasks: {{num_tasks: 5, budget: 30}}\n"
            "select_samples: {no_cache: true}\n"
        )
        mixtures[engine] = run_recipe(recipe)["sha256"]
        assert load_recipe(recipe).samples.fixed_dense_limit == (engine == "ray")
    assert mixtures["ray"] == mixtures["local"]
    assert sha(tmp_path / "ray" / "samples.parquet") == sha(tmp_path / "local" / "samples.parquet")
