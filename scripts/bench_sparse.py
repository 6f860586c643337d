"""Benchmark sparse (kNN-graph) greedy against submodlib's dense lazy greedy.

Every method runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own: the dense
kernel of one run never inflates another's. Each worker rebuilds the same synthetic data from
the seed, times the method (wall and CPU seconds), records its peak RSS, and only then scores
the picks with the exact dense facility-location value.

    python scripts/bench_sparse.py            # n = 15k and 20k (dense + sparse), 200k (sparse)
    python scripts/bench_sparse.py --quick    # a smaller version, under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM = 384
EXACT_MAX_ROWS = 50_000  # sparse_greedy's default


def make_clustered(n: int, seed: int, *, d: int = DIM, centres: int = 300, chunk: int = 50_000) -> np.ndarray:
    """Unit vectors from a Gaussian mixture: random unit centres, skewed cluster sizes, per-cluster
    isotropic noise of norm ~0.6-1.2 (within-cluster cosine ~0.3-0.7). Built in chunks, float32."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((centres, d)).astype(np.float32)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(centres, 2.0))
    scale = (rng.uniform(0.6, 1.2, centres) / np.sqrt(d)).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        label = rng.choice(centres, size=m, p=weights)
        x = rng.standard_normal((m, d), dtype=np.float32) * scale[label, None] + mean[label]
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def make_hierarchical(n: int, seed: int, *, d: int = DIM, chunk: int = 50_000) -> np.ndarray:
    """A harder set: 40 topics, 2,000 overlapping subtopics, heavy noise (neighbourhoods blur)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((40, d)).astype(np.float32)
    subs = topics[rng.integers(0, 40, 2000)] + 0.9 * rng.standard_normal((2000, d)).astype(np.float32)
    subs /= np.linalg.norm(subs, axis=1, keepdims=True)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        label = rng.integers(0, 2000, m)
        x = subs[label] + rng.standard_normal((m, d), dtype=np.float32) * np.float32(1.2 / np.sqrt(d))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


DATASETS = {"clustered": make_clustered, "hierarchical": make_hierarchical}


def _usage() -> tuple[float, float]:
    """(CPU seconds so far, peak RSS in MB) of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def worker(args: argparse.Namespace) -> dict:
    """Run one method on one data set in this (fresh) process and describe the run."""
    from smart_cli.sparse import facility_location_value, sparse_greedy

    emb = DATASETS[args.data](args.n, args.seed)
    info: dict = {"method": args.method, "n": args.n, "budget": args.budget, "data": args.data}
    info["load_avg_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine skews wall times
    if args.method == "sparse":
        # Load numba's cached machine code (or compile it, on a first run) outside the timing.
        t0 = time.perf_counter()
        sparse_greedy(make_clustered(64, 0), 8, k=4)
        info["jit_warmup_s"] = round(time.perf_counter() - t0, 2)
    cpu0, rss0 = _usage()
    t0 = time.perf_counter()
    if args.method == "sparse":
        picks, _ = sparse_greedy(
            emb,
            args.budget,
            k=args.k,
            function=args.function,
            optimizer=args.optimizer,
            exact_max_rows=args.exact_max_rows,
        )
        info.update(k=args.k, function=args.function, optimizer=args.optimizer, exact_max_rows=args.exact_max_rows)
    else:
        from submodlib import FacilityLocationFunction

        kernel = emb @ emb.T
        fn = FacilityLocationFunction(n=args.n, mode="dense", sijs=kernel, separate_rep=False)
        result = fn.maximize(budget=args.budget, optimizer="LazyGreedy", show_progress=False)
        picks = np.array([i for i, _ in result], dtype=np.int64)
        del fn, kernel
    wall = time.perf_counter() - t0
    cpu1, rss1 = _usage()
    info.update(wall_s=round(wall, 2), cpu_s=round(cpu1 - cpu0, 2), peak_rss_mb=round(rss1), rss_before_mb=round(rss0))
    info["unique_picks"] = int(np.unique(picks).size)
    if not args.no_eval:
        t0 = time.perf_counter()
        info["fl_value"] = facility_location_value(emb, picks)
        info["eval_s"] = round(time.perf_counter() - t0, 2)
    return info


def run_worker(**kw: object) -> dict:
    """Start a fresh interpreter for one measurement; its last stdout line is the JSON result."""
    cmd = [sys.executable, __file__, "--worker"]
    for key, value in kw.items():
        if value is True:
            cmd.append(f"--{key.replace('_', '-')}")
        elif value is not False:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kw} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(row: dict, dense: dict | None) -> None:
    """One line per run; sparse runs are compared with the dense one and checked against the bars."""
    name = row["method"] if row["method"] == "dense" else f"sparse {row['function']} k={row['k']} {row['optimizer']}"
    if row.get("exact_max_rows", EXACT_MAX_ROWS) != EXACT_MAX_ROWS:
        name += " exact" if row["n"] <= row["exact_max_rows"] else " approx"
    line = (
        f"  {name:<24} wall {row['wall_s']:7.2f} s  cpu {row['cpu_s']:7.2f} s  "
        f"peak RSS {row['peak_rss_mb']:6d} MB (before {row['rss_before_mb']} MB)"
    )
    if "fl_value" in row:
        line += f"  FL {row['fl_value']:.2f}"
    verdict = ""
    if dense is not None and row is not dense and "fl_value" in row and row["function"] == "fl":
        ratio, speedup = row["fl_value"] / dense["fl_value"], dense["wall_s"] / row["wall_s"]
        line += f"  = {ratio:.4f} x dense, {speedup:.1f}x faster (cpu {dense['cpu_s'] / row['cpu_s']:.1f}x)"
        verdict = "PASS" if ratio >= 0.99 and speedup >= 5 else "FAIL"
    elif row["method"] == "sparse" and row["n"] >= 100_000:
        verdict = "PASS" if row["wall_s"] <= 60 and row["peak_rss_mb"] <= 2048 else "FAIL"
    if verdict and row["function"] == "fl" and row["optimizer"] == "lazy":
        line += f"  [{verdict}]"
    extras = [f"load {row['load_avg_1min']}"]
    if "jit_warmup_s" in row:
        extras.append(f"jit warm-up {row['jit_warmup_s']} s, untimed")
    print(f"{line}  ({'; '.join(extras)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 4,000 (with dense) and 60,000 (sparse only)")
    parser.add_argument("--dense-sizes", default="15000,20000", help="sizes where dense runs too")
    parser.add_argument("--sparse-sizes", default="200000", help="sizes run with sparse only")
    parser.add_argument("--ks", default="32", help="comma-separated k values for the sparse runs")
    parser.add_argument("--budget-fraction", type=float, default=0.1)
    parser.add_argument("--data", choices=sorted(DATASETS), default="clustered")
    parser.add_argument("--stochastic", action="store_true", help="also run the stochastic optimizer")
    parser.add_argument("--functions", default="fl", help="comma-separated sparse functions: fl, gc")
    parser.add_argument("--skip-eval", action="store_true", help="skip the exact FL value (slow at 200k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-max-rows", type=int, default=EXACT_MAX_ROWS, help="largest n with an exact kNN graph")
    # Worker-only options.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=["dense", "sparse"], default="sparse", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--function", default="fl", help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default="lazy", help=argparse.SUPPRESS)
    parser.add_argument("--no-eval", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return

    dense_sizes = [4000] if args.quick else [int(s) for s in args.dense_sizes.split(",") if s]
    sparse_sizes = [60_000] if args.quick else [int(s) for s in args.sparse_sizes.split(",") if s]
    ks = [int(k) for k in args.ks.split(",")]
    optimizers = ["lazy", "stochastic"] if args.stochastic else ["lazy"]
    functions = args.functions.split(",")
    common = {"data": args.data, "seed": args.seed, "exact_max_rows": args.exact_max_rows, "no_eval": args.skip_eval}
    print(
        f"data: {args.data}, d = {DIM}, budget = {args.budget_fraction:g} n, seed {args.seed}, "
        f"{os.cpu_count()} cores; times and peak RSS of a fresh process per run",
        flush=True,
    )
    for n in dense_sizes + sparse_sizes:
        budget = int(round(args.budget_fraction * n))
        print(f"n = {n:,}, budget = {budget:,}", flush=True)
        dense = None
        if n in dense_sizes:
            dense = run_worker(method="dense", n=n, budget=budget, **common)
            show(dense, None)
        for function in functions:
            for k in ks:
                for optimizer in optimizers:
                    row = run_worker(
                        method="sparse", n=n, budget=budget, k=k, function=function, optimizer=optimizer, **common
                    )
                    show(row, dense)


if __name__ == "__main__":
    main()
