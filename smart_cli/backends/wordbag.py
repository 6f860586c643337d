"""The compiled half of the static encoder's fast path: word split, word lookup and bag-of-tokens sums.

Texts arrive as one UTF-8 byte string (``blob``) with each text's ``[start, end)``. They are cut into
*pieces* at the places where a BERT tokenizer always cuts them, whatever the rest of the text holds:
ASCII whitespace (space, tab, newline, return) separates pieces and is dropped; each ASCII punctuation
character is a piece of its own. Every other byte (letters, digits, ASCII control characters, all of
UTF-8's multi-byte characters) stays inside its piece. The tokenizer's normaliser and pre-tokenizer act
on characters one at a time (clean-up, accents, lower case, CJK characters, Unicode whitespace and
punctuation), never across these cuts, so a piece's token ids are those the tokenizer gives the piece
alone; they are looked up in a hash table (the *word table*) that the Python side fills by running the
real tokenizer on pieces it has not seen (``static_fast.py``).

A piece of only ASCII letters and digits is looked up lower-cased when the tokenizer lower-cases; such a
piece longer than the tokenizer's ``max_input_chars_per_word`` is a single unknown token, dropped, and
never stored. Other pieces are stored as their raw bytes (they always hold a byte no lower-cased piece
has, so the two kinds never collide).

The word table: ``slots`` (open addressing, linear probing, a power of two, -1 empty) point at entries;
entry ``k`` has its hash, its key bytes ``keys[koff[k]:koff[k] + klen[k]]`` and its token ids
``ids[ioff[k]:ioff[k] + ilen[k]]`` (``ilen[k] == -1``: not tokenized yet). ``meta`` holds the entries,
key bytes and ids used.

Sums: each text's token vectors added in text order, in float32, from zero: the same operations, in the
same order, as a CSR bag-of-tokens matrix times the vector table, so the bytes are the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

SEP, PUNCT, PLAIN, UPPER, OTHER = 0, 1, 2, 3, 4


def byte_classes() -> np.ndarray:
    """The class of every byte value: separator, punctuation, letter/digit, capital, other."""
    cls = np.full(256, OTHER, dtype=np.uint8)
    for b in range(33, 127):
        cls[b] = PUNCT
    for lo, hi in ((48, 57), (97, 122)):
        cls[lo : hi + 1] = PLAIN
    cls[65:91] = UPPER
    cls[[9, 10, 13, 32]] = SEP
    return cls


@njit(cache=True, inline="always")
def _next_piece(blob, pos, end, cls):
    """(start, stop, holds an 'other' byte, holds a capital) of the next piece at or after ``pos``."""
    while pos < end and cls[blob[pos]] == SEP:
        pos += 1
    if pos >= end:
        return end, end, False, False
    if cls[blob[pos]] == PUNCT:
        return pos, pos + 1, False, False
    start, other, upper = pos, False, False
    while pos < end:
        c = cls[blob[pos]]
        if c == SEP or c == PUNCT:
            break
        if c == OTHER:
            other = True
        elif c == UPPER:
            upper = True
        pos += 1
    return start, pos, other, upper


@njit(cache=True, inline="always")
def _hash(blob, s, e, lowered):
    h = np.uint64(14695981039346656037)
    for t in range(s, e):
        b = blob[t]
        if lowered and 65 <= b <= 90:
            b += 32
        h = (h ^ np.uint64(b)) * np.uint64(1099511628211)
    return h


@njit(cache=True, inline="always")
def _find(blob, s, e, lowered, h, slots, e_hash, koff, klen, keys):
    """The entry of piece ``blob[s:e]``, or ``-1 - slot`` of the empty slot where it would go."""
    mask = np.uint64(len(slots) - 1)
    j = h & mask
    n = e - s
    while True:
        k = slots[j]
        if k < 0:
            return -1 - np.int64(j)
        if e_hash[k] == h and klen[k] == n:
            off = koff[k]
            same = True
            for t in range(n):
                b = blob[s + t]
                if lowered and 65 <= b <= 90:
                    b += 32
                if keys[off + t] != b:
                    same = False
                    break
            if same:
                return np.int64(k)
        j = (j + np.uint64(1)) & mask


@njit(cache=True, parallel=True)
def bag_sums(blob, starts, ends, todo, cls, lower, max_chars, window, table, ids, vectors, out, state):
    """Sum the token vectors of texts ``todo`` into ``out``; ``state``: 0 done, 1 done and truncated
    (more than ``window`` tokens; 0: no window), 2 a piece is not in the word table (``out`` unusable)."""
    slots, e_hash, koff, klen, keys, ioff, ilen = table
    dim = vectors.shape[1]
    for q in prange(len(todo)):
        i = todo[q]
        row = np.zeros(dim, dtype=np.float32)
        pos, end = starts[i], ends[i]
        count, st = 0, 0
        while True:
            s, e, other, upper = _next_piece(blob, pos, end, cls)
            pos = e
            if s >= end:
                break
            if not other and e - s > max_chars:
                continue  # one unknown token, dropped
            low = lower and upper and not other
            k = _find(blob, s, e, low, _hash(blob, s, e, low), slots, e_hash, koff, klen, keys)
            if k < 0 or ilen[k] < 0:
                st = 2
                break
            n = ilen[k]
            if n == 0:
                continue
            if window > 0 and count >= window:
                st = 1
                break
            take = n if window == 0 else min(n, window - count)
            off = ioff[k]
            for t in range(take):
                v = vectors[ids[off + t]]
                for d in range(dim):
                    row[d] += v[d]
            count += take
            if take < n:
                st = 1
                break
        out[i] = row
        state[i] = st


@njit(cache=True)
def add_missing(blob, starts, ends, todo, q0, cls, lower, max_chars, window, table, meta):
    """Put every piece of texts ``todo[q0:]`` that the word table lacks into it, not tokenized yet, up to
    each text's window (counting only the tokens already known). Returns -1 when done, or the position in
    ``todo`` to resume from once the table is larger."""
    slots, e_hash, koff, klen, keys, ioff, ilen = table
    for q in range(q0, len(todo)):
        i = todo[q]
        pos, end = starts[i], ends[i]
        count = 0
        while True:
            s, e, other, upper = _next_piece(blob, pos, end, cls)
            pos = e
            if s >= end:
                break
            if not other and e - s > max_chars:
                continue
            low = lower and upper and not other
            h = _hash(blob, s, e, low)
            k = _find(blob, s, e, low, h, slots, e_hash, koff, klen, keys)
            if k >= 0:
                count += max(ilen[k], 0)
                if window > 0 and count > window:
                    break
                continue
            if meta[0] >= len(e_hash) or meta[1] + (e - s) > len(keys) or 2 * (meta[0] + 1) > len(slots):
                return q
            slot, k = -1 - k, meta[0]
            e_hash[k], koff[k], klen[k], ilen[k] = h, meta[1], e - s, -1
            for t in range(e - s):
                b = blob[s + t]
                keys[meta[1] + t] = b + 32 if low and 65 <= b <= 90 else b
            slots[slot] = k
            meta[0] += 1
            meta[1] += e - s
    return -1


@njit(cache=True)
def rehash(slots, e_hash, n):
    """Fill the empty ``slots`` with entries 0..n-1."""
    mask = np.uint64(len(slots) - 1)
    for k in range(n):
        j = e_hash[k] & mask
        while slots[j] >= 0:
            j = (j + np.uint64(1)) & mask
        slots[j] = k
