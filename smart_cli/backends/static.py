"""The ``static`` backend: a model2vec static model, encoded here rather than by model2vec.

Encoding is a token-bag lookup: each text's token vectors are summed and the sum L2-normalised. For BERT
tokenizers the compiled path of ``static_fast`` does it (numba over the UTF-8 bytes, a word table filled by
the tokenizer, all cores); other tokenizers, and the few texts that path refuses, go through the tokenizer
and a sparse bag-of-tokens matrix (the *reference* path, this encoder's only path before; ``fast=False``
keeps to it). Both give the same bytes. ``max_tokens``: only the first so many tokens of a text count
(unknown tokens dropped first, as model2vec does; 0: no window). The model itself comes from the cache in
``static_cache`` (distilled there on first use) or from a local folder that already holds a model2vec model.

model2vec, tokenizers, numba and scipy are imported inside functions only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smart_cli.backends.base import DEFAULT_MODEL, _display_name, _l2_normalise, resolve_model
from smart_cli.backends.static_cache import STATIC_PCA_DIMS, _is_model2vec_dir, distill_static, static_cache_path

_STATIC_CHUNK = 4096  # texts per internal step of the reference path (bounds memory)
_FAST_CHUNK = 65_536  # texts per call of the compiled path
_WORD_CACHE_MAX = 1 << 20  # word -> token ids entries kept by the static encoder

_ASCII_OK = re.compile(r"[\t\n\r -~]*")


class StaticEncoder:
    """A model2vec static model: mean of token vectors, L2-normalised, float32.

    ``max_tokens``: the window, tokens of a text that count (0 or None: all). ``fast``: the compiled path
    where the tokenizer allows it. On the reference path, for BERT-style WordPiece tokenizers, plain-ASCII
    texts are split into words in Python and each distinct word is tokenized once by the real tokenizer and
    cached, which gives exactly the tokenizer's ids far faster; other texts go through the tokenizer itself.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        from_cache: bool = True,
        max_tokens: int | None = None,
        fast: bool = True,
    ) -> None:
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
        self.max_seq_length: int | None = int(max_tokens) if max_tokens else None
        self._extra: np.ndarray | None = None
        self._bag = self._fast_bag(tok) if fast else None
        self._memo: tuple[list[str], int] | None = None

    def extend(self, extra: np.ndarray) -> None:
        """Sum ``extra`` (a float32 row per token id) beside the static vectors: ``sums`` then returns the
        static sum and ``extra``'s sum side by side, one pass over each text (``backends/token_mapped.py``)."""
        extra = np.ascontiguousarray(extra, dtype=np.float32)
        vocab = self._table.shape[0] if self._mapping is None else len(self._mapping)
        if extra.ndim != 2 or extra.shape[0] != vocab:
            raise ValueError(f"a table of {extra.shape[0]} rows does not fit a vocabulary of {vocab} tokens")
        self._extra = extra
        if self._bag is not None:
            self._bag = self._fast_bag(self._tok)

    def token_vectors(self) -> np.ndarray:
        """float32, a row per token id: the vector a text's sum adds for each occurrence of the token."""
        table = self._table
        if self._mapping is not None:
            table = table[self._mapping]
        if self._weights is not None:
            # The products a sparse matrix would form (weight x vector, float32), formed once.
            table = self._weights[:, None] * table
        return table

    def _fast_bag(self, tok):
        from smart_cli.backends import static_fast

        if not static_fast.supports(tok):
            return None
        table = self.token_vectors()
        if self._extra is not None:
            table = np.hstack([table, self._extra])
        return static_fast.WordBag(tok, table, self._unk)

    @property
    def fast(self) -> bool:
        """Whether the compiled path encodes (a BERT WordPiece tokenizer and ``fast``)."""
        return self._bag is not None

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        cache_dir: str | Path | None = None,
        trust_remote_code: bool = False,
        pca_dims: int = STATIC_PCA_DIMS,
        max_tokens: int | None = None,
        fast: bool = True,
    ) -> StaticEncoder:
        """Load the cached static model for ``model``, distilling it first if it is not cached yet.

        A local directory that already holds a model2vec model is loaded as it is.
        """
        local = Path(resolve_model(model))
        if _is_model2vec_dir(local):
            return cls(local, name=f"static:{_display_name(model)}", from_cache=True, max_tokens=max_tokens, fast=fast)
        target = static_cache_path(model, cache_dir=cache_dir, pca_dims=pca_dims)
        seconds = None
        if not (target / "model.safetensors").exists():
            seconds = distill_static(model, target, pca_dims=pca_dims, trust_remote_code=trust_remote_code)
        enc = cls(
            target, name=f"static:{_display_name(model)}", from_cache=seconds is None, max_tokens=max_tokens, fast=fast
        )
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

    def _reference_sums(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Token-vector sums through the tokenizer and a sparse bag-of-tokens matrix; texts truncated."""
        from scipy.sparse import csr_matrix

        ids = self.token_ids(texts)
        truncated = 0
        if self.max_seq_length:
            window = self.max_seq_length
            truncated = sum(len(x) > window for x in ids)
            ids = [x[:window] for x in ids]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(indptr[-1]))
        data = self._weights[flat] if self._weights is not None else np.ones(len(flat), dtype=np.float32)
        cols = self._mapping[flat] if self._mapping is not None else flat
        bag = csr_matrix((data, cols, indptr), shape=(len(ids), self._table.shape[0]))
        sums = np.asarray(bag @ self._table, dtype=np.float32)
        if self._extra is not None:
            ones = csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(ids), len(self._extra)))
            sums = np.hstack([sums, np.asarray(ones @ self._extra, dtype=np.float32)])
        return sums, truncated

    def _sums(self, texts: list[str]) -> tuple[np.ndarray, int]:
        if self._bag is None:
            return self._reference_sums(texts)
        sums, cut, refused = self._bag.sums(texts, self.max_seq_length or 0)
        truncated = int(cut.sum())
        if refused:
            sums[refused], more = self._reference_sums([texts[i] for i in refused])
            truncated += more
        return sums, truncated

    def sums(self, texts: list[str]) -> np.ndarray:
        """float32 token-vector sums of ``texts`` in the window, not normalised: ``dim`` static columns, then
        the ``extend`` table's columns where one is set."""
        texts = list(texts)
        width = self.dim + (0 if self._extra is None else self._extra.shape[1])
        if not texts:
            return np.zeros((0, width), dtype=np.float32)
        step = _STATIC_CHUNK if self._bag is None else _FAST_CHUNK
        parts = [self._sums(texts[lo : lo + step]) for lo in range(0, len(texts), step)]
        self._memo = (texts, sum(t for _, t in parts))
        return np.concatenate([s for s, _ in parts], axis=0) if len(parts) > 1 else parts[0][0]

    def encode(self, texts: list[str]) -> np.ndarray:
        # The mean and the sum point the same way; only the direction survives normalisation.
        return _l2_normalise(self.sums(texts)[:, : self.dim])

    def count_truncated(self, texts: list[str]) -> int:
        """Texts with more than ``max_tokens`` tokens (unknown tokens not counted); 0 without a window."""
        if not self.max_seq_length or not texts:
            return 0
        texts = list(texts)
        if self._memo is None or self._memo[0] != texts:
            self.encode(texts)
        return self._memo[1]  # type: ignore[index]

    def close(self) -> None:
        return None

    def __enter__(self) -> StaticEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
