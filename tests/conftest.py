"""Tiny FLAN-style data built in code, and one embeddings folder shared by the CLI tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = {
    "sentiment": ["the movie was {} and the acting {}", "this restaurant is {} and the staff {}"],
    "math": ["what is {} plus {}?", "if you have {} apples and get {} more, how many?"],
    "translate": ["translate to french: the {} cat sleeps {}", "translate to german: a {} house stands {}"],
    "trivia": ["who wrote the {} book about {}?", "which {} city is known for {}?"],
}
WORDS = ["red", "quiet", "great", "awful", "big", "old", "new", "bright", "dark", "early", "late", "calm"]
TEMPLATES = ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"]


def make_rows(sizes: dict[str, int], with_templates: bool = True) -> list[dict]:
    """Rows of tasks named ``<topic>_<k>`` with the given sizes; deterministic, no randomness."""
    rows = []
    for t, (task, size) in enumerate(sizes.items()):
        topic = task.split("_")[0]
        forms = TOPICS[topic]
        for i in range(size):
            a, b = WORDS[(i + t) % len(WORDS)], WORDS[(3 * i + 2 * t + 1) % len(WORDS)]
            row = {
                "inputs": forms[i % len(forms)].format(a, b) + f" (case {i // 3})",
                "targets": f"answer {i} of {task}",
                "task_name": task,
                "task_source": "niv2" if t % 2 else "flan2021",
            }
            if with_templates:
                row["template_type"] = TEMPLATES[(i * 7 + t) % 4 if t % 3 else i % 2]
            rows.append(row)
    return rows


SIZES = {
    "sentiment_0": 14,
    "sentiment_1": 9,
    "math_0": 20,
    "math_1": 6,
    "translate_0": 12,
    "translate_1": 3,
    "trivia_0": 16,
    "trivia_1": 1,
}


def write_parquet(rows: list[dict], path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    return write_parquet(make_rows(SIZES), tmp_path_factory.mktemp("data") / "tiny.parquet")


@pytest.fixture(scope="session")
def tiny_emb(tiny_dataset, tmp_path_factory) -> str:
    """EMB_DIR of the tiny dataset, embedded once with the packaged model."""
    from smart_cli.embed import EmbedConfig, embed

    out = tmp_path_factory.mktemp("emb") / "emb"
    embed(tiny_dataset, out, EmbedConfig(shard_rows=32))
    return str(out)


@pytest.fixture(scope="session")
def tiny_mixture(tiny_emb, tmp_path_factory) -> dict:
    """A SMART mixture of the tiny data (4 tasks, 30 rows) with its tasks, samples and manifest."""
    from smart_cli import artifacts
    from smart_cli.export import export
    from smart_cli.select_samples import select_samples, write_samples
    from smart_cli.select_tasks import TaskConfig, select_tasks

    out = tmp_path_factory.mktemp("mixture")
    es = artifacts.open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=30))
    artifacts.write_json(out / "tasks.json", doc)
    write_samples(select_samples(es, {**doc, "path": str(out / "tasks.json")}), out / "samples.parquet")
    summary = export(out / "samples.parquet", out / "mix.jsonl")
    return {
        "dir": out,
        "tasks": out / "tasks.json",
        "samples": out / "samples.parquet",
        "mixture": out / "mix.jsonl",
        "manifest": out / "mix.manifest.json",
        "summary": summary,
        "emb": tiny_emb,
    }


@pytest.fixture(scope="session")
def static_cache(tmp_path_factory):
    """A smart-cli cache root of this session (the static model is distilled into it once)."""
    return tmp_path_factory.mktemp("smart-cache")


@pytest.fixture(scope="session")
def static_encoder(static_cache):
    """The static encoder distilled from the packaged model on first use, for the whole session."""
    import time

    from smart_cli import backends

    start = time.perf_counter()
    enc = backends.load_encoder("static", cache_dir=static_cache)
    enc.first_load_seconds = time.perf_counter() - start
    return enc
