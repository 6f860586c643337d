"""WordPiece in numba for the word table's plain pieces, so that new words need not wait for the tokenizer.

A *plain* piece is a run of ASCII letters and digits (already lower-cased where the tokenizer lower-cases)
or a single ASCII punctuation character. On such a piece BERT's normaliser and pre-tokenizer change
nothing, so its ids are WordPiece's alone: greedy longest match first against the vocabulary, pieces after
the first looked up with the continuing-subword prefix (``##``), and a word that cannot be covered is one
unknown token, as is a word longer than ``max_input_chars_per_word``. That is what ``tokenizers``'
WordPiece does; ``static_fast`` sends every other piece (non-ASCII bytes, control characters) to the
tokenizer itself. Ids equal to ``drop`` (the unknown token, which model2vec leaves out) are not written.

The vocabulary is a hash table of its ASCII tokens, hashed as ``wordbag`` hashes pieces.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from smart_cli.backends.wordbag import PLAIN, PUNCT, UPPER


def vocab_table(vocab: dict[str, int]) -> tuple:
    """The ASCII tokens of ``vocab`` (token -> id) as (slots, hashes, key offsets, key lengths, key bytes, ids)."""
    items = sorted((tok.encode("ascii"), i) for tok, i in vocab.items() if tok.isascii() and tok)
    keys = np.frombuffer(b"".join(k for k, _ in items), dtype=np.uint8)
    klen = np.array([len(k) for k, _ in items], dtype=np.int64)
    koff = np.zeros(len(items), dtype=np.int64)
    np.cumsum(klen[:-1], out=koff[1:])
    ids = np.array([i for _, i in items], dtype=np.int32)
    size = 1 << max(4, int(2 * len(items) - 1).bit_length())
    slots = np.full(size, -1, dtype=np.int64)
    hashes = np.zeros(len(items), dtype=np.uint64)
    _fill(keys, koff, klen, slots, hashes)
    return slots, hashes, koff, klen, keys, ids


@njit(cache=True)
def _fill(keys, koff, klen, slots, hashes):
    mask = np.uint64(len(slots) - 1)
    for k in range(len(koff)):
        h = _fnv(np.uint64(14695981039346656037), keys, koff[k], koff[k] + klen[k])
        hashes[k] = h
        j = h & mask
        while slots[j] >= 0:
            j = (j + np.uint64(1)) & mask
        slots[j] = k


@njit(cache=True, inline="always")
def _fnv(h, buf, s, e):
    for t in range(s, e):
        h = (h ^ np.uint64(buf[t])) * np.uint64(1099511628211)
    return h


@njit(cache=True, inline="always")
def _lookup(prefix, np_, buf, s, e, vocab):
    """The id of token ``prefix[:np_] + buf[s:e]``, or -1."""
    slots, hashes, koff, klen, keys, ids = vocab
    h = _fnv(_fnv(np.uint64(14695981039346656037), prefix, 0, np_), buf, s, e)
    mask = np.uint64(len(slots) - 1)
    j = h & mask
    n = np_ + e - s
    while True:
        k = slots[j]
        if k < 0:
            return -1
        if hashes[k] == h and klen[k] == n:
            off, same = koff[k], True
            for t in range(np_):
                if keys[off + t] != prefix[t]:
                    same = False
                    break
            if same:
                for t in range(e - s):
                    if keys[off + np_ + t] != buf[s + t]:
                        same = False
                        break
            if same:
                return np.int64(ids[k])
        j = (j + np.uint64(1)) & mask


@njit(cache=True, inline="always")
def _plain(keys, s, n, cls):
    """Whether ``keys[s:s + n]`` is ASCII letters and digits only, or one ASCII punctuation character."""
    if n == 1 and cls[keys[s]] == PUNCT:
        return True
    for t in range(s, s + n):
        c = cls[keys[t]]
        if c != PLAIN and c != UPPER:
            return False
    return True


@njit(cache=True, inline="always")
def _word(keys, s, n, vocab, prefix, max_chars, unk, drop, out, base):
    """WordPiece of the word ``keys[s:s + n]`` into ``out[base:]``; returns how many ids."""
    if n > max_chars:  # too long to try: one unknown token
        start = n
    else:
        start = 0
    p = base
    while start < n:
        end, found = n, -1
        while start < end:
            found = _lookup(prefix, len(prefix) if start > 0 else 0, keys, s + start, s + end, vocab)
            if found >= 0:
                break
            end -= 1
        if found < 0:  # the whole word is one unknown token
            p = base
            break
        if found != drop:
            out[p] = found
            p += 1
        start = end
    if p == base and (n > max_chars or start < n) and unk != drop:
        out[p] = unk
        p += 1
    return p - base


@njit(cache=True, parallel=True)
def word_pieces(keys, koff, klen, lo, hi, cls, vocab, prefix, max_chars, unk, drop, out, out_off, out_len):
    """WordPiece ids of the word table's entries ``lo..hi-1`` that are plain pieces, written from
    ``out[out_off[k - lo]]`` (room for one id per byte); ``out_len[k - lo]``: how many, or -1 for a piece
    that is not plain (the tokenizer's)."""
    for q in prange(hi - lo):
        k = lo + q
        if _plain(keys, koff[k], klen[k], cls):
            out_len[q] = _word(keys, koff[k], klen[k], vocab, prefix, max_chars, unk, drop, out, out_off[q])
        else:
            out_len[q] = -1
