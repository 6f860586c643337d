"""The ``static`` backend: a model2vec static model, encoded here rather than by model2vec.

Encoding is a token-bag lookup: each text's token vectors are summed through a sparse bag-of-tokens matrix
and the sum L2-normalised, tens of thousands of texts per second on two cores. No window: texts are never
truncated. The model itself comes from the cache in ``static_cache`` (distilled there on first use) or from
a local folder that already holds a model2vec model.

model2vec, tokenizers and scipy are imported inside functions only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smart_cli.backends.base import DEFAULT_MODEL, _display_name, _l2_normalise, resolve_model
from smart_cli.backends.static_cache import STATIC_PCA_DIMS, _is_model2vec_dir, distill_static, static_cache_path

_STATIC_CHUNK = 4096  # texts per internal step of the static encoder (bounds memory)
_WORD_CACHE_MAX = 1 << 20  # word -> token ids entries kept by the static encoder

_ASCII_OK = re.compile(r"[\t\n\r -~]*")


class StaticEncoder:
    """A model2vec static model: mean of token vectors, L2-normalised, float32.

    Texts are not truncated (no window). For BERT-style WordPiece tokenizers, plain-ASCII texts are split into
    words in Python and each distinct word is tokenized once by the real tokenizer and cached, which gives
    exactly the tokenizer's ids far faster; other texts go through the tokenizer itself.
    """

    max_seq_length: int | None = None

    def __init__(self, path: str | Path, *, name: str | None = None, from_cache: bool = True) -> None:
        from model2vec import StaticModel

        self.path = Path(path)
        static = StaticModel.from_pretrained(self.path)
        self.name = name or f"static:{self.path.name}"
        self.from_cache = from_cache
        self.distill_seconds: float | None = None
        self.dim = int(static.dim)

        table = np.asarray(static.embedding, dtype=np.float32)
        mapping = None if static.token_mapping is None else np.asarray(static.token_mapping, dtype=np.int64)
        weights = None if static.weights is None else np.asarray(static.weights, dtype=np.float32)
        self._table = np.ascontiguousarray(table)
        self._mapping = mapping
        self._weights = weights
        self._unk = static.unk_token_id

        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(static.tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        self._words: dict[str, list[int]] = {}
        self._word_re, self._lowercase = self._fast_path_rules(tok)
        self._added = sorted({t.content.lower() for t in tok.get_added_tokens_decoder().values() if t.content})

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        cache_dir: str | Path | None = None,
        trust_remote_code: bool = False,
        pca_dims: int = STATIC_PCA_DIMS,
    ) -> StaticEncoder:
        """Load the cached static model for ``model``, distilling it first if it is not cached yet.

        A local directory that already holds a model2vec model is loaded as it is.
        """
        local = Path(resolve_model(model))
        if _is_model2vec_dir(local):
            return cls(local, name=f"static:{_display_name(model)}", from_cache=True)
        target = static_cache_path(model, cache_dir=cache_dir, pca_dims=pca_dims)
        seconds = None
        if not (target / "model.safetensors").exists():
            seconds = distill_static(model, target, pca_dims=pca_dims, trust_remote_code=trust_remote_code)
        enc = cls(target, name=f"static:{_display_name(model)}", from_cache=seconds is None)
        enc.distill_seconds = seconds
        return enc

    # -- tokenization ------------------------------------------------------------------------------

    @staticmethod
    def _fast_path_rules(tok) -> tuple[re.Pattern[str] | None, bool]:
        """The word splitter that reproduces BertNormalizer + BertPreTokenizer on ASCII text, or None."""
        spec = json.loads(tok.to_str())
        norm, pre, mdl = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        if (
            norm.get("type") != "BertNormalizer"
            or not norm.get("clean_text", False)
            or pre.get("type") != "BertPreTokenizer"
            or mdl.get("type") != "WordPiece"
        ):
            return None, False
        lowercase = bool(norm.get("lowercase", False))
        # runs of ASCII letters/digits, or one ASCII punctuation character; whitespace separates
        letters = "a-z0-9" if lowercase else "A-Za-z0-9"
        return re.compile(rf"[{letters}]+|[!-/:-@\[-`{{-~]"), lowercase

    def _word_ids(self, words: set[str]) -> None:
        missing = sorted(w for w in words if w not in self._words)
        if not missing:
            return
        if len(self._words) + len(missing) > _WORD_CACHE_MAX:
            # Start afresh, then look up every word of this call: the caller reads them all.
            self._words.clear()
            missing = sorted(words)
        unk = self._unk
        for word, enc in zip(missing, self._tok.encode_batch_fast(missing, add_special_tokens=False)):
            self._words[word] = [i for i in enc.ids if i != unk]

    def _fast_ok(self, text: str, lowered: str) -> bool:
        """Plain printable ASCII (plus tab/newline/return) holding no added token such as "[PAD]"."""
        if not text.isascii() or _ASCII_OK.fullmatch(text) is None:
            return False
        return not any(a in lowered for a in self._added)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, unknown-token ids dropped (as model2vec does)."""
        out: list[list[int] | None] = [None] * len(texts)
        slow: list[int] = []
        if self._word_re is not None:
            findall, lower = self._word_re.findall, self._lowercase
            split: list[tuple[int, list[str]]] = []
            for i, text in enumerate(texts):
                lowered = text.lower()
                if self._fast_ok(text, lowered):
                    split.append((i, findall(lowered if lower else text)))
                else:
                    slow.append(i)
            self._word_ids({w for _, ws in split for w in ws})
            cache = self._words
            for i, ws in split:
                out[i] = [t for w in ws for t in cache[w]]
        else:
            slow = list(range(len(texts)))
        if slow:
            unk = self._unk
            encs = self._tok.encode_batch_fast([texts[i] for i in slow], add_special_tokens=False)
            for i, enc in zip(slow, encs):
                out[i] = [t for t in enc.ids if t != unk]
        return out  # type: ignore[return-value]

    # -- encoding ----------------------------------------------------------------------------------

    def _encode_chunk(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.sparse import csr_matrix

        ids = self.token_ids(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(indptr[-1]))
        data = self._weights[flat] if self._weights is not None else np.ones(len(flat), dtype=np.float32)
        cols = self._mapping[flat] if self._mapping is not None else flat
        bag = csr_matrix((data, cols, indptr), shape=(len(ids), self._table.shape[0]))
        sums = np.asarray(bag @ self._table, dtype=np.float32)
        # The mean and the sum point the same way; only the direction survives normalisation.
        return _l2_normalise(sums)

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._encode_chunk(texts[lo : lo + _STATIC_CHUNK]) for lo in range(0, len(texts), _STATIC_CHUNK)]
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    def count_truncated(self, texts: list[str]) -> int:
        return 0

    def close(self) -> None:
        return None

    def __enter__(self) -> StaticEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
