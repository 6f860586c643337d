#!/usr/bin/env python
"""Static embedding on real-length prompts: today's encoder (the reference path) against the compiled path.

Prompts: a seeded sample of the realistic-length synthetic FLAN (``flan_synth.py``; generated into
``--work`` at ``--scale`` unless ``--data`` names parquet files with an ``inputs`` column), or of real text
(``--texts``): a ``.jsonl`` file (field ``inputs``, ``prompt`` or ``text``), a ``.parquet`` file (column
``inputs``), or text files (a file or a folder of them), each cut at blank lines into prompts whose lengths
are drawn from ``flan_synth``'s length model. The synthetic prompts' words come from the model's
vocabulary, so its word table is warm after a few shards; real text keeps meeting new words. Each variant
runs in a fresh process that loads the static model (from ``$SMART_CLI_CACHE``, distilling it there first
if needed) and encodes the sample in shards of ``--shard-rows`` as ``embed`` does; reported: MB of prompt
text (UTF-8) per second, rows/s, CPU seconds (the machine may be shared: wall time counts waiting for a
core, CPU time does not), peak RSS, and whether the vectors are byte-identical to the reference's for
every text within the window.

    python scripts/bench_static.py                    # 60,000 prompts, reference vs compiled (512 and no window)
    python scripts/bench_static.py --n 20000 --variants fast512
    python scripts/bench_static.py --texts DOCS/ --variants reference,fast512,fast512@OLD_CHECKOUT

``VARIANT@PATH`` runs the variant with the ``smart_cli`` of another checkout (a fast path before a change).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = {  # name: (compiled path, window)
    "reference": (False, 0),  # today's encoder: the tokenizer, a sparse bag-of-tokens matrix, no window
    "fast0": (True, 0),  # compiled path, no window: the same bytes as the reference
    "fast512": (True, 512),  # compiled path, the default window
    # The rows embed stores by default (the transformer's window, 254 tokens for the packaged model): through
    # the affine map (``--row-map transformer``) or the fitted token vectors (``--row-map tokens``). Their
    # cost does not depend on the fitted values, so the worker makes a seeded map and table of the right shape.
    "affine254": (True, 254),
    "tokens254": (True, 254),
}


def read_texts(path: Path, seed: int) -> list[str]:
    """Prompts from jsonl, parquet, or text files cut at blank lines into realistic lengths."""
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path, columns=["inputs"]).column("inputs").to_pylist()
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        key = next(k for k in ("inputs", "prompt", "text") if k in rows[0])
        return [row[key] for row in rows]
    from bench_scale import SOURCES
    from flan_synth import draw_lengths

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    rng = np.random.default_rng(seed)
    sources = [s[0] for s in SOURCES]
    weights = np.array([s[2] for s in SOURCES], dtype=np.float64)  # each source's share of FLAN's rows
    prompts: list[str] = []
    for f in files:
        paragraphs = [p.strip() for p in f.read_text(encoding="utf-8", errors="replace").split("\n\n") if p.strip()]
        lengths = iter(
            draw_lengths(
                rng, str(rng.choice(sources, p=weights / weights.sum())), rng.random(len(paragraphs) + 1) < 0.3
            )
        )
        want, parts, size = next(lengths), [], 0
        for p in paragraphs:
            parts.append(p)
            size += len(p) + 2
            if size >= want:
                prompts.append("\n\n".join(parts))
                want, parts, size = next(lengths), [], 0
        if parts:
            prompts.append("\n\n".join(parts))
    return prompts


def sample_texts(args) -> Path:
    """The sample, as one arrow file under --work (made once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    work = Path(args.work)
    out = work / f"sample-{args.n}-{args.seed}.arrow"
    if out.exists():
        return out
    if args.texts:
        column = pa.array(read_texts(Path(args.texts), args.seed), type=pa.large_string())
        return _write_sample(out, column, args)
    data = Path(args.data) if args.data else work / "data"
    if not args.data and not (data / "_done").exists():
        from bench_scale import write_dataset

        t0 = time.perf_counter()
        n = write_dataset(data, args.scale, args.seed, lengths="realistic")
        (data / "_done").write_text(str(n))
        print(f"generated {n:,} realistic-length rows in {time.perf_counter() - t0:.0f} s", flush=True)
    files = sorted(data.glob("*.parquet")) if data.is_dir() else sorted(Path().glob(str(data)))
    column = pa.concat_tables([pq.read_table(f, columns=["inputs"]) for f in files]).column("inputs")
    return _write_sample(out, column, args)


def _write_sample(out: Path, column, args) -> Path:
    import pyarrow as pa

    work = Path(args.work)
    rng = np.random.default_rng(args.seed)
    take = np.sort(rng.choice(len(column), min(args.n, len(column)), replace=False))
    work.mkdir(parents=True, exist_ok=True)
    table = pa.table({"inputs": column.take(pa.array(take))})
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return out


def _mapped(enc, name: str):
    """``enc`` through a seeded map of the shape ``embed`` stores rows with (384-d), for the map variants."""
    rng = np.random.default_rng(0)
    affine = rng.standard_normal((enc.dim + 1, 384)) / np.sqrt(enc.dim)
    if name == "affine254":
        from smart_cli.backends.mapped import MappedEncoder

        return MappedEncoder(enc, affine)
    if name == "tokens254":
        from smart_cli.backends.token_mapped import TokenMappedEncoder

        table = enc.token_vectors().astype(np.float64) @ affine[:-1]
        return TokenMappedEncoder(enc, np.vstack([table, affine[-1:]]))
    return enc


def worker(sample: str, variant: str, shard_rows: int, vectors: str) -> None:
    """One variant in this (fresh) process; prints one JSON line."""
    import pyarrow as pa

    if "@" in variant:  # another checkout's smart_cli
        sys.path.insert(0, str(Path(variant.split("@", 1)[1]).resolve()))

    from smart_cli import backends
    from smart_cli.backends.static import StaticEncoder

    fast, window = VARIANTS[variant.split("@")[0]]
    texts = pa.ipc.open_file(sample).read_all().column("inputs").to_pylist()
    t0 = time.perf_counter()
    enc = StaticEncoder.load(backends.DEFAULT_MODEL, max_tokens=window or None, fast=fast)
    enc = _mapped(enc, variant.split("@")[0])
    enc.encode(["warm up: compiled code loaded from numba's cache"])
    load = time.perf_counter() - t0
    c0, t1 = os.times(), time.perf_counter()
    parts, truncated = [], 0
    for lo in range(0, len(texts), shard_rows):
        shard = texts[lo : lo + shard_rows]
        parts.append(enc.encode(shard))
        truncated += enc.count_truncated(shard)
    wall, c1 = time.perf_counter() - t1, os.times()
    np.save(vectors, np.concatenate(parts))
    if fast and window:  # after the clock: which rows the window cut (and which the compiled path refused)
        within = []
        for lo in range(0, len(texts), shard_rows):
            _, cut, refused = getattr(enc, "inner", enc)._bag.sums(texts[lo : lo + shard_rows], window)
            cut[refused] = True
            within.append(~cut)
        np.save(vectors.replace(".npy", "-within.npy"), np.concatenate(within))
    mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    info = {
        "variant": variant,
        "rows": len(texts),
        "mb": round(mb, 1),
        "load_s": round(load, 2),
        "wall_s": round(wall, 2),
        "cpu_s": round(c1.user - c0.user + c1.system - c0.system, 2),
        "mb_per_s": round(mb / wall, 2),
        "rows_per_s": round(len(texts) / wall),
        "truncated": truncated,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(info), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60_000, help="prompts in the sample")
    ap.add_argument("--data", default=None, help="parquet file, folder or glob with an inputs column")
    ap.add_argument("--texts", default=None, help="real prompts: a .jsonl, a .parquet, or a text file or folder")
    ap.add_argument("--scale", type=float, default=0.01, help="scale of the generated data (without --data)")
    ap.add_argument("--variants", default="reference,fast0,fast512")
    ap.add_argument("--shard-rows", type=int, default=8192, help="texts per encode call (embed's --shard-rows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-static"))
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.shard_rows, args.worker[2])
        return
    sample = sample_texts(args)

    def path_of(variant: str) -> Path:
        return Path(args.work) / f"vectors-{variant.replace('/', '_').replace('@', '-at-')}.npy"

    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; sample {sample}", flush=True)
    rows, vecs = [], {}
    for variant in args.variants.split(","):
        path = path_of(variant)
        cmd = [
            sys.executable,
            __file__,
            "--shard-rows",
            str(args.shard_rows),
            "--worker",
            str(sample),
            variant,
            str(path),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            raise SystemExit(f"{variant} failed:\n{out.stderr[-3000:]}")
        info = json.loads(out.stdout.strip().splitlines()[-1])
        info["load_after"] = round(os.getloadavg()[0], 2)
        vecs[variant] = np.load(path)
        rows.append(info)
        print(
            f"  {variant:<10} {info['mb_per_s']:6.2f} MB/s {info['rows_per_s']:>7,} rows/s  "
            f"wall {info['wall_s']:7.1f} s  "
            f"cpu {info['cpu_s']:7.1f} s  ({info['mb'] / max(info['cpu_s'], 1e-9):5.1f} MB per CPU-second)  "
            f"load {info['load_s']:.1f} s  peak RSS {info['peak_rss_mb']:,} MB  truncated {info['truncated']:,}  "
            f"(load avg after {info['load_after']})",
            flush=True,
        )
    if "reference" in vecs:
        ref = vecs["reference"]
        for variant, got in vecs.items():
            if variant == "reference":
                continue
            name, _, _ = variant.partition("@")
            same = (got == ref).all(axis=1)
            line = f"  {variant}: {int(same.sum()):,} of {len(ref):,} rows byte-identical to the reference"
            if VARIANTS[name][1] == 0:
                assert got.tobytes() == ref.tobytes(), f"{variant} differs from the reference"
            else:
                within = np.load(path_of(variant).with_name(path_of(variant).stem + "-within.npy"))
                assert same[within].all(), f"{variant}: a text within the window differs from the reference"
                line += f"; all {int(within.sum()):,} texts within the window are"
            print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
