"""Tiny FLAN-style data built in code, and one embeddings folder shared by the CLI tests."""

from __future__ import annotations

import os

import pytest
from helpers import SIZES, make_rows, write_parquet

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    from smart_cli.select_samples import select_samples
    from smart_cli.select_tasks import TaskConfig, select_tasks

    out = tmp_path_factory.mktemp("mixture")
    es = artifacts.open_embeddings(tiny_emb)
    doc = select_tasks(es, TaskConfig(num_tasks=4, budget=30))
    artifacts.write_tasks(out / "tasks.json", doc)
    artifacts.write_samples(select_samples(es, doc, tasks_path=out / "tasks.json"), out / "samples.parquet")
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
