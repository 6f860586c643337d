#!/usr/bin/env python
"""How far apart lazy greedy's picks land when only the kernel's last bits differ (real embeddings).

Facility location, our engine on one group of rows under three kernels of the same unit vectors:

* ``fixed``: ``similarity.gram``, the default (every entry one fixed computation, any machine);
* ``blas``: numpy's float32 ``x @ x.T``, the kernel one hands submodlib as ``sijs`` (``--kernel blas``);
* ``cpp`` (``--cpp``, slow: ~400 s at 20,000 rows): submodlib's own kernel from ``data=`` with
  ``metric="cosine"``, picked by the library itself.

Our engine makes submodlib's picks on any given kernel (tested), so the differences are the
kernels'. Also reported: the Jaccard over classes of identical vectors (is it the duplicates?) and
the fixed and blas kernels on the distinct vectors alone.

    python scripts/compare_kernels.py runs/real20k/embeddings.npy --n 20000 --budget 2000 --cpp
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smart_cli import dense_greedy, similarity  # noqa: E402


def jaccard(a, b) -> float:
    a, b = set(map(int, a)), set(map(int, b))
    return len(a & b) / len(a | b)


def parting(a, b) -> str:
    d = np.flatnonzero(np.asarray(a) != np.asarray(b))
    return "never" if len(d) == 0 else f"pick {int(d[0])}"


def picks(kernel: np.ndarray, budget: int, symmetric: bool | None) -> np.ndarray:
    return dense_greedy.lazy_greedy(kernel, budget, "fl", symmetric=symmetric)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vectors", help="a .npy of row embeddings (an EMB_DIR's embeddings.npy)")
    ap.add_argument("--n", type=int, default=20000, help="the group: the first n rows")
    ap.add_argument("--budget", "-b", type=int, default=2000)
    ap.add_argument("--cpp", action="store_true", help="also submodlib's own kernel (data=, metric cosine)")
    args = ap.parse_args()

    x = similarity.unit_rows(np.asarray(np.load(args.vectors, mmap_mode="r")[: args.n], dtype=np.float32))
    n, b = len(x), args.budget
    runs = {"fixed": picks(similarity.gram(x), b, True), "blas": picks(x @ x.T, b, None)}
    if args.cpp:
        from submodlib import FacilityLocationFunction

        t0 = time.perf_counter()
        fn = FacilityLocationFunction(n=n, mode="dense", data=x, metric="cosine")
        got = fn.maximize(
            budget=b, optimizer="LazyGreedy", stopIfZeroGain=False, stopIfNegativeGain=False, show_progress=False
        )
        runs["cpp"] = np.array([i for i, _ in got])
        print(f"submodlib with data=: {time.perf_counter() - t0:.0f} s")
    names = list(runs)
    print(f"fl, n = {n:,}, b = {b:,}")
    for i, p in enumerate(names):
        for q in names[i + 1 :]:
            print(f"  {p} vs {q}: part at {parting(runs[p], runs[q])}, Jaccard {jaccard(runs[p], runs[q]):.4f}")
    distinct, cls = np.unique(x, axis=0, return_inverse=True)
    cls = cls.ravel()
    ca, cb = Counter(cls[runs["fixed"]]), Counter(cls[runs["blas"]])
    classes = sum((ca & cb).values()) / sum((ca | cb).values())
    print(f"  {len(distinct):,} distinct vectors; fixed vs blas over classes of identical vectors: {classes:.4f}")
    if len(distinct) < n:
        k = min(b, len(distinct) - 1)
        f, g = picks(similarity.gram(distinct), k, True), picks(distinct @ distinct.T, k, None)
        print(f"  distinct rows only (b = {k:,}): part at {parting(f, g)}, Jaccard {jaccard(f, g):.4f}")


if __name__ == "__main__":
    main()
