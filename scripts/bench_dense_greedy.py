"""Benchmark our dense lazy greedy (``smart``) against submodlib's (``submodlib``) on one kernel.

Each backend runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own. The worker
rebuilds the same clustered unit vectors from the seed (``bench_sparse.make_clustered``: FLAN-like
groups), records the RSS before the kernel (the interpreter, the imports, numba's code and the
vectors), builds the float32 cosine kernel, records the peak RSS so far, then times
``submodular.lazy_greedy(kernel, b, objective, backend)`` and records the peak RSS. Memory is
reported as the whole peak and as the peak less the RSS before the kernel, each against the
float32 kernel's n^2 x 4 bytes (MB here are MiB). The parent compares each run's picks (order
included) and gains with the first one's.

Backends: ``submodlib`` (the library, on the kernel of one numpy matmul: what a user calling it
would pass), ``smart`` (our engine on the machine-independent kernel of ``similarity.gram``) and
``free`` (our kernel-free engine, ``dense_free``: no n x n kernel at all; its "kernel" time is
zero and its first pass is part of the greedy time).

    python scripts/bench_dense_greedy.py --n 6000 --budget 600 --function fl
    python scripts/bench_dense_greedy.py --n 6000 --budget 300 --function logdet --lambda 1
    python scripts/bench_dense_greedy.py --n 50000 --budget 5000 --backends free
    python scripts/bench_dense_greedy.py --n 20000 --budget 2000 --vectors runs/real20k/embeddings.npy

``--vectors`` takes the group's rows from real embeddings instead (an EMB_DIR's ``embeddings.npy``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sparse import make_clustered  # noqa: E402

BACKENDS = ("submodlib", "smart", "free")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    """Resident memory now (MiB), from /proc; the peak so far where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return _peak_mb()


def worker(args: argparse.Namespace) -> dict:
    """Build the data and kernel, run one backend, save its picks and gains to ``args.out``."""
    from smart_cli import dense_free
    from smart_cli.submodular import Objective, cosine_kernel, lazy_greedy

    objective = Objective.of(args.function, args.lambda_)
    info: dict = {"backend": args.backend, "load_avg_1min": round(os.getloadavg()[0], 2)}
    if args.backend != "submodlib":
        # Load numba's cached machine code (or compile it, on a first run) outside the timing.
        t0 = time.perf_counter()
        tiny = make_clustered(64, 1, d=args.d)
        lazy_greedy(cosine_kernel(tiny), 8, objective, backend="smart")
        if args.backend == "free":
            dense_free.lazy_greedy(tiny, 8, args.function, objective.lambda_)
        info["jit_warmup_s"] = round(time.perf_counter() - t0, 2)
    emb = vectors(args)
    info["rss_before_kernel_mb"] = round(_rss_mb())  # interpreter, imports, numba's code, the vectors
    t0, c0 = time.perf_counter(), time.process_time()
    kernel = None
    if args.backend == "smart":
        kernel = cosine_kernel(emb)
    elif args.backend == "submodlib":
        kernel = emb @ emb.T
    info["kernel_s"] = round(time.perf_counter() - t0, 2)
    info["kernel_cpu_s"] = round(time.process_time() - c0, 2)  # all threads: on a busy machine, > wall / cores
    info["rss_with_kernel_mb"] = round(_peak_mb())
    t0, c0 = time.perf_counter(), time.process_time()
    if kernel is None:
        cache = int(args.cache_gb * (1 << 30))
        picks, gains = dense_free.lazy_greedy(emb, args.budget, args.function, objective.lambda_, cache_bytes=cache)
    else:
        picks, gains = lazy_greedy(kernel, args.budget, objective, backend=args.backend)
    info["greedy_s"] = round(time.perf_counter() - t0, 2)
    info["greedy_cpu_s"] = round(time.process_time() - c0, 2)
    info["peak_rss_mb"] = round(_peak_mb())
    info["kernel_mb"] = round(4 * args.n * args.n / (1 << 20)) if kernel is not None else 0
    np.savez(args.out, picks=picks, gains=gains)
    return info


def vectors(args: argparse.Namespace) -> np.ndarray:
    """The group's unit rows: the first ``--n`` rows of ``--vectors`` (real embeddings), else clustered ones."""
    if not args.vectors:
        return make_clustered(args.n, args.seed, d=args.d)
    from smart_cli.similarity import unit_rows

    rows = np.load(args.vectors, mmap_mode="r", allow_pickle=False)
    if args.n > len(rows):
        raise SystemExit(f"{args.vectors} has {len(rows):,} rows, fewer than --n {args.n:,}")
    return unit_rows(np.asarray(rows[: args.n], dtype=np.float32))


