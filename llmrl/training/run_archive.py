"""A run folder as one archive, to continue the run on another machine (``llmrl runs pack`` / ``runs unpack``).

A long run goes in legs (``run.resume``), and the machine of one leg may not be the machine of the next: these
development machines are not kept between sessions. The archive keeps everything a later leg and a later report
need: metrics, summary, config, teacher log, the feedback journal, adapter versions, and the newest *complete*
checkpoint (``checkpoint.newest_checkpoint``). Older checkpoints are left out, since a resume never reads them
and each is several MB, and so is a checkpoint still being written (``*.tmp``). Paths in the archive are relative
to the run folder's parent, so it unpacks under any ``--out`` folder as ``<out>/<run name>``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from llmrl.training.checkpoint import newest_checkpoint


def pack_run(run_dir: Path, archive: Path) -> dict[str, object]:
    """Write ``archive`` (.tar.gz) from ``run_dir``; returns what went in: files, bytes, the checkpoint kept and
    the checkpoints left out."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"'{run_dir}' is not a run folder (no metrics.jsonl)")
    kept = newest_checkpoint(run_dir)
    skipped = sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*") if p != kept)
    files = [p for p in sorted(run_dir.rglob("*")) if p.is_file() and not _in_skipped(p, run_dir, skipped)]
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".tmp")
    # Written aside and renamed, so an interrupted pack never leaves a truncated archive under the real name.
    with tarfile.open(partial, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(run_dir.parent)), recursive=False)
    partial.replace(archive)
    return {"archive": str(archive), "files": len(files), "bytes": archive.stat().st_size,
            "checkpoint": kept.name if kept is not None else None, "left_out": skipped}


def unpack_run(archive: Path, out_dir: Path) -> Path:
    """Unpack ``archive`` under ``out_dir``; returns the run folder. Refuses to write over a folder that exists,
    so a newer leg's results there are never replaced by an older archive."""
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        tops = {Path(n).parts[0] for n in names}
        if len(tops) != 1:
            raise ValueError(f"'{archive}' holds {len(tops)} top-level folders; a run archive holds one")
        run_dir = Path(out_dir) / tops.pop()
        if run_dir.exists():
            raise FileExistsError(f"'{run_dir}' exists already; move it aside or unpack elsewhere")
        tar.extractall(out_dir, filter="data")  # "data": no absolute paths, links out of out_dir or devices
    return run_dir


def _in_skipped(path: Path, run_dir: Path, skipped: list[str]) -> bool:
    parts = path.relative_to(run_dir).parts
    return len(parts) > 1 and parts[0] == "checkpoints" and parts[1] in skipped
