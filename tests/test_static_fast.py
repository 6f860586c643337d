"""The static encoder's compiled path (numba word split, word table, bag-of-tokens sums) against its
reference path (the tokenizer itself and a sparse bag-of-tokens matrix): the same bytes, the window."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from smart_cli.backends import static_fast
from smart_cli.backends.static import StaticEncoder
from smart_cli.cli import app

# Every kind of character the tokenizer treats specially: ASCII controls (removed), NUL and U+FFFD
# (removed), accents and combining marks (stripped), CJK (split), emoji, zero-width and format characters,
# Unicode whitespace and punctuation, full-width letters, Turkish dotted I, Greek sigma, a BOM.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "    \t\n\r\x0b\x0c\x00\x1f\x7f\x85\ufffd"
    "éüñçÅßøœÆ\u0301\u0308\u0327东京日本語中文한국어😀👍🏽✓€£°"
    "\u200b\u200c\u200d\u2060\ufeff\u00a0\u3000\u2028\u2029\u202f"
    "“”‘’—–…«»¿¡·•。、！？"
    "ＡＢｃ１İıΣσςЖжΩ"
)
SPECIAL = [
    "",
    "   \t\n ",
    "[PAD] and [UNK] inside",
    "[pad] and [unk] in lower case",
    "x[PAD]y",
    "a" * 100,
    "a" * 101,
    "A" * 101 + " short",
    "é" * 100,
    "é" * 101,
    "東京" * 80,
    "form\x0cfeed tab\there nul\x00byte del\x7fchar",
    "naïve café résumé Zürich São Paulo",
    "ΟΔΥΣΣΕΥΣ Σίσυφος",
    "İstanbul DİYARBAKIR",
    "zero\u200bwidth joiner\u200dhere soft\u00adhyphen",
    "e\u0301\u0301\u0301 combining o\u0308 marks",
    "emoji 😀😀 flags 🇫🇷 skin 👍🏽",
    "unknown words: qxzqj ☃☃☃ \U0001f9ff \U000e0001",
    "full-width ＨＥＬＬＯ ｗｏｒｌｄ １２３",
    "numbers 3.14159, 1,000,000 and 12:30pm; e-mail a.b@c.de",
    "Mixed CASE WordPiece-ish: Unbelievably, TOKENIZATION works!",
    # characters that are always a piece of their own (CJK ideographs, U+2010-U+2027, U+3001-U+3003), at
    # the edges of their ranges and beside letters, marks and the characters just outside the ranges
    "東京abc東京 x中\u0301a 中\u0301\u0308 ab\u4e00cd\u9fffEF \u3400\u4dbf\uf900\ufaff\u33ff\u4dc0\ufb00",
    "a\u2010b\u2027C\u200fd\u2028e\u2030f “quoted”—dash–en…dots x、y。z〃w\u3000v\u3004",
    "supplementary \U00020000\U0002a6df\U0002b820\U0002b91f\U0002b920 ideographs",
    "Ａ中Ｂ日本語のテキスト、かな。한국어—テスト",
]


@pytest.fixture(scope="module")
def path(static_encoder):
    return static_encoder.path


@pytest.fixture(scope="module")
def reference(path):
    return StaticEncoder(path, fast=False)


def random_texts(n: int, seed: int, longest: int = 300) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "answer", "Question", "passage", "review", "Hypothesis", "translate", "naïve", "東京"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, longest // 6)):
            if rng.random() < 0.5:
                parts.append(rng.choice(words))
            else:
                parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))))
            parts.append(rng.choice([" ", " ", "", "\n", ", ", rng.choice(ALPHABET)]))
        out.append("".join(parts))
    return out


def test_fast_path_is_used_for_the_bert_tokenizer(path):
    enc = StaticEncoder(path)
    assert enc.fast and enc.max_seq_length is None
    assert static_fast.supports(enc._tok)
    assert not StaticEncoder(path, fast=False).fast


def test_same_bytes_as_the_reference_path(path, reference):
    texts = SPECIAL + random_texts(1500, seed=1)
    fast = StaticEncoder(path)
    expected = reference.encode(texts)
    got = fast.encode(texts)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()
    # the texts the fast path refuses (added tokens) went through the reference path
    _, _, refused = fast._bag.blob(texts)
    assert refused == [2, 4]
    # a second call, with the word table warm and the texts in another order, gives the same rows
    order = np.random.default_rng(0).permutation(len(texts))
    again = fast.encode([texts[i] for i in order])
    assert again.tobytes() == expected[order].tobytes()
    assert np.count_nonzero(np.linalg.norm(got, axis=1)) > 0.9 * len(texts)


def test_lone_surrogates_fail_as_on_the_reference_path(path, reference):
    texts = ["fine text", "bad \ud800 text"]
    with pytest.raises(Exception) as ref_error:
        reference.encode(texts)
    with pytest.raises(type(ref_error.value)):
        StaticEncoder(path).encode(texts)


def test_word_table_grows_and_starts_afresh(path, reference, monkeypatch):
    """A tiny table grows (entries, key bytes, ids) as pieces arrive; a full one starts afresh between calls."""
    texts = random_texts(400, seed=2) + ["東京" * 2000, "longword" * 40 + "é"]
    expected = reference.encode(texts)
    fast = StaticEncoder(path)
    fast._bag._reset(entries=2, key_bytes=8, ids=4)
    assert fast.encode(texts).tobytes() == expected.tobytes()
    assert fast._bag.entries > 1000
    monkeypatch.setattr(static_fast, "_MAX_ENTRIES", 100)
    assert fast.encode(texts[:50]).tobytes() == expected[:50].tobytes()  # started afresh first
    assert fast._bag.entries < 1000
    assert fast.encode(texts).tobytes() == expected.tobytes()


def test_window_keeps_the_first_tokens(path):
    """max_tokens: the first W known tokens count, the rest of the text is not tokenized; texts within the
    window keep their vectors; truncated texts are counted."""
    texts = random_texts(300, seed=3, longest=600) + SPECIAL
    window = 24
    full = StaticEncoder(path, fast=False)
    ids = full.token_ids(texts)
    long = np.array([len(x) > window for x in ids])
    assert 20 < long.sum() < len(texts) - 20
    cut_ref = StaticEncoder(path, fast=False, max_tokens=window)
    cut = StaticEncoder(path, max_tokens=window)
    got = cut.encode(texts)
    assert got.tobytes() == cut_ref.encode(texts).tobytes()
    assert cut.max_seq_length == window
    assert cut.count_truncated(texts) == cut_ref.count_truncated(texts) == int(long.sum())
    untouched = full.encode(texts)
    assert np.array_equal(got[~long], untouched[~long])
    assert not np.array_equal(got[long], untouched[long])
    # the window's vector is the sum of the first W ids' vectors, added one by one in float32
    from smart_cli.backends.base import _l2_normalise

    table = full._table
    sums = np.zeros((int(long.sum()), table.shape[1]), dtype=np.float32)
    for row, x in enumerate(x for x, is_long in zip(ids, long) if is_long):
        for t in x[:window]:
            sums[row] += table[t]
    assert got[long].tobytes() == _l2_normalise(sums).tobytes()


def test_embed_max_tokens_flag(tiny_dataset, static_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("SMART_CLI_CACHE", str(static_cache))
    runner = CliRunner()
    metas = {}
    for window in ("4", "512"):
        out = tmp_path / f"emb{window}"
        result = runner.invoke(
            app, ["embed", tiny_dataset, "--out", str(out), "--backend", "static", "--max-tokens", window]
        )
        assert result.exit_code == 0, result.output
        metas[window] = json.loads((out / "meta.json").read_text())
    assert metas["4"]["max_seq_length"] == 4 and metas["512"]["max_seq_length"] == 512
    assert metas["4"]["truncated"] > 0 and metas["512"]["truncated"] == 0
    assert metas["4"]["max_tokens"] == 4 and metas["4"]["fingerprint"] != metas["512"]["fingerprint"]
    bad = runner.invoke(app, ["embed", tiny_dataset, "--out", str(tmp_path / "x"), "--max-tokens", "16"])
    assert bad.exit_code == 2 and "--max-tokens applies to --backend static only" in bad.output
    neg = runner.invoke(
        app, ["embed", tiny_dataset, "--out", str(tmp_path / "y"), "--backend", "static", "--max-tokens", "-1"]
    )
    assert neg.exit_code == 2 and "--max-tokens must be at least 0" in neg.output


def _sums_one_by_one(tok, vectors, unk, texts, window=0):
    """The bag-of-tokens sums of the definition: the tokenizer on each whole text, ids added in order."""
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    cut = np.zeros(len(texts), dtype=bool)
    for row, text in enumerate(texts):
        ids = [i for i in tok.encode(text, add_special_tokens=False).ids if unk is None or i != unk]
        cut[row] = bool(window) and len(ids) > window
        for i in ids[:window] if window else ids:
            out[row] += vectors[i]
    return out, cut


def _bert_tokenizer(vocab: dict[str, int], lowercase: bool, chinese: bool, max_chars: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=max_chars))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=chinese)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]"])
    return tok


@pytest.mark.parametrize(
    "lowercase, chinese, keep_unk, window",
    [(True, True, False, 0), (False, True, False, 7), (True, False, True, 0), (False, False, True, 5)],
)
def test_other_bert_tokenizers(static_encoder, lowercase, chinese, keep_unk, window):
    """Cased and uncased, CJK set apart or not, unknown tokens kept or dropped, a vocabulary with holes (so
    the compiled WordPiece meets words it cannot cover) and short words only: the same sums as the tokenizer
    on each whole text."""
    rng = np.random.default_rng(7)
    full = static_encoder._tok.get_vocab()
    holes = {t for t in full if t not in ("[PAD]", "[UNK]") and rng.random() < 0.3}
    vocab = {t: i for i, t in enumerate(sorted(set(full) - holes))}
    tok = _bert_tokenizer(vocab, lowercase, chinese, max_chars=12)
    assert static_fast.supports(tok)
    vectors = rng.standard_normal((len(vocab), 8)).astype(np.float32)
    unk = None if keep_unk else vocab["[UNK]"]
    texts = SPECIAL + random_texts(400, seed=4)
    bag = static_fast.WordBag(tok, vectors, unk)
    got, cut, refused = bag.sums(texts, window)
    assert bag._vocab is not None and refused == [2, 4]
    keep = [i for i in range(len(texts)) if i not in refused]
    expected, expected_cut = _sums_one_by_one(tok, vectors, unk, [texts[i] for i in keep], window)
    assert got[keep].tobytes() == expected.tobytes()
    assert np.array_equal(cut[keep], expected_cut) and (expected_cut.any() or not window)


def test_one_thread_and_all_threads_give_the_same_bytes(path, monkeypatch):
    """The scans run in parallel over texts and the table is filled serially from their lists, so neither the
    number of threads, nor how texts are shared among them, nor the scan blocks, nor how many missing pieces
    the first pass keeps change a byte; with the same first pass, the table is the same too."""
    import numba

    texts = SPECIAL + random_texts(600, seed=5, longest=900)
    results = []
    configs = [(1, 16, 1 << 24, 8), (numba.config.NUMBA_NUM_THREADS, 1, 256, 8), (None, 0, 1 << 24, 0), (1, 4, 999, 1)]
    for threads, chunk, scan, inline in configs:
        monkeypatch.setattr(static_fast, "_CHUNK", chunk)
        monkeypatch.setattr(static_fast, "_SCAN_BYTES", scan)
        monkeypatch.setattr(static_fast, "_INLINE", inline)
        before = numba.get_num_threads()
        numba.set_num_threads(threads or before)
        try:
            bag = StaticEncoder(path)._bag
            sums, cut, _ = bag.sums(texts, 64)
        finally:
            numba.set_num_threads(before)
        keys = [bag._keys[o : o + n].tobytes() for o, n in zip(bag._koff[: bag.entries], bag._klen[: bag.entries])]
        results.append((sums.tobytes(), cut.tobytes(), keys))
    assert results[0] == results[1]
    assert all(r[:2] == results[0][:2] and sorted(r[2]) == sorted(results[0][2]) for r in results[2:])
