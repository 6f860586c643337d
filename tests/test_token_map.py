"""--row-map tokens: token vectors fitted to the transformer (embed/token_fit.py, backends/token_mapped.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from smart_cli.backends.static import StaticEncoder
from smart_cli.backends.token_mapped import TokenMappedEncoder, rows_from_sums
from smart_cli.embed.token_fit import FitOptions, fit_tokens, fixed_product

TEXTS = [
    "Translate the sentence into French: the cat sleeps on the mat.",
    "Answer the question about the passage. Who wrote Hamlet?",
    "Classify the review as positive or negative: great food, slow service.",
    "Résumé: naïve café owners in Zürich — ¿qué pasa? 東京で会いましょう",
    "",
    "Summarise the article in one sentence. " * 40,
]


def _fresh(static_encoder, **kw) -> StaticEncoder:
    """An encoder of its own (``extend`` changes the encoder it is called on)."""
    return StaticEncoder(static_encoder.path, max_tokens=kw.pop("max_tokens", 32), **kw)


def _problem(seed: int = 0, rows: int = 40, vocab: int = 30, dim: int = 6):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(0, vocab, rng.integers(1, 9)) for _ in range(rows)]
    tokens = np.unique(np.concatenate(ids))
    start = rng.standard_normal((len(tokens), dim))
    truth = start + 0.5 * rng.standard_normal(start.shape)
    where = np.searchsorted(tokens, np.arange(vocab))
    norms = rng.uniform(0.5, 2.0, rows)
    targets = np.stack([truth[where[x]].sum(0) / n for x, n in zip(ids, norms)])
    return ids, norms, targets, start, np.zeros(dim)


def test_fit_lowers_the_loss_and_zero_epochs_is_the_start():
    ids, norms, targets, start, bias = _problem()
    fit = fit_tokens(ids, norms, targets, start, bias, FitOptions(epochs=80, lr=1e-2, batch=8))
    assert fit.losses[-1] < 0.5 * fit.losses[0]
    assert np.array_equal(fit.tokens, np.unique(np.concatenate(ids)))
    none = fit_tokens(ids, norms, targets, start, bias, FitOptions(epochs=0))
    assert np.array_equal(none.vectors, start) and np.array_equal(none.bias, bias)
    with pytest.raises(ValueError, match="distinct tokens"):
        fit_tokens(ids, norms, targets, start[1:], bias, FitOptions(epochs=1))


_RUN = """
import sys, numpy as np, numba
sys.path.insert(0, {root!r})
numba.set_num_threads({threads})
from tests.test_token_map import _problem
from smart_cli.embed.token_fit import FitOptions, fit_tokens, fixed_product
ids, norms, targets, start, bias = _problem(3, rows=200, vocab=50, dim=16)
fit = fit_tokens(ids, norms, targets, start, bias, FitOptions(epochs=5, batch=16))
a = np.random.default_rng(1).standard_normal((37, 24)).astype(np.float32)
w = np.random.default_rng(2).standard_normal((24, 16))
sys.stdout.write(fit.vectors.tobytes().hex()[:4000] + fit.bias.tobytes().hex() + fixed_product(a, w).tobytes().hex())
"""


def test_the_fit_is_the_same_bits_for_any_thread_count_and_blas_kernel():
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    outs = []
    for env in ({}, {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}):
        for threads in (1, 2):
            code = _RUN.format(root=root, threads=threads)
            run = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
            )
            assert run.returncode == 0, run.stderr
            outs.append(run.stdout)
    assert len(set(outs)) == 1 and len(outs[0]) > 4000


def test_fixed_product_is_the_product():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((50, 20)).astype(np.float32)
    a[3] = 0.0
    w = rng.standard_normal((20, 7))
    assert np.allclose(fixed_product(a, w), a.astype(np.float64) @ w, rtol=1e-12, atol=1e-12)


def test_rows_from_sums_divides_adds_the_bias_and_keeps_zero_rows():
    rng = np.random.default_rng(5)
    sums = rng.standard_normal((4, 9)).astype(np.float32)
    sums[2, :3] = 0.0
    bias = rng.standard_normal(6)
    got = rows_from_sums(sums, 3, bias)
    keep = [0, 1, 3]
    s = sums[keep].astype(np.float64)
    want = s[:, 3:] / np.linalg.norm(s[:, :3], axis=1, keepdims=True) + bias
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert got.dtype == np.float32 and np.allclose(got[keep], want, atol=1e-6) and not got[2].any()


def test_extended_sums_are_the_same_on_both_paths(static_encoder):
    """The compiled path and the tokenizer's sum the static table and the extra one to the same bytes."""
    extra = np.random.default_rng(6).standard_normal((len(static_encoder.token_vectors()), 5)).astype(np.float32)
    fast, slow = _fresh(static_encoder), _fresh(static_encoder, fast=False)
    assert fast.fast and not slow.fast
    plain = fast.sums(TEXTS)
    for enc in (fast, slow):
        enc.extend(extra)
    got = fast.sums(TEXTS)
    assert got.shape == (len(TEXTS), fast.dim + 5)
    assert got.tobytes() == slow.sums(TEXTS).tobytes()
    assert got[:, : fast.dim].tobytes() == plain.tobytes()  # the static part is unchanged
    ids = [x[:32] for x in fast.token_ids(TEXTS)]
    want = np.stack([extra[x].astype(np.float64).sum(0) if x else np.zeros(5) for x in ids])
    assert np.allclose(got[:, fast.dim :], want, atol=1e-4)
    with pytest.raises(ValueError, match="does not fit"):
        fast.extend(extra[1:])


