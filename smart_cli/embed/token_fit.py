"""Token vectors fitted to the transformer on the sampled rows: the ``tokens`` row map's trainer.

The affine row map (``backends/mapped.py``) carries every static row into the transformer's space
with one matrix, so two rows that share their tokens' mean stay together however the transformer
tells them apart. Here each token gets a vector of its own in the transformer's space, started at
its static vector through the affine map (so the untrained model *is* the affine map), and the
vectors of the tokens the sample holds are fitted to the sample's transformer vectors, in the
spirit of model2vec's tokenlearn. A row is

    normalise(sum of its tokens' vectors / |its static sum| + b)

(``backends/token_mapped.py`` encodes it). The fit minimises the mean of ``1 - cos`` to the
transformer's vectors plus a pull of the vectors towards their start, by Adam in minibatches of
rows; only the tokens a minibatch holds (and ``b``) move at each step, each with its own step count
for Adam's bias correction (a *lazy* Adam: the cost of a step follows the minibatch, not the vocabulary).

Every number is float64 and every sum runs in one fixed order (numba, no fast-math, no BLAS): the
rows of a minibatch are scored in parallel, each on its own, and their gradients are added into the
tokens' in row order. So the vectors are the same bits on any x86 CPU and for any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from smart_cli import defaults

#: Columns of the gradient one thread adds up at a time.
_COLUMNS = 32
#: Adam's moment decays and its floor, torch's defaults.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class FitOptions:
    """The trainer's settings; every one is in ``meta.json``'s record of the map."""

    epochs: int = 60
    lr: float = 1e-3
    pull: float = 1e-3
    batch: int = 64
    seed: int = defaults.SEED


#: ``embed``'s settings (tuned on the real multi-task set, README "choosing like the transformer").
FIT = FitOptions()


@njit(cache=True, parallel=True)
def fixed_product(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w`` in float64, each entry summed over ``a``'s columns from the first (rows in parallel)."""
    n, k = a.shape
    out = np.zeros((n, w.shape[1]), dtype=np.float64)
    for i in prange(n):
        for j in range(k):
            x = np.float64(a[i, j])
            if x != 0.0:
                for c in range(w.shape[1]):
                    out[i, c] += x * w[j, c]
    return out


@njit(cache=True, parallel=True)
def _row_grads(rows, indptr, ids, vectors, bias, norms, targets, grads, losses):
    """Each row's loss ``1 - cos`` and its gradient with respect to its prediction (scaled by 1/len(rows))."""
    dim = vectors.shape[1]
    scale = 1.0 / len(rows)
    for i in prange(len(rows)):
        r = rows[i]
        p = np.zeros(dim, dtype=np.float64)
        for q in range(indptr[r], indptr[r + 1]):
            tok = ids[q]
            for c in range(dim):
                p[c] += vectors[tok, c]
        pp, pt = 0.0, 0.0
        for c in range(dim):
            p[c] = p[c] / norms[r] + bias[c]
            pp += p[c] * p[c]
            pt += p[c] * targets[r, c]
        length = np.sqrt(pp)
        if length == 0.0:
            losses[i] = 1.0
            grads[i, :] = 0.0
            continue
        cos = pt / length
        losses[i] = 1.0 - cos
        for c in range(dim):
            grads[i, c] = -scale * (targets[r, c] / length - cos * p[c] / pp)


@njit(cache=True)
def _touched(rows, indptr, ids, mark, t, touched):
    """The distinct tokens of ``rows``, in order of first occurrence (``mark``: the step that last saw each)."""
    n = 0
    for i in range(len(rows)):
        r = rows[i]
        for q in range(indptr[r], indptr[r + 1]):
            tok = ids[q]
            if mark[tok] != t:
                mark[tok] = t
                touched[n] = tok
                n += 1
    return n


@njit(cache=True, parallel=True)
def _step(rows, indptr, ids, norms, grads, vectors, start, bias, state, t_tok, grad, mark, t, touched, opts):
    """Adds the rows' gradients into their tokens' in row order, then one lazy Adam step. Blocks of
    columns are summed in parallel: each entry is still added in row order, so any thread count gives
    the same bits."""
    lr, pull = opts[0], opts[1]
    dim = vectors.shape[1]
    n = _touched(rows, indptr, ids, mark, t, touched)
    blocks = (dim + _COLUMNS - 1) // _COLUMNS
    for blk in prange(blocks):
        lo, hi = blk * _COLUMNS, min(dim, (blk + 1) * _COLUMNS)
        for k in range(n):
            for c in range(lo, hi):
                grad[touched[k], c] = 0.0
        for i in range(len(rows)):
            r = rows[i]
            inv = 1.0 / norms[r]
            for q in range(indptr[r], indptr[r + 1]):
                tok = ids[q]
                for c in range(lo, hi):
                    grad[tok, c] += grads[i, c] * inv
    for k in prange(n):
        tok = touched[k]
        t_tok[tok] += 1
        _adam(vectors[tok], grad[tok], start[tok], state[0, tok], state[1, tok], t_tok[tok], lr, pull)
    gb = np.zeros(dim, dtype=np.float64)
    for i in range(len(rows)):
        for c in range(dim):
            gb[c] += grads[i, c]
    _adam(bias, gb, bias, state[0, -1], state[1, -1], t, lr, 0.0)


