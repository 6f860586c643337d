"""The cache of static models for the ``static`` backend.

A model2vec static model is distilled locally from a sentence-transformers model on first use, cached
(safetensors, no pickles) under ``<cache>/static/<name>-<sha>`` and loaded from there afterwards. The sha
fingerprints the source model's files and the distillation parameters, so a changed model or setting gets
a new folder. A distillation is written to a temporary folder and renamed into place, with the permissions
the umask asks for.

model2vec is imported inside functions only.
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
from pathlib import Path
from typing import Any

from smart_cli.backends.base import DEFAULT_MODEL, _display_name, _quiet_model_loading, resolve_model

logger = logging.getLogger(__name__)

STATIC_PCA_DIMS = 256
_STATIC_SIF = 1e-4
_STATIC_DTYPE = "float16"  # what model2vec stores; encoding always happens in float32


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
    _quiet_model_loading()
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
