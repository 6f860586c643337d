"""Embedding backends for the ``embed`` stage.

Two backends, both returning float32 rows that are L2-normalised (a zero vector stays zero):

* ``transformer``: a sentence-transformers model (default: the packaged all-MiniLM-L6-v2, loaded from
  site-packages, no hub needed). Texts are sorted by token length inside each ``encode()`` call and
  encoded in length-homogeneous batches; the input order is restored afterwards. The batches depend only
  on the texts themselves, so the same texts give the same bytes on CPU whatever their order.
* ``static``: a model2vec static model distilled locally from a sentence-transformers model on first use,
  cached (safetensors, no pickles) under ``<cache>/static/<name>-<sha>``, and loaded from there afterwards.
  Encoding is a token-bag lookup: tens of thousands of texts per second on two cores.

The package: ``base`` (the ``Encoder`` protocol and model names), ``transformer``, ``static`` and
``static_cache`` (where static models are distilled and kept); this module builds an encoder by name
(``load_encoder``) and re-exports the public names.

Heavy libraries (torch, sentence_transformers, model2vec, scipy) are imported inside functions only, so
importing this package is instant.
"""

from __future__ import annotations

from pathlib import Path

from smart_cli import defaults
from smart_cli.backends.base import DEFAULT_MODEL, Encoder, resolve_model
from smart_cli.backends.static import StaticEncoder
from smart_cli.backends.static_cache import STATIC_PCA_DIMS, default_cache_dir, distill_static, static_cache_path
from smart_cli.backends.transformer import TransformerEncoder

BACKENDS = defaults.BACKENDS
PRECISIONS = defaults.PRECISIONS

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "PRECISIONS",
    "STATIC_PCA_DIMS",
    "Encoder",
    "StaticEncoder",
    "TransformerEncoder",
    "default_cache_dir",
    "distill_static",
    "load_encoder",
    "resolve_model",
    "static_cache_path",
]


def load_encoder(
    backend: str = "transformer",
    model: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
    precision: str = "fp32",
    pca_dims: int = STATIC_PCA_DIMS,
    max_tokens: int | None = None,
) -> Encoder:
    """Build the encoder for ``backend`` ("transformer" or "static").

    ``device``: None (sentence-transformers' choice), "cpu", "cuda", "cuda:0", or a comma list such as
    "cuda:0,cuda:1" for a multi-process pool (transformer only; call ``close()`` to stop it).
    ``cache_dir``: root of the smart-cli cache (default ``$SMART_CLI_CACHE`` or ``~/.cache/smart-cli``);
    static models live in ``<cache_dir>/static/``.
    ``precision``: "fp32" (default, the reference) or "bf16" (transformer only: autocast, about 1.7x faster
    on CPUs with AVX512-BF16, cosine to fp32 > 0.9999 measured).
    ``pca_dims``: the static model's dimension.
    ``max_tokens``: the static model's window, tokens of a text that count (None or 0: all; ``embed``
    passes ``defaults.STATIC_MAX_TOKENS``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if backend == "transformer":
        return TransformerEncoder(
            model,
            device=device,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            precision=precision,
        )
    if backend == "static":
        if precision != "fp32":
            raise ValueError("the static backend has no precision option")
        return StaticEncoder.load(
            model,
            cache_dir=cache_dir,
            trust_remote_code=trust_remote_code,
            pca_dims=pca_dims,
            max_tokens=max_tokens,
        )
    raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