@njit(cache=True)
def _adam(x, g, x0, m, v, t, lr, pull):
    c1 = 1.0 - _BETA1**t
    c2 = 1.0 - _BETA2**t
    for c in range(x.shape[0]):
        gc = g[c] + pull * (x[c] - x0[c])
        m[c] = _BETA1 * m[c] + (1.0 - _BETA1) * gc
        v[c] = _BETA2 * v[c] + (1.0 - _BETA2) * gc * gc
        x[c] -= lr * (m[c] / c1) / (np.sqrt(v[c] / c2) + _EPS)


@dataclass(frozen=True)
class Fit:
    """The fitted vectors of ``tokens`` (local order) and the bias; the mean loss per epoch."""

    tokens: np.ndarray  # (k,) int64 token ids, ascending
    vectors: np.ndarray  # (k, dim) float64
    bias: np.ndarray  # (dim,) float64
    losses: np.ndarray  # (epochs,) float64


def fit_tokens(
    token_ids: list[np.ndarray],
    norms: np.ndarray,
    targets: np.ndarray,
    start: np.ndarray,
    bias: np.ndarray,
    opts: FitOptions,
    advance=None,
) -> Fit:
    """Fits the vectors of the tokens in ``token_ids`` (one id array per sampled row, the ids the row sums)
    to ``targets`` (the rows' transformer vectors). ``norms``: each row's static-sum norm; ``start``: the
    table to start from, ``start[i]`` the start of token id ``tokens[i]`` where ``tokens`` are the distinct
    ids of ``token_ids`` ascending; ``bias``: the affine map's; ``advance(1)`` is called after each epoch."""
    lengths = np.fromiter((len(x) for x in token_ids), dtype=np.int64, count=len(token_ids))
    indptr = np.zeros(len(token_ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    flat = np.concatenate([np.zeros(0, np.int64), *token_ids]).astype(np.int64)
    tokens, local = np.unique(flat, return_inverse=True)
    if start.shape[0] != len(tokens):
        raise ValueError(f"start has {start.shape[0]} rows for {len(tokens)} distinct tokens")
    local = local.astype(np.int64).ravel()
    unit = np.asarray(targets, dtype=np.float64)
    unit = unit / np.maximum(np.sqrt((unit * unit).sum(axis=1)), 1e-300)[:, None]
    norms = np.maximum(np.asarray(norms, dtype=np.float64), 1e-12)
    start = np.ascontiguousarray(start, dtype=np.float64)
    vectors = start.copy()
    b = np.array(bias, dtype=np.float64)
    dim = vectors.shape[1]
    state = np.zeros((2, len(tokens) + 1, dim), dtype=np.float64)
    t_tok = np.zeros(len(tokens), dtype=np.int64)
    grad = np.zeros((len(tokens), dim), dtype=np.float64)
    mark = np.full(len(tokens), -1, dtype=np.int64)
    touched = np.empty(len(tokens), dtype=np.int64)
    settings = np.array([opts.lr, 2.0 * opts.pull / max(1, len(tokens))], dtype=np.float64)
    rng = np.random.default_rng(opts.seed)
    grads = np.zeros((opts.batch, dim), dtype=np.float64)
    losses = np.zeros(opts.batch, dtype=np.float64)
    curve = np.zeros(opts.epochs, dtype=np.float64)
    step = 0
    for epoch in range(opts.epochs):
        order = rng.permutation(len(token_ids)).astype(np.int64)
        total = 0.0
        for lo in range(0, len(order), opts.batch):
            rows = order[lo : lo + opts.batch]
            step += 1
            _row_grads(rows, indptr, local, vectors, b, norms, unit, grads, losses)
            total += float(losses[: len(rows)].sum())
            _step(
                rows, indptr, local, norms, grads, vectors, start, b, state, t_tok, grad, mark, step, touched, settings
            )
        curve[epoch] = total / max(1, len(order))
        if advance is not None:
            advance(1)
    return Fit(tokens, vectors, b, curve)
