"""Cost of machine-independent similarities: ``similarity.gram`` against a plain ``x @ x.T``.

Each variant runs in a fresh process (its own peak RSS) on the same clustered unit vectors
(``bench_sparse.make_clustered``, d = 384: FLAN-like groups): the float32 BLAS product (what the
kernel was before: its bits depend on the CPU and the BLAS), and ``similarity.gram`` (a float64
BLAS product, then each entry settled to the fixed sum's float32). Reports wall time, peak RSS
and the share of entries in which the two differ.

    python scripts/bench_similarity.py --n 5000 20000
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sparse import make_clustered  # noqa: E402

VARIANTS = ("sgemm", "fixed")


def worker(n: int, d: int, variant: str) -> dict:
    from smart_cli import similarity

    emb = make_clustered(n, 0, d=d)
    similarity.gram(emb[:64])  # numba's machine code loaded (or compiled) outside the timing
    t0 = time.perf_counter()
    kernel = emb @ emb.T if variant == "sgemm" else similarity.gram(emb)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict = {"variant": variant, "seconds": round(seconds, 2), "peak_mb": round(peak)}
    if variant == "fixed":  # entries that differ from float32 BLAS, on a sample of rows
        rows = np.random.default_rng(0).choice(n, size=min(n, 200), replace=False)
        out["differ_from_sgemm"] = float(np.mean(kernel[rows] != emb[rows] @ emb.T))
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.n[0], args.d, args.worker)), flush=True)
        return
    print(f"d = {args.d}, {os.cpu_count()} cores; each variant in a fresh process", flush=True)
    for n in args.n:
        rows = []
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--worker", variant, "--n", str(n), "--d", str(args.d)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        base, fixed = rows
        print(
            f"n = {n:,}: x @ x.T {base['seconds']} s, {base['peak_mb']} MB; similarity.gram {fixed['seconds']} s, "
            f"{fixed['peak_mb']} MB ({fixed['seconds'] / max(base['seconds'], 1e-9):.2f}x); entries differing "
            f"from x @ x.T: {fixed['differ_from_sgemm']:.1%} (load {base['load_avg_1min']}, {fixed['load_avg_1min']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
