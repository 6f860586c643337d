"""The static encoder's fast path: texts to bag-of-tokens sums through a word table, in numba, on all cores.

``WordBag`` keeps the word table (``wordbag.py`` describes it) across calls: a piece of text is tokenized
the first time it is seen and looked up afterwards. A call (``sums``), every scan in parallel over texts:

1. every text is summed from the pieces already known (most texts, once the table is warm); a text that
   meets an unknown piece is only scanned from there on for the pieces it lacks, up to its token window:
   how many, and the first few;
2. the texts that lack more are scanned again, listing them all; the pieces go into the table serially, in
   a fixed order (the first few's texts, then the others', each in text order), each piece once;
3. the new pieces are tokenized: plain ones (ASCII letters and digits, or one ASCII punctuation character)
   by the compiled WordPiece of ``wordpiece.py``, in parallel; the others by the tokenizer, in one batch;
4. the texts that met an unknown piece are summed again, now from known pieces only.

The table, and so every sum, is the same however many threads run and however texts are shared among them.

Only the first ``window`` tokens of a text are tokenized and summed (0: all); the rest of a long prompt
is cut into pieces but never looked up. Which tokenizers qualify (``supports``): BERT's normaliser and
pre-tokenizer with a WordPiece model. Texts the caller must send through the tokenizer itself:
those holding an added token's text (``[PAD]``, ``[UNK]``: the tokenizer matches those across pieces) and
those that are not valid Unicode (lone surrogates).

numba is imported with ``wordbag`` (on first use, from ``static.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numba
import numpy as np

from smart_cli.backends import wordbag, wordpiece

_MAX_ENTRIES = 1 << 21  # the table starts afresh between calls beyond this many pieces ...
_MAX_KEY_BYTES = 1 << 27  # ... or this many bytes of them
_SCAN_BYTES = 1 << 24  # text scanned for missing pieces at a time (bounds the list of pieces found)
_CHUNK = 16  # texts a thread takes at a time
_INLINE = 8  # missing pieces per text kept by the first pass (a text that lacks more is scanned again)


def supports(tok) -> bool:
    """The tokenizer is one whose pieces ``wordbag`` can cut: BertNormalizer, BertPreTokenizer, WordPiece."""
    spec = json.loads(tok.to_str())
    norm, pre, mdl = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    return (
        norm.get("type") == "BertNormalizer"
        and pre.get("type") == "BertPreTokenizer"
        and mdl.get("type") == "WordPiece"
        and isinstance(mdl.get("max_input_chars_per_word"), int)
    )


class WordBag:
    """Bag-of-tokens sums of texts through a word table filled by ``tok`` (a ``tokenizers.Tokenizer``)."""

    def __init__(self, tok, vectors: np.ndarray, unk: int | None) -> None:
        spec = json.loads(tok.to_str())
        self._tok = tok
        self._unk = unk
        self._lower = bool(spec["normalizer"].get("lowercase", False))
        self._max_chars = int(spec["model"]["max_input_chars_per_word"])
        # An over-long plain piece is one unknown token: skipped unread where model2vec drops it, else looked up.
        self._skip_chars = self._max_chars if unk is not None else 1 << 62
        self._cls = wordbag.byte_classes(bool(spec["normalizer"].get("handle_chinese_chars", True)))
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        added = tok.get_added_tokens_decoder().values()
        self._added = [t.content.encode() for t in added if t.content]
        self._added_lower = [t.content.lower().encode() for t in added if t.content and t.normalized]
        self._spaced_added = any(not t.content.strip() or any(c.isspace() for c in t.content) for t in added)
        vocab = tok.get_vocab(with_added_tokens=False)
        unk_token = spec["model"].get("unk_token")
        self._vocab = wordpiece.vocab_table(vocab) if unk_token in vocab else None
        self._vocab_unk = int(vocab[unk_token]) if unk_token in vocab else -1
        self._prefix = np.frombuffer(str(spec["model"].get("continuing_subword_prefix") or "").encode(), dtype=np.uint8)
        self._reset()

    def _reset(self, entries: int = 1 << 16, key_bytes: int = 1 << 20, ids: int = 1 << 18) -> None:
        """An empty word table of these capacities (it grows as it fills)."""
        self._slots = np.full(2 * entries, -1, dtype=np.int64)
        self._hash = np.zeros(entries, dtype=np.uint64)
        self._koff = np.zeros(entries, dtype=np.int64)
        self._klen = np.zeros(entries, dtype=np.int64)
        self._ioff = np.zeros(entries, dtype=np.int64)
        self._ilen = np.zeros(entries, dtype=np.int64)
        self._keys = np.zeros(key_bytes, dtype=np.uint8)
        self._ids = np.zeros(ids, dtype=np.int32)
        self._meta = np.zeros(3, dtype=np.int64)  # entries, key bytes, ids used

    @property
    def entries(self) -> int:
        return int(self._meta[0])

    def _table(self) -> tuple:
        return (self._slots, self._hash, self._koff, self._klen, self._keys, self._ioff, self._ilen)

    # -- the texts the caller keeps ------------------------------------------------------------------

    def blob(self, texts: Sequence[str]) -> tuple[bytes, np.ndarray, list[int]]:
        """The texts as one UTF-8 string, each text's end offset, and the texts this path must not take."""
        try:
            parts = [t.encode("utf-8") for t in texts]
            refused: list[int] = []
        except UnicodeEncodeError:
            parts, refused = [], []
            for i, t in enumerate(texts):
                try:
                    parts.append(t.encode("utf-8"))
                except UnicodeEncodeError:
                    parts.append(b"")
                    refused.append(i)
        blob = b"".join(parts)
        ends = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
        if any(a in blob for a in self._added) or (
            self._added_lower and any(a in blob.lower() for a in self._added_lower)
        ):
            refused = sorted(set(refused) | {i for i, p in enumerate(parts) if self._holds_added(p)})
        return blob, ends, refused

    def _holds_added(self, part: bytes) -> bool:
        if any(a in part for a in self._added):
            return True
        return bool(self._added_lower) and any(a in part.lower() for a in self._added_lower)

    # -- sums ----------------------------------------------------------------------------------------

    def sums(self, texts: Sequence[str], window: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """float32 token-vector sums of ``texts``, which texts were truncated, and the refused texts (their
        rows are left zero: the caller encodes them)."""
        if self.entries > _MAX_ENTRIES or self._meta[1] > _MAX_KEY_BYTES:
            self._reset()
        raw, ends, refused = self.blob(texts)
        blob = np.frombuffer(raw, dtype=np.uint8)
        starts = np.zeros(len(texts), dtype=np.int64)
        starts[1:] = ends[:-1]
        out = np.zeros((len(texts), self._vectors.shape[1]), dtype=np.float32)
        state = np.zeros(len(texts), dtype=np.int8)
        lacks = np.zeros(len(texts), dtype=np.int64)
        found = np.zeros((len(texts) * _INLINE, 3), dtype=np.int64)
        todo = np.setdiff1d(np.arange(len(texts), dtype=np.int64), np.asarray(refused, dtype=np.int64))
        window = int(window)
        self._sum(blob, starts, ends, todo, window, out, state, lacks, found)
        missing = todo[state[todo] == 2]
        if len(missing):
            self._add_missing(blob, starts, ends, missing, lacks[missing], found, window)
            self._sum(blob, starts, ends, missing, window, out, state, lacks, found)
            if (state[missing] == 2).any():  # pragma: no cover - add_missing puts every piece needed in
                raise RuntimeError("static encoder: a piece of text is missing from the word table")
        return out, state == 1, refused

    def _sum(self, blob, starts, ends, todo, window: int, out, state, lacks, found) -> None:
        rules, table = (self._cls, self._lower, self._skip_chars, window), self._table()
        with _chunks():
            wordbag.bag_sums(
                blob, starts, ends, todo, *rules, table, self._ids, self._vectors, out, state, lacks, found
            )

    def _add_missing(self, blob, starts, ends, todo, lacks, found, window: int) -> None:
        """Put the pieces texts ``todo`` lack (``lacks`` of them, the first ``_INLINE`` of each text in
        ``found``) into the table and tokenize them. The texts that lack more are listed again in parallel, a
        block of about ``_SCAN_BYTES`` at a time; only the insertion is serial."""
        first = self.entries
        few = lacks <= _INLINE
        self._insert(blob, found[_gather(todo[few] * _INLINE, lacks[few])])
        todo, lacks = todo[~few], lacks[~few]
        cls, lower, most = self._cls, self._lower, self._skip_chars
        for block, counts in zip(*(_blocks(a, ends[todo] - starts[todo], _SCAN_BYTES) for a in (todo, lacks))):
            offsets = np.zeros(len(block), dtype=np.int64)
            np.cumsum(counts[:-1], out=offsets[1:])
            listed = np.zeros((int(counts.sum()), 3), dtype=np.int64)
            with _chunks():
                wordbag.list_missing(
                    blob, starts, ends, block, cls, lower, most, window, self._table(), offsets, listed
                )
            self._insert(blob, listed)
        try:
            self._tokenize(first, self.entries)
        except BaseException:
            self._reset()  # entries left untokenized would never be filled in
            raise

    def _insert(self, blob, pieces) -> None:
        q = 0
        while (q := wordbag.insert_missing(blob, pieces, q, self._table(), self._meta)) >= 0:
            self._grow()

    def _grow(self) -> None:
        """Double whichever part of the table is full: the entries (and their slots), or the key bytes."""
        n = self.entries
        if n < len(self._hash) and 2 * (n + 1) <= len(self._slots):  # the entries have room: the key bytes not
            self._keys = _resized(self._keys, 2 * len(self._keys))
        else:
            size = 2 * len(self._hash)
            self._hash, self._koff, self._klen = (_resized(a, size) for a in (self._hash, self._koff, self._klen))
            self._ioff, self._ilen = _resized(self._ioff, size), _resized(self._ilen, size)
            self._slots = np.full(2 * size, -1, dtype=np.int64)
            wordbag.rehash(self._slots, self._hash, n)

    def _tokenize(self, lo: int, hi: int) -> None:
        """Tokenize entries lo..hi-1 (unknown-token ids dropped, as model2vec does): plain pieces by the
        compiled WordPiece (``wordpiece.py``) in parallel, the others by the tokenizer itself."""
        if hi <= lo:
            return
        koff, klen = self._koff, self._klen
        lens = np.full(hi - lo, -1, dtype=np.int64)
        scratch_off = np.zeros(hi - lo, dtype=np.int64)
        np.cumsum(klen[lo : hi - 1], out=scratch_off[1:])
        scratch = np.zeros(int(klen[lo:hi].sum()), dtype=np.int32)
        if self._vocab is not None:
            unk, drop = self._vocab_unk, -1 if self._unk is None else int(self._unk)
            rules = (self._cls, self._vocab, self._prefix, self._max_chars, unk, drop)
            with _chunks():
                wordpiece.word_pieces(self._keys, koff, klen, lo, hi, *rules, scratch, scratch_off, lens)
        plain = lens >= 0
        ids = scratch[_gather(scratch_off[plain], lens[plain])]
        ioff = np.zeros(hi - lo, dtype=np.int64)
        ioff[plain] = np.cumsum(lens[plain]) - lens[plain]
        rest = np.flatnonzero(~plain)
        if len(rest):
            keys = self._keys
            words = [keys[koff[lo + k] : koff[lo + k] + klen[lo + k]].tobytes().decode("utf-8") for k in rest]
            more, piece = self._encode_pieces(words)
            if self._unk is not None:
                keep = more != self._unk
                more, piece = more[keep], piece[keep]
            counts = np.bincount(piece, minlength=len(words)).astype(np.int64)
            ioff[rest] = len(ids) + np.cumsum(counts) - counts
            lens[rest] = counts
            ids = np.concatenate([ids, more])
        used = int(self._meta[2])
        need = used + len(ids)
        if need > len(self._ids):
            self._ids = _resized(self._ids, max(need, 2 * len(self._ids)))
        self._ids[used:need] = ids
        self._ioff[lo:hi] = used + ioff
        self._ilen[lo:hi] = lens
        self._meta[2] = need

    def _encode_pieces(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``words`` in order and the word each comes from. Pieces are cut where the tokenizer
        always cuts, so the words joined by spaces tokenize as each alone: one call, one ``Encoding``
        (an added token with a space in it could match across two words: then one call per word)."""
        if self._spaced_added:
            encs = self._tok.encode_batch_fast(words, add_special_tokens=False)
            lists = [enc.ids for enc in encs]
            piece = np.repeat(np.arange(len(words)), [len(x) for x in lists])
            return np.fromiter((t for x in lists for t in x), dtype=np.int32, count=len(piece)), piece
        starts = np.zeros(len(words), dtype=np.int64)
        np.cumsum([len(w) + 1 for w in words[:-1]], out=starts[1:])
        enc = self._tok.encode(" ".join(words), add_special_tokens=False)
        ids = np.asarray(enc.ids, dtype=np.int32)
        first = np.fromiter((o[0] for o in enc.offsets), dtype=np.int64, count=len(ids))
        return ids, np.searchsorted(starts, first, side="right") - 1


def _blocks(values: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """``values`` (one per text) in runs of texts that start within the same ``size`` bytes of their total."""
    first = (np.cumsum(lengths) - lengths) // size
    return np.split(values, np.flatnonzero(np.diff(first)) + 1)


def _gather(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions ``starts[j] .. starts[j] + lens[j] - 1`` for every j, in order."""
    total = int(lens.sum())
    firsts = np.cumsum(lens) - lens
    return np.repeat(starts - firsts, lens) + np.arange(total, dtype=np.int64)


def _chunks():
    """Dynamic scheduling of prange loops: texts differ in length by orders of magnitude, so equal shares of
    texts per thread would leave one core idle behind the other."""
    return numba.parallel_chunksize(_CHUNK)


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=a.dtype)
    out[: len(a)] = a
    return out
