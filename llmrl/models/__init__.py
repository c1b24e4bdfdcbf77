"""Models llmrl can fetch by a short name (``llmrl models fetch smollm2-135m``), and name resolution.

``resolve_model(name_or_path)`` is what the teacher backends call on ``teacher.hf.model`` /
``teacher.vllm.model``: a known short name becomes its cached transformers folder (fetched on first use);
anything else (a path, a hub id) is returned unchanged. Importing this package imports neither torch nor
transformers (only a fetch does).
"""

from __future__ import annotations

from pathlib import Path

from llmrl.models.fetch import cached_folder, fetch_model
from llmrl.models.registry import KNOWN_MODELS, ModelError, ModelSpec, cache_root, lookup


def resolve_model(name_or_path: str) -> str:
    """The folder a known short name stands for (fetched and converted on first use); anything else unchanged.

    Raises ``ModelError`` (one line) when a known model cannot be fetched.
    """
    spec = KNOWN_MODELS.get(name_or_path)
    if spec is None:
        return name_or_path
    return str(fetch_model(spec))


def list_models(root: Path | None = None) -> list[tuple[ModelSpec, Path | None]]:
    """Every known model with its cached folder (None when not cached)."""
    return [(spec, cached_folder(spec, root)) for spec in KNOWN_MODELS.values()]


__all__ = ["KNOWN_MODELS", "ModelError", "ModelSpec", "cache_root", "cached_folder", "fetch_model", "list_models",
           "lookup", "resolve_model"]
