#!/usr/bin/env python
"""``--engine ray`` against ``--engine local`` on this machine, in one run.

1. Start-up: ``import ray``, ``ray.init`` (a local instance, as ``--engine ray`` starts one), the
   first task, ``ray.shutdown``.
2. embed: the same FLAN-shaped rows (the first ``--rows`` of ``bench_scale.write_dataset``) with
   the packaged model, local (one process) against Ray (``--workers`` CPU actors); rows/s, peak RSS
   of the whole process tree (Ray's processes included), and whether the files are the same bytes.
3. select-samples on that EMB_DIR: local ``--workers 1`` and ``--workers W`` against Ray; wall time
   and the SAMPLES.parquet sha256.

Every stage is a real CLI command in its own process (``bench_scale.run_stage``), so Ray's start-up
and model loading are inside the figures, as a user sees them.

  python scripts/bench_ray.py                   # 4,000 rows, 2 workers
  python scripts/bench_ray.py --rows 1000       # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench_scale import run_stage, write_dataset  # noqa: E402


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def startup(cpus: int) -> dict:
    """Seconds to import Ray, start a local instance, run a first task and shut down."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t = time.perf_counter()
    import ray

    out = {"import_s": time.perf_counter() - t}
    t = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    out["init_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ray.get(ray.remote(lambda: 1).remote())
    out["first_task_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ray.shutdown()
    out["shutdown_s"] = time.perf_counter() - t
    out = {k: round(v, 2) for k, v in out.items()}
    out["ray"] = ray.__version__
    print(f"  start-up: {out}", flush=True)
    return out


def make_data(work: Path, rows: int) -> Path:
    import pyarrow.parquet as pq

    full = work / "flan-shaped"
    if not full.exists():
        write_dataset(full, scale=max(0.002, rows / 17.6e6 * 4))
    table = pq.read_table(sorted(full.glob("*.parquet"))[0]).slice(0, rows)
    path = work / f"rows-{rows}.parquet"
    pq.write_table(table, path)
    print(f"  data: {table.num_rows:,} rows, {len(set(table['task_name'].to_pylist()))} tasks -> {path}", flush=True)
    return path


def _tasks(emb: Path) -> int:
    import pyarrow.parquet as pq

    return len(set(pq.read_table(emb / "rows.parquet", columns=["task"])["task"].to_pylist()))


def bench_embed(cli: list[str], data: Path, work: Path, args, figures: dict, log: Path) -> None:
    w = str(args.workers)
    embed = [*cli, "embed", str(data), "--shard-rows", str(args.shard_rows), "--out"]
    figures["embed_local"] = run_stage("embed local", [*embed, str(work / "emb-local")], args.rows, log)
    ray_embed = [*embed, str(work / "emb-ray"), "--engine", "ray", "--workers", w]
    figures["embed_ray"] = run_stage(f"embed ray ({w} actors)", ray_embed, args.rows, log)
    same = all(sha(work / "emb-local" / f) == sha(work / "emb-ray" / f) for f in ("embeddings.npy", "rows.parquet"))
    figures["embed_same_bytes"] = same
    print(f"  embeddings.npy and rows.parquet identical: {same}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000, help="rows to embed and select from")
    ap.add_argument("--workers", type=int, default=2, help="local --workers and Ray's actors / tasks")
    ap.add_argument("--budget", type=int, default=None, help="select-tasks -n (default rows / 4)")
    ap.add_argument("--shard-rows", type=int, default=256, help="embed --shard-rows")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-ray"))
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--num-tasks", type=int, default=None, help="select-tasks -m (default: half the tasks)")
    ap.add_argument("--skip-embed", action="store_true", help="reuse --work's emb-local (select-samples only)")
    args = ap.parse_args()
    work = Path(args.work)
    kept = ("emb-local",) if args.skip_embed else ()
    for old in ("emb-local", "emb-ray", "tasks.json", "s-local1.parquet", "s-localW.parquet", "s-ray.parquet"):
        if old in kept:
            continue
        shutil.rmtree(work / old, ignore_errors=True) if (work / old).is_dir() else (work / old).unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench.log"
    cli = [sys.executable, "-m", "smart_cli", "-q"]
    w = str(args.workers)
    figures: dict = {"cores": os.cpu_count(), "workers": args.workers, "rows": args.rows}
    print(f"bench_ray: {args.rows:,} rows, {args.workers} workers, {os.cpu_count()} cores", flush=True)
    figures["startup"] = startup(args.workers)
    data = make_data(work, args.rows)

    if not args.skip_embed:
        bench_embed(cli, data, work, args, figures, log)

    emb = str(work / "emb-local")
    budget = str(args.budget or args.rows // 4)
    tasks = str(work / "tasks.json")
    m = str(args.num_tasks or max(1, _tasks(work / "emb-local") // 2))
    run_stage("select-tasks", [*cli, "select-tasks", emb, "-m", m, "-n", budget, "--out", tasks], 0, log)
    sel = [*cli, "select-samples", emb, tasks, "--no-cache", "--out"]
    runs = {
        "local1": [*sel, str(work / "s-local1.parquet")],
        "localW": [*sel, str(work / "s-localW.parquet"), "--workers", w],
        "ray": [*sel, str(work / "s-ray.parquet"), "--engine", "ray", "--workers", w],
    }
    for name, cmd in runs.items():
        figures[f"samples_{name}"] = run_stage(f"select-samples {name}", cmd, int(budget), log)
    hashes = {name: sha(work / f"s-{name}.parquet") for name in runs}
    figures["samples_same_bytes"] = len(set(hashes.values())) == 1
    print(f"  SAMPLES.parquet identical across engines and workers: {figures['samples_same_bytes']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
