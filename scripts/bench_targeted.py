"""Targeted mixtures: does selecting toward a query help, and does the sparse path keep up?

Two parts, each variant timed in a fresh process (wall time, peak RSS):

``--part demo EMB_DIR DATASET``: the demo collection embedded by ``smart-cli embed``. Held out as
the query (a "validation split"): ``--per-task`` rows of each of ``--tasks``; the pool is the rest.
Targeted selection (defaults: flmi at both stages) against untargeted SMART and random rows of the
same M' and N': which query tasks are chosen, and the query coverage (mean over query rows of the
best cosine to the mixture) in the embedding space and in an independent one (TF-IDF of the
prompts, word 1-2 grams).

``--part scale``: one clustered group (d = 384, like MiniLM) of ``--n`` rows, budget n / 10, a
query of ``--q`` rows near three of its clusters: flvmi dense (n x n kernel) against its kNN path
(value = exact dense flvmi of the picks), and flmi on the n x q path.

    python scripts/bench_targeted.py --part demo runs/tq/emb data/demo
    python scripts/bench_targeted.py --part scale --n 20000 --q 50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TASKS = "cot_gsm8k,wmt16_translate_de-en,amazon_polarity"


def subset_emb_dir(es, positions: np.ndarray, out: Path, tag: str) -> Path:
    """An EMB_DIR holding rows ``positions`` of ``es`` (same model metadata; its own checksums)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from smart_cli import artifacts

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / artifacts.EMBEDDINGS, np.asarray(es.embeddings[positions]))
    table = pq.read_table(es.path / artifacts.ROWS).take(pa.array(positions))
    pq.write_table(table, out / artifacts.ROWS)
    meta = dict(es.meta) | {"rows": len(positions), "fingerprint": f"{es.fingerprint}-{tag}"}
    meta |= {"rows_sha256": artifacts.sha256_file(out / artifacts.ROWS)}
    meta |= {"embeddings_sha256": artifacts.sha256_file(out / artifacts.EMBEDDINGS)}
    artifacts.write_json(out / artifacts.META, meta)
    return out


def demo(args) -> None:
    import pyarrow.parquet as pq
    from sklearn.feature_extraction.text import TfidfVectorizer

    from smart_cli import artifacts, select_samples, select_tasks
    from smart_cli.targeted.compare import best_to, smart_positions

    es = artifacts.open_embeddings(args.emb)
    rng = np.random.default_rng(args.seed)
    held = []
    for name in args.tasks.split(","):
        rows = np.flatnonzero(es.task_codes == es.task_names.index(name))
        held.append(np.sort(rng.choice(rows, size=args.per_task, replace=False)))
    query_pos = np.sort(np.concatenate(held))
    pool_pos = np.setdiff1d(np.arange(len(es.task_codes)), query_pos)
    work = Path(args.work)
    pool = artifacts.open_embeddings(subset_emb_dir(es, pool_pos, work / "pool", "pool"))
    qdir = subset_emb_dir(es, query_pos, work / "query", "query")
    start = time.perf_counter()
    tcfg = select_tasks.TaskConfig(num_tasks=args.num_tasks, budget=args.budget, query=qdir, no_cache=True)
    doc = select_tasks.select_tasks(pool, tcfg)
    table = select_samples.select_samples(pool, doc, select_samples.SampleConfig(query=qdir))
    targeted_s = time.perf_counter() - start
    rows_of = {int(r): i for i, r in enumerate(pool.rows)}
    ours = np.array([rows_of[int(r)] for r in table.column("row").to_pylist()])
    start = time.perf_counter()
    smart = smart_positions(pool, args.num_tasks, args.budget)
    smart_s = time.perf_counter() - start
    randoms = [
        np.random.default_rng([args.seed, k]).choice(len(pool_pos), args.budget, replace=False) for k in range(3)
    ]
    texts = pq.read_table(args.dataset).column("inputs").to_pylist()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(texts)
    pool_text = tfidf.transform([texts[int(r)] for r in pool.rows])
    query_text = tfidf.transform([texts[int(r)] for r in es.rows[query_pos]])

    def tfidf_cov(pos):
        return float((query_text @ pool_text[pos].T).max(axis=1).toarray().mean())

    qvec = np.asarray(es.embeddings[query_pos], dtype=np.float32)
    chosen = [t["task"] for t in doc["tasks"]]
    report = {
        "query": {"tasks": args.tasks.split(","), "rows": int(len(query_pos))},
        "M'": args.num_tasks,
        "N'": args.budget,
        "targeted_tasks": chosen,
        "query_tasks_chosen": sum(t in chosen for t in args.tasks.split(",")),
        "smart_tasks": sorted({pool.task_names[c] for c in pool.task_codes[smart].tolist()}),
        "coverage_embedding": {
            "targeted": float(best_to(qvec, pool.embeddings, ours).mean()),
            "smart": float(best_to(qvec, pool.embeddings, smart).mean()),
            "random": float(np.mean([best_to(qvec, pool.embeddings, r).mean() for r in randoms])),
        },
        "coverage_tfidf": {
            "targeted": tfidf_cov(ours),
            "smart": tfidf_cov(smart),
            "random": float(np.mean([tfidf_cov(r) for r in randoms])),
        },
        "seconds": {"targeted_both_stages": round(targeted_s, 2), "smart_both_stages": round(smart_s, 2)},
    }
    print(json.dumps(report, indent=2))


