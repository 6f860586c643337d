"""Stage 1's task means from the transformer for a static EMB_DIR (embed/teacher.py, task_means.stage1_means)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from smart_cli import artifacts
from smart_cli.cli import app
from smart_cli.embed.teacher import estimate, group_means, sample_rows


def test_sample_rows_takes_k_rows_of_each_task_seeded():
    codes = np.array([0, 1, 0, 2, 1, 0, 0, 1, 0, 2], dtype=np.int32)
    picked = sample_rows(codes, 3, 2, seed=7)
    assert np.all(np.diff(picked) > 0)
    assert np.bincount(codes[picked], minlength=3).tolist() == [2, 2, 2]
    assert np.array_equal(picked, sample_rows(codes, 3, 2, seed=7))
    assert sorted(sample_rows(codes, 3, 100, seed=7).tolist()) == list(range(10))  # small tasks: every row
    draws = {tuple(sample_rows(codes, 3, 2, seed=s)) for s in range(20)}
    assert len(draws) > 1  # the seed matters


def test_estimate_is_exact_when_every_row_is_sampled():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 200).astype(np.int32)
    static, teacher = rng.standard_normal((200, 8)), rng.standard_normal((200, 6))
    got = estimate(static, codes, np.arange(200), teacher, 5)
    assert np.array_equal(got, group_means(teacher, codes, 5))


def test_control_variate_recovers_the_full_means_from_a_sample():
    # Teacher vectors a linear image of the static ones (plus a per-task offset): the static means of
    # every row carry what the sample misses, so the estimate is the full mean; the sample's own
    # mean is not.
    rng = np.random.default_rng(1)
    n, tasks = 3000, 6
    codes = rng.integers(0, tasks, n).astype(np.int32)
    static = rng.standard_normal((n, 10)) + rng.standard_normal((tasks, 10))[codes]
    teacher = static @ rng.standard_normal((10, 7)) + rng.standard_normal((tasks, 7))[codes]
    sample = sample_rows(codes, tasks, 40, seed=3)
    full = group_means(teacher, codes, tasks)
    est = estimate(static, codes, sample, teacher[sample], tasks)
    plain = group_means(teacher[sample], codes[sample], tasks)
    assert np.abs(est - full).max() < 1e-2  # the ridge's bias only
    assert np.abs(plain - full).max() > 50 * np.abs(est - full).max()


def _tasks(runner, emb, out, *extra):
    result = runner.invoke(app, ["select-tasks", str(emb), "-m", "4", "-n", "30", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_static_folder_selects_tasks_on_the_transformer_means(
    tiny_dataset, tiny_emb, static_cache, tmp_path, monkeypatch
):
    """With every row sampled, the static folder's stage 1 is the transformer folder's (the same tasks and
    budgets; gains to float32 rounding, the transformer's batches being others)."""
    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    out = tmp_path / "static"
    result = runner.invoke(
        app, ["embed", tiny_dataset, "--out", str(out), "--backend", "static", "--task-sample", "64"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    record = meta["task_means"]
    assert record["method"] == "transformer-sample" and record["sample_rows"] == 64 and record["dim"] == 384
    assert record["rows_embedded"] == meta["rows"] and record["sha256"] == artifacts.sha256_file(out / "task_means.npy")
    assert meta["max_tokens"] == 254  # the transformer's own window: 256 less [CLS] and [SEP]
    want = _tasks(runner, tiny_emb, tmp_path / "t.json")
    got = _tasks(runner, out, tmp_path / "s.json")
    assert [(t["task"], t["budget"]) for t in got["tasks"]] == [(t["task"], t["budget"]) for t in want["tasks"]]
    assert [t["gain"] for t in got["tasks"]] == pytest.approx([t["gain"] for t in want["tasks"]], rel=1e-5)

    rows_only = tmp_path / "rows"
    result = runner.invoke(
        app, ["embed", tiny_dataset, "--out", str(rows_only), "--backend", "static", "--task-means", "rows"]
    )
    assert result.exit_code == 0, result.output
    meta_rows = json.loads((rows_only / "meta.json").read_text())
    assert "task_means" not in meta_rows and not (rows_only / "task_means.npy").exists()
    assert meta_rows["max_tokens"] == 254  # the transformer is still sampled (for the row map)
    assert meta_rows["fingerprint"] != meta["fingerprint"]
    static_gains = [t["gain"] for t in _tasks(runner, rows_only, tmp_path / "r.json")["tasks"]]
    assert static_gains != [t["gain"] for t in got["tasks"]]  # the static rows' own means are another space

    # A damaged task_means.npy is refused in one line, not used.
    means = np.load(out / "task_means.npy")
    np.save(out / "task_means.npy", means + 1e-3)
    bad = runner.invoke(
        app, ["select-tasks", str(out), "-m", "4", "-n", "30", "--out", str(tmp_path / "b.json"), "--no-cache"]
    )
    assert bad.exit_code != 0 and "task_means.npy" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task-means", "transformer"], "--task-means transformer applies to --backend static only"),
        (["--backend", "static", "--task-means", "mean"], "unknown --task-means 'mean'"),
        (["--backend", "static", "--task-sample", "0"], "--task-sample must be at least 1"),
        (
            ["--backend", "static", "--task-means", "rows", "--row-map", "none", "--task-sample", "8"],
            "--task-sample applies",
        ),
        (["--row-map", "transformer"], "--row-map transformer applies to --backend static only"),
        (["--row-map", "tokens"], "--row-map tokens applies to --backend static only"),
        (["--backend", "static", "--row-map", "pca"], "unknown --row-map 'pca'"),
    ],
)
def test_task_means_options_are_checked(tiny_dataset, tmp_path, args, message):
    result = CliRunner().invoke(app, ["embed", tiny_dataset, "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x").exists()


def test_fit_affine_recovers_an_affine_map_and_the_encoder_keeps_zero_rows():
    from smart_cli.backends.mapped import MappedEncoder, fit_affine

    rng = np.random.default_rng(2)
    static = rng.standard_normal((500, 12))
    w, b = rng.standard_normal((12, 5)), rng.standard_normal(5)
    affine = fit_affine(static, static @ w + b)
    assert np.allclose(affine[:-1], w, atol=1e-2) and np.allclose(affine[-1], b, atol=1e-2)  # the ridge's bias

    class Inner:
        dim, name, max_seq_length = 12, "static:x", None

        def encode(self, texts):
            out = static[: len(texts)].astype(np.float32)
            out[1] = 0.0  # a text with no known token
            return out

        def count_truncated(self, texts):
            return 0

    enc = MappedEncoder(Inner(), affine)
    got = enc.encode(["a", "b", "c"])
    assert got.shape == (3, 5) and got.dtype == np.float32 and enc.name == "static:x+map" and enc.dim == 5
    assert not got[1].any() and np.allclose(np.linalg.norm(got[[0, 2]], axis=1), 1.0, atol=1e-6)
    want = static[0] @ w + b
    assert np.allclose(got[0], want / np.linalg.norm(want), atol=1e-4)
    with pytest.raises(ValueError, match="does not fit"):
        MappedEncoder(Inner(), affine[1:])


@pytest.mark.parametrize(("kind", "kept"), [("tokens", "static_tokens.npy"), ("transformer", "static_map.npy")])
def test_interrupted_static_embed_resumes_with_the_same_map(
    tiny_dataset, static_cache, tmp_path, monkeypatch, kind, kept
):
    """Killed between shards, the run keeps the sample and its map; resumed, the bytes equal an uninterrupted run."""
    from smart_cli.embed import shards

    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    args = ["--backend", "static", "--shard-rows", "16", "--task-sample", "4", "--row-map", kind]
    ref, out = tmp_path / "ref", tmp_path / "emb"
    assert runner.invoke(app, ["embed", tiny_dataset, "--out", str(ref), *args]).exit_code == 0
    real, calls = shards.encode_shard, []

    def failing(context, rows):
        calls.append(rows)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(context, rows)

    monkeypatch.setattr(shards, "encode_shard", failing)
    r = runner.invoke(app, ["embed", tiny_dataset, "--out", str(out), *args])
    assert r.exit_code == 130, r.output
    assert (out / kept).is_file() and list(out.glob(".teacher-sample-*.npy"))
    monkeypatch.setattr(shards, "encode_shard", real)
    r = runner.invoke(app, ["embed", tiny_dataset, "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    assert "the transformer sample of" in r.output and "resuming: 32 of 81 rows" in r.output
    for name in ("embeddings.npy", "task_means.npy", kept, "meta.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not list(out.glob(".teacher-sample-*.npy"))


def test_the_static_window_follows_the_sampled_transformer():
    from smart_cli.backends.base import DEFAULT_MODEL, model_window, resolve_model
    from smart_cli.embed.config import EmbedConfig

    model = resolve_model(DEFAULT_MODEL)
    assert model_window(model) == 254
    static = EmbedConfig(backend="static")
    assert static.window(model) == 254
    assert EmbedConfig(backend="static", task_means="rows", row_map="none").window(model) == 512
    assert EmbedConfig(backend="static", max_tokens=0).window(model) == 0
    assert EmbedConfig(backend="static", max_tokens=100).window(model) == 100
    assert EmbedConfig().window(model) is None  # the transformer backend: its model's own


def test_model_window_is_none_where_the_folder_does_not_say(tmp_path):
    from smart_cli.backends.base import model_window

    assert model_window(tmp_path) is None
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    assert model_window(tmp_path) is None  # no tokenizer.json: the special tokens are unknown


def test_the_sample_runs_in_small_batches_on_a_cpu_only():
    from smart_cli.backends.transformer import TransformerEncoder
    from smart_cli.embed.teacher import CPU_BATCH, sample_batch

    assert sample_batch(64, on_cpu=True) == CPU_BATCH == 16
    assert sample_batch(8, on_cpu=True) == 8  # smaller stays
    assert sample_batch(256, on_cpu=False) == 256  # a GPU keeps --batch-size
    assert TransformerEncoder(device="cpu").on_cpu
