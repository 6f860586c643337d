"""The ``transformer`` backend: a sentence-transformers model (default: the packaged all-MiniLM-L6-v2).

Texts are sorted by token length inside each ``encode()`` call and encoded in length-homogeneous batches;
the input order is restored afterwards. The batches depend only on the texts themselves, so the same texts
give the same bytes on CPU whatever their order. Devices: sentence-transformers' choice, one device, or a
multi-process pool over several; precision: fp32 (the reference) or bf16 autocast.

torch, sentence_transformers and tokenizers are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smart_cli import defaults
from smart_cli.backends.base import DEFAULT_MODEL, _display_name, _l2_normalise, _quiet_model_loading, resolve_model


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

        if precision not in defaults.PRECISIONS:
            raise ValueError(f"precision must be one of {defaults.PRECISIONS}, got {precision!r}")
        devices = _parse_devices(device)
        multi = devices is not None and len(devices) > 1
        if multi and precision != "fp32":
            raise ValueError("precision other than fp32 is not supported with a multi-device pool")

        self.model_path = resolve_model(model)
        self.name = f"transformer:{_display_name(model)}" + ("" if precision == "fp32" else f"@{precision}")
        self.batch_size = int(batch_size)
        self.precision = precision
        self.trust_remote_code = bool(trust_remote_code)
        _quiet_model_loading()
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

    @property
    def on_cpu(self) -> bool:
        """The model runs on the CPU (the device sentence-transformers chose or was given; no pool)."""
        return self._pool is None and self.model.device.type == "cpu"

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