def run_worker(args: argparse.Namespace, backend: str, out: Path) -> dict:
    """One measurement in a fresh interpreter; its last stdout line is the JSON result."""
    cmd = [sys.executable, __file__, "--worker", "--backend", backend, "--out", str(out)]
    cmd += ["--n", str(args.n), "--d", str(args.d), "--budget", str(args.budget), "--seed", str(args.seed)]
    cmd += ["--function", args.function, "--cache-gb", str(args.cache_gb)]
    if args.vectors:
        cmd += ["--vectors", args.vectors]
    if args.lambda_ is not None:
        cmd += ["--lambda", str(args.lambda_)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "timed_out": True}
    if done.returncode != 0:
        raise RuntimeError(f"{backend} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> str:
    """Whether two runs made the same picks in the same order, and how far apart their gains are."""
    ra, rb = np.load(a), np.load(b)
    same = np.array_equal(ra["picks"], rb["picks"])
    if not same:
        first = int(np.flatnonzero(ra["picks"] != rb["picks"])[0])
        jaccard = len(set(ra["picks"]) & set(rb["picks"])) / len(set(ra["picks"]) | set(rb["picks"]))
        return f"picks DIFFER from pick {first} (Jaccard {jaccard:.4f})"
    ga, gb = ra["gains"], rb["gains"]
    exact = int(np.sum(ga == gb))
    rel = float(np.max(np.abs(ga - gb) / np.maximum(np.abs(ga), 1e-300)))
    return f"picks identical; gains bit-identical {exact}/{ga.size}, max rel diff {rel:.1e}"


def show(row: dict) -> None:
    if row.get("timed_out"):
        print(f"  {row['backend']:<10} did not finish within the timeout", flush=True)
        return
    extra = f", jit warm-up {row['jit_warmup_s']} s untimed" if "jit_warmup_s" in row else ""
    print(
        f"  {row['backend']:<10} greedy {row['greedy_s']:8.2f} s (CPU {row['greedy_cpu_s']} s)   "
        f"kernel {row['kernel_s']:6.2f} s (CPU {row['kernel_cpu_s']} s)   "
        f"peak RSS {row['peak_rss_mb']:6d} MB (with kernel, before greedy: {row['rss_with_kernel_mb']} MB)"
        f"   (load {row['load_avg_1min']}{extra})",
        flush=True,
    )
    added = row["peak_rss_mb"] - row["rss_before_kernel_mb"]
    against = ""
    if row["kernel_mb"]:
        k = row["kernel_mb"]
        against = (
            f"; float32 kernel {k} MB: peak = kernel + {row['peak_rss_mb'] / k - 1:.1%}, "
            f"peak - before = kernel + {added / k - 1:.1%}"
        )
    print(
        f"  {'':<10} RSS before the kernel {row['rss_before_kernel_mb']} MB (interpreter, imports, numba's code, "
        f"the vectors); peak - before {added} MB{against}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=6000, help="rows in the group")
    parser.add_argument("--d", type=int, default=384, help="embedding dimension")
    parser.add_argument("--budget", "-b", type=int, default=600)
    parser.add_argument("--function", choices=["fl", "gc", "logdet"], default="fl")
    parser.add_argument("--lambda", dest="lambda_", type=float, default=None, help="gc / logdet lambda (0.4 / 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectors", default="", help="a .npy of real row embeddings: its first --n rows are the group")
    parser.add_argument("--cache-gb", type=float, default=4.0, help="free: GiB of kernel columns kept")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, run in this order")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a backend's run is abandoned")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="smart", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    lam = "" if args.function == "fl" else f", lambda {args.lambda_ if args.lambda_ is not None else 'default'}"
    print(
        f"{args.function}{lam}: n = {args.n:,}, d = {args.d}, budget = {args.budget:,}, seed {args.seed}, "
        f"{os.cpu_count()} cores; each backend in a fresh process",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for backend in args.backends.split(","):
            out = Path(tmp) / f"{backend}.npz"
            row = run_worker(args, backend, out)
            show(row)
            if not row.get("timed_out"):
                outs[backend] = out
        names = list(outs)
        for other in names[1:]:
            print(f"  {other} vs {names[0]}: " + compare(outs[names[0]], outs[other]), flush=True)


if __name__ == "__main__":
    main()