def scale_one(args) -> None:
    """One variant, in this process: prints its JSON line."""
    from smart_cli.targeted import dense, sparse

    rng = np.random.default_rng(args.seed)
    centres = rng.normal(size=(200, 384))
    x = centres[rng.integers(0, 200, args.n)] + 0.6 * rng.normal(size=(args.n, 384))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q = centres[:3][rng.integers(0, 3, args.q)] + 0.6 * rng.normal(size=(args.q, 384))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    b = args.n // 10
    start = time.perf_counter()
    if args.variant == "flvmi-dense":
        picks, _ = dense.maximize(x, q, b, "flvmi", eta=1.0, lambda_=1.0)
    elif args.variant == "flvmi-sparse":
        picks, _ = sparse.sparse_greedy(x, q, b, "flvmi", eta=1.0, lambda_=1.0, k=32, seed=23)
    else:
        picks, _ = sparse.sparse_greedy(x, q, b, "flmi", eta=1.0, lambda_=1.0, k=32, seed=23)
    seconds = time.perf_counter() - start
    value = sparse.flvmi_value(x, q, picks, 1.0) if args.variant.startswith("flvmi") else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"variant": args.variant, "n": args.n, "b": b, "seconds": seconds, "peak_mb": rss, "value": value})
    )


def scale(args) -> None:
    results = {}
    for variant in ("flvmi-dense", "flvmi-sparse", "flmi"):
        cmd = [sys.executable, __file__, "--part", "scale-one", "--variant", variant, "--n", str(args.n)]
        cmd += ["--q", str(args.q), "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[variant] = json.loads(out)
        print(out, flush=True)
    d, s = results["flvmi-dense"], results["flvmi-sparse"]
    ratio, speed = s["value"] / d["value"], d["seconds"] / s["seconds"]
    print(json.dumps({"flvmi_sparse_value_over_dense": ratio, "speedup": speed}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("demo", "scale", "scale-one"), required=True)
    p.add_argument("emb", nargs="?", help="demo: EMB_DIR of the demo data")
    p.add_argument("dataset", nargs="?", help="demo: the demo's parquet (for the TF-IDF view)")
    p.add_argument("--tasks", default=TASKS, help="demo: the query's tasks")
    p.add_argument("--per-task", type=int, default=8)
    p.add_argument("--num-tasks", type=int, default=8, help="demo: M'")
    p.add_argument("--budget", type=int, default=500, help="demo: N'")
    p.add_argument("--work", default="runs/bench-targeted")
    p.add_argument("--n", type=int, default=20000, help="scale: rows of the group")
    p.add_argument("--q", type=int, default=50)
    p.add_argument("--variant", default="flmi")
    p.add_argument("--seed", type=int, default=23)
    args = p.parse_args()
    if args.part == "demo":
        demo(args)
    elif args.part == "scale":
        scale(args)
    else:
        scale_one(args)


if __name__ == "__main__":
    main()
