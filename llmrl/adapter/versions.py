"""Adapter versions on disk: ``<run>/adapters/v<N>/`` written atomically, a pointer to the one in service, and
the base-model check that refuses an adapter trained on another model.

Layout of a run folder::

    adapters/
      v1/  adapter_config.json  adapter_model.safetensors  llmrl_adapter.json (the manifest)
      v2/  ...
      latest.json   {"version": 2}: the version in service (a resume may point it back at an older one)

A version folder is written under a temporary name and renamed into place, and the pointer is replaced
atomically after it, so a reader (the teacher, a checkpoint, a restarted trainer) never sees half an adapter.
Version folders are never modified or deleted once written (a resume only repairs a damaged one from its
checkpoint's copy). Checkpoints hold a copy of the version in service
under ``<checkpoint>/adapter/v<N>/``.

Pure file work plus ``json``/``hashlib``; nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrl.messages import AdapterVersion

ADAPTERS_DIR = "adapters"
CHECKPOINT_DIR = "adapter"
MANIFEST = "llmrl_adapter.json"
POINTER = "latest.json"
_VERSION_DIR = re.compile(r"^v(\d+)$")
# Config entries that say where or how a model was saved, not what it is.
_VOLATILE = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "_commit_hash", "use_cache"}


class AdapterError(RuntimeError):
    """An adapter that cannot be used (missing files, bad manifest, another base model). One-line message."""


def config_hash(config: dict[str, Any]) -> str:
    """A short hash of a model config (architecture and shapes), the same wherever and however it was saved."""
    stable = {k: v for k, v in config.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_config_hash(model_name_or_path: str) -> str:
    """``config_hash`` of a model folder's (or hub name's) config, read with transformers' own loader."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(model_name_or_path))
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
        raise AdapterError(f"adapter base model '{model_name_or_path}': cannot read its config: "
                           f"{' '.join(str(exc).split())}") from None
    return config_hash(config.to_dict())


def check_base(version: AdapterVersion, base_hash: str, base_model: str) -> None:
    """Refuse an adapter trained on another base model (its weights would load into the wrong shapes, or worse,
    load silently into a different model)."""
    if version.base_hash != base_hash:
        raise AdapterError(f"adapter v{version.version} ({version.path}) was trained on base model "
                           f"'{version.base_model}' (config {version.base_hash}), not on the teacher's "
                           f"'{base_model}' (config {base_hash}): refused")


def _to_dict(v: AdapterVersion) -> dict[str, Any]:
    return {"version": v.version, "base_model": v.base_model, "base_hash": v.base_hash,
            "heldout_loss": v.heldout_loss, "pairs_used": v.pairs_used, "role": v.role}


def read_version(folder: str | Path) -> AdapterVersion:
    """The version saved in ``folder``; ``AdapterError`` if it is not a complete adapter."""
    folder = Path(folder)
    try:
        d = json.loads((folder / MANIFEST).read_text())
        version = AdapterVersion(version=int(d["version"]), path=str(folder.resolve()), base_model=str(d["base_model"]),
                                 base_hash=str(d["base_hash"]), heldout_loss=float(d["heldout_loss"]),
                                 pairs_used=int(d["pairs_used"]), role=str(d.get("role", "teacher")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterError(f"adapter folder '{folder}': no valid {MANIFEST} ({type(exc).__name__}: {exc})") from None
    if not (folder / "adapter_config.json").is_file():
        raise AdapterError(f"adapter folder '{folder}': no adapter_config.json (not a peft adapter)")
    return version


def _versions_on_disk(adapters: Path) -> list[int]:
    if not adapters.is_dir():
        return []
    return sorted(int(m.group(1)) for p in adapters.iterdir() if p.is_dir() and (m := _VERSION_DIR.match(p.name)))


def next_version(run_dir: str | Path) -> int:
    """The number for a new version: above every one on disk, so a resumed run never overwrites one."""
    return max(_versions_on_disk(Path(run_dir) / ADAPTERS_DIR), default=0) + 1


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def set_latest(run_dir: str | Path, version: int) -> None:
    """Point the run's ``latest.json`` at ``version`` (which must exist)."""
    adapters = Path(run_dir) / ADAPTERS_DIR
    read_version(adapters / f"v{version}")
    write_json_atomic(adapters / POINTER, {"version": version})


def write_version(run_dir: str | Path, save: Callable[[Path], None], *, base_model: str, base_hash: str,
                  heldout_loss: float, pairs_used: int, role: str = "teacher") -> AdapterVersion:
    """Save a new version: ``save(folder)`` writes the peft files, then the manifest, then the rename and the
    pointer. A failure before the rename leaves no ``v<N>`` folder behind."""
    adapters = Path(run_dir) / ADAPTERS_DIR
    adapters.mkdir(parents=True, exist_ok=True)
    n = next_version(run_dir)
    final = adapters / f"v{n}"
    tmp = adapters / f".v{n}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save(tmp)
        version = AdapterVersion(n, str(final.resolve()), base_model, base_hash, heldout_loss, pairs_used, role)
        write_json_atomic(tmp / MANIFEST, _to_dict(version))
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    set_latest(run_dir, n)
    return version


def _latest_in(adapters: Path) -> AdapterVersion | None:
    pointer = adapters / POINTER
    if pointer.is_file():
        try:
            return read_version(adapters / f"v{int(json.loads(pointer.read_text())['version'])}")
        except (AdapterError, OSError, ValueError, KeyError, TypeError):
            pass  # a pointer to a damaged version: fall back to the newest complete one
    for n in reversed(_versions_on_disk(adapters)):
        try:
            return read_version(adapters / f"v{n}")
        except AdapterError:
            continue
    return None


def latest_adapter(run_or_checkpoint_dir: str | Path) -> AdapterVersion | None:
    """The adapter in service for a run folder (``adapters/``) or the one a checkpoint holds (``adapter/``);
    None when there is none. The public entry point for tools that load a run's teacher (eval, benchmarks)."""
    root = Path(run_or_checkpoint_dir)
    if (root / CHECKPOINT_DIR).is_dir():
        return _latest_in(root / CHECKPOINT_DIR)
    return _latest_in(root / ADAPTERS_DIR)


def copy_into_checkpoint(version: AdapterVersion, checkpoint_dir: str | Path) -> Path:
    """Copy a version into a (temporary) checkpoint folder as ``adapter/v<N>/``."""
    dest = Path(checkpoint_dir) / CHECKPOINT_DIR / f"v{version.version}"
    shutil.copytree(version.path, dest)
    return dest


def restore_from_checkpoint(checkpoint_dir: str | Path, run_dir: str | Path) -> AdapterVersion | None:
    """Put a checkpoint's adapter back in service in ``run_dir`` (copied in if the run folder lacks it) and
    point ``latest.json`` at it; None when the checkpoint holds no adapter."""
    saved = latest_adapter(checkpoint_dir) if (Path(checkpoint_dir) / CHECKPOINT_DIR).is_dir() else None
    if saved is None:
        return None
    adapters = Path(run_dir) / ADAPTERS_DIR
    target = adapters / f"v{saved.version}"
    try:
        same = read_version(target).base_hash == saved.base_hash
    except AdapterError:
        same = False
    if not same:
        adapters.mkdir(parents=True, exist_ok=True)
        tmp = adapters / f".v{saved.version}.{os.getpid()}.restore"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(saved.path, tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    set_latest(run_dir, saved.version)
    return read_version(target)
