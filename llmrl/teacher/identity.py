"""Which teacher answered: backend, model, a hash of its weights, and the decoding settings (for the teacher log).

Computed once when a teacher replica starts. The weights hash tells two runs of "the same model name" apart when
the files differ (a new revision, a fine-tune saved over the old folder):

* ``sha256:<hex>``: the sha256 of every weight file of a local model folder, in name order, when they total at
  most ``teacher.log_hash_weights_max_mb`` (a 500 MB model takes about a second);
* ``meta:<hex>``: for larger folders, a sha256 of each file's name and size and of the safetensors header (tensor
  names, dtypes, shapes, offsets): cheap, but blind to an edit that keeps every shape;
* ``name:<hex>``: a served model (vLLM, OpenAI-compatible) or a hub id not in the local cache: the name itself
  hashed, as the served weights cannot be read from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrl.config import TeacherConfig

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")

# Config fields that change where or how fast a model runs, never what it answers: left out of "decoding".
_NOT_DECODING = {
    "hf": {"model", "device"},
    "vllm": {"model", "gpu_memory_utilization", "tensor_parallel_size", "enable_prefix_caching", "enforce_eager",
             "enable_lora", "max_loras", "max_lora_rank"},
    "openai": {"base_url", "model", "api_key_env", "timeout_s", "max_retries", "backoff_s", "max_concurrency"},
}


@dataclass(frozen=True, slots=True)
class BackendIdentity:
    backend: str  # scripted | hf | vllm | openai | replay
    model_id: str
    weights_hash: str
    decoding: tuple[tuple[str, Any], ...]  # sorted (setting, value) pairs


def name_hash(name: str) -> str:
    return "name:" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _safetensors_header(path: Path) -> bytes:
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        return fh.read(size) if 0 < size < 1 << 27 else b""


def weights_hash(folder: str | Path, max_full_mb: float) -> str:
    """A hash of a local model folder's weight files ("" if it has none)."""
    folder = Path(folder)
    files = _weight_files(folder)
    if not files:
        return ""
    total = sum(f.stat().st_size for f in files)
    full = total <= max_full_mb * 1024 * 1024
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(folder)).encode() + b"\0" + str(f.stat().st_size).encode() + b"\0")
        if full:
            with f.open("rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        elif f.suffix == ".safetensors":
            digest.update(_safetensors_header(f))
    return ("sha256:" if full else "meta:") + digest.hexdigest()


def _local_model_folder(model: str) -> Path | None:
    """The folder holding ``model``: itself if it is a directory, else its snapshot in the local hub cache."""
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or not a hub id): the name identifies it
        return None


def _decoding(section: Any, kind: str) -> tuple[tuple[str, Any], ...]:
    skip = _NOT_DECODING.get(kind, set())
    return tuple(sorted((k, v) for k, v in dataclasses.asdict(section).items() if k not in skip))


def backend_identity(cfg: TeacherConfig) -> BackendIdentity:
    """The identity of ``cfg.backend``'s teacher. Never raises: an unreadable model folder is logged and the
    model is then identified by its name."""
    kind = cfg.backend
    if kind == "scripted":
        return BackendIdentity(kind, "", "", (("error_rate", cfg.error_rate), ("seed", cfg.seed)))
    if kind == "replay":
        return BackendIdentity(kind, cfg.replay.log, "", (("fallback", cfg.replay.fallback),))
    section = getattr(cfg, kind)
    model = section.model
    digest = name_hash(model)
    if kind == "hf":
        folder = _local_model_folder(model)
        try:
            digest = (weights_hash(folder, cfg.log_hash_weights_max_mb) if folder else "") or digest
        except OSError as exc:
            logger.warning("teacher log: cannot hash the weights of %s (%s); identifying it by name", model, exc)
    return BackendIdentity(kind, model, digest, _decoding(section, kind))
