"""Shared helpers for benchmarks that run real training: run one config, read its metrics back."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from llmrl.config import load_config


def machine() -> str:
    import os

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.python_version()}"


def load_average() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def train_run(config: str, overrides: list[str], out_dir: Path, name: str) -> tuple[dict[str, Any], list[dict]]:
    """Train once (own local Ray) and return (summary, metrics rows)."""
    from llmrl.training.loop import train

    cfg = load_config(config, [*overrides, f"run.out_dir={out_dir}", f"run.name={name}"])
    summary = train(cfg, stream=None)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return summary, last_per_iteration(rows)


def finished_run(run_dir: Path, env_steps: int) -> tuple[dict[str, Any], list[dict]] | None:
    """(summary, metrics rows) of a run folder whose run already reached ``env_steps``, else None; a later leg
    reads it back instead of resuming a run that has nothing left to do."""
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        return None
    summary = json.loads(summary_file.read_text())
    if summary.get("env_steps", 0) < env_steps:
        return None
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return summary, last_per_iteration(rows)


def last_per_iteration(rows: list[dict]) -> list[dict]:
    """One row per iteration, the last written: a run resumed from a checkpoint repeats the iterations it had
    logged after that checkpoint (metrics.jsonl is appended to)."""
    return list({row["iteration"]: row for row in rows}.values())


def train_or_reuse(config: str, overrides: list[str], out_dir: Path, name: str, reuse: bool
                   ) -> tuple[dict[str, Any], list[dict]]:
    """``train_run``, or with ``reuse`` the run already finished in ``out_dir/name`` (its summary.json read back).
    An unfinished earlier run there is kept aside rather than appended to."""
    done = out_dir / name / "summary.json"
    if reuse and done.is_file():
        rows = [json.loads(x) for x in (out_dir / name / "metrics.jsonl").read_text().splitlines()]
        return json.loads(done.read_text()), rows
    if (out_dir / name).exists():
        (out_dir / name).rename(out_dir / f"{name}.unfinished-{time.strftime('%Y%m%d-%H%M%S')}")
    return train_run(config, overrides, out_dir, name)


def today() -> str:
    return time.strftime("%Y-%m-%d")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
