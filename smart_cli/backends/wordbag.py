"""The compiled half of the static encoder's fast path: word split, word lookup and bag-of-tokens sums.

Texts arrive as one UTF-8 byte string (``blob``) with each text's ``[start, end)``. They are cut into
*pieces* at the places where a BERT tokenizer always cuts them, whatever the rest of the text holds:
ASCII whitespace (space, tab, newline, return) separates pieces and is dropped; each ASCII punctuation
character is a piece of its own. Every other byte (letters, digits, ASCII control characters, all of
UTF-8's multi-byte characters) stays inside its piece, except the few multi-byte characters that are always
a piece of their own (``_alone``: CJK ideographs, which the normaliser surrounds with spaces, and common
Unicode punctuation, which the pre-tokenizer splits off). The tokenizer's normaliser and pre-tokenizer act
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


def byte_classes(cjk: bool = False) -> np.ndarray:
    """The class of every byte value: separator, punctuation, letter/digit, capital, other; then (the 257th
    entry) whether the normaliser sets CJK ideographs apart (``handle_chinese_chars``)."""
    cls = np.full(257, OTHER, dtype=np.uint8)
    for b in range(33, 127):
        cls[b] = PUNCT
    for lo, hi in ((48, 57), (97, 122)):
        cls[lo : hi + 1] = PLAIN
    cls[65:91] = UPPER
    cls[[9, 10, 13, 32]] = SEP
    cls[256] = int(cjk)
    return cls


@njit(cache=True, inline="always")
def _alone(blob, pos, end, cls):
    """3 if the character at ``pos`` is always a piece of its own, else 0: a CJK ideograph of the basic
    plane (when the normaliser sets them apart), or punctuation of U+2010-U+2027 and U+3001-U+3003 (the
    pre-tokenizer splits Unicode punctuation); the tokenizer still tokenizes it."""
    b0 = blob[pos]
    if b0 < 0xE2 or b0 > 0xEF or pos + 2 >= end:
        return 0
    cp = ((np.int64(b0) & 0x0F) << 12) | ((np.int64(blob[pos + 1]) & 0x3F) << 6) | (np.int64(blob[pos + 2]) & 0x3F)
    if 0x2010 <= cp <= 0x2027 or 0x3001 <= cp <= 0x3003:
        return 3
    if cls[256] and (0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF):
        return 3
    return 0


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
            n = _alone(blob, pos, end, cls)
            if n:
                if pos == start:
                    return pos, pos + n, True, False
                break
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
def bag_sums(blob, starts, ends, todo, cls, lower, max_chars, window, table, ids, vectors, out, state, missing, found):
    """Sum the token vectors of texts ``todo`` into ``out``; ``state``: 0 done, 1 done and truncated
    (more than ``window`` tokens; 0: no window), 2 a piece is not in the word table (``out`` unusable;
    ``missing``: how many pieces the text lacks, as ``_scan_missing`` counts them; the first ``K`` of them
    at ``found[i * K:]``, ``K = len(found) // len(out)``)."""
    slots, e_hash, koff, klen, keys, ioff, ilen = table
    dim = vectors.shape[1]
    inline = len(found) // len(out)
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
            if k < 0 or ilen[k] < 0:  # the rest of the text is only scanned for what it lacks
                st = 2
                at = i * inline
                missing[i] = _scan_missing(blob, s, end, cls, lower, max_chars, window, table, count, found, at, inline)
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
def _scan_missing(blob, pos, end, cls, lower, max_chars, window, table, count, found, at, cap):
    """The pieces of a text from ``pos`` on that the word table lacks, up to its window (counting only the
    tokens already known, ``count`` before ``pos``); the first ``cap`` of them written to ``found[at:]``
    (start, stop, lower-cased); returns how many."""
    slots, e_hash, koff, klen, keys, ioff, ilen = table
    m = 0
    while True:
        s, e, other, upper = _next_piece(blob, pos, end, cls)
        pos = e
        if s >= end:
            break
        if not other and e - s > max_chars:
            continue
        low = lower and upper and not other
        k = _find(blob, s, e, low, _hash(blob, s, e, low), slots, e_hash, koff, klen, keys)
        if k >= 0 and ilen[k] >= 0:
            count += ilen[k]
            if window > 0 and count > window:
                break
            continue
        if m < cap:
            found[at + m, 0], found[at + m, 1], found[at + m, 2] = s, e, low
        m += 1
    return m


@njit(cache=True, parallel=True)
def list_missing(blob, starts, ends, todo, cls, lower, max_chars, window, table, offsets, found):
    """The pieces each text ``todo[q]`` lacks, at ``found[offsets[q]:]``, in parallel over texts."""
    for q in prange(len(todo)):
        i = todo[q]
        _scan_missing(blob, starts[i], ends[i], cls, lower, max_chars, window, table, 0, found, offsets[q], len(found))


@njit(cache=True)
def insert_missing(blob, found, q0, table, meta):
    """Put the pieces ``found[q0:]`` into the word table (each once, not tokenized yet), in order. Returns -1
    when done, or the position in ``found`` to resume from once the table is larger."""
    slots, e_hash, koff, klen, keys, ioff, ilen = table
    for q in range(q0, len(found)):
        s, e, low = found[q, 0], found[q, 1], found[q, 2] != 0
        h = _hash(blob, s, e, low)
        k = _find(blob, s, e, low, h, slots, e_hash, koff, klen, keys)
        if k >= 0:
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