def test_untrained_tokens_are_the_affine_map(static_encoder):
    """Token rows started at the affine map and not trained give the affine map's rows."""
    from smart_cli.backends.mapped import MappedEncoder

    rng = np.random.default_rng(7)
    affine = rng.standard_normal((static_encoder.dim + 1, 8))
    table = fixed_product(np.ascontiguousarray(static_encoder.token_vectors()), affine[:-1])
    enc = TokenMappedEncoder(_fresh(static_encoder), np.vstack([table, affine[-1:]]))
    mapped = MappedEncoder(_fresh(static_encoder), affine)
    got, want = enc.encode(TEXTS), mapped.encode(TEXTS)
    assert enc.dim == 8 and enc.name.endswith("+tokens") and not got[4].any()
    assert np.allclose(got, want, atol=2e-5)
    assert enc.count_truncated(TEXTS) == 1


def test_embed_fits_token_vectors_by_default(tiny_dataset, tiny_emb, static_cache, tmp_path, monkeypatch):
    """The default static folder stores rows through fitted token vectors, recorded in meta.json; they sit
    nearer the sample's transformer vectors than the affine map's rows."""
    from typer.testing import CliRunner

    from smart_cli import artifacts
    from smart_cli.cli import app

    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    folders = {}
    for kind in ("tokens", "transformer"):
        out = folders[kind] = tmp_path / kind
        args = ["embed", tiny_dataset, "--out", str(out), "--backend", "static", "--task-sample", "64"]
        result = runner.invoke(app, args + ([] if kind == "tokens" else ["--row-map", kind]))
        assert result.exit_code == 0, result.output
    meta = json.loads((folders["tokens"] / "meta.json").read_text())
    record = meta["row_map"]
    assert record["method"] == "token-vectors" and record["file"] == "static_tokens.npy"
    assert record["epochs"] == 60 and record["sha256"] == artifacts.sha256_file(folders["tokens"] / "static_tokens.npy")
    assert meta["encoder"].endswith("+tokens") and not (folders["tokens"] / "static_map.npy").exists()
    affine_meta = json.loads((folders["transformer"] / "meta.json").read_text())
    assert affine_meta["fingerprint"] != meta["fingerprint"] and affine_meta["row_map"]["file"] == "static_map.npy"
    table = np.load(folders["tokens"] / "static_tokens.npy")
    assert table.dtype == np.float32 and table.shape[1] == meta["dim"] == 384
    teacher = artifacts.open_embeddings(tiny_emb).embeddings.astype(np.float64)
    cos = {
        kind: float((artifacts.open_embeddings(out).embeddings.astype(np.float64) * teacher).sum(1).mean())
        for kind, out in folders.items()
    }
    assert cos["tokens"] > cos["transformer"], cos


def test_token_rows_are_the_same_bytes_from_two_encoder_processes(tiny_dataset, static_cache, tmp_path, monkeypatch):
    """Worker processes load the fitted table from the folder and store the bytes one process stores."""
    from typer.testing import CliRunner

    from smart_cli.cli import app

    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    args = ["--backend", "static", "--task-sample", "4", "--shard-rows", "16"]
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        result = runner.invoke(app, ["embed", tiny_dataset, "--out", str(tmp_path / name), *args, *extra])
        assert result.exit_code == 0, result.output
    for name in ("embeddings.npy", "static_tokens.npy", "task_means.npy"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
