"""Shared helpers for benchmarks that run real training: run one config, read its metrics back."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from llmrl.config import load_config


# One wording for every benchmark's --reuse/--resume flag: they all go through train_or_reuse.
REUSE_HELP = ("a later leg: read back runs in --out that reached their budget and continue any other from its newest "
              "checkpoint")


def machine() -> str:
    import os

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.python_version()}"


def load_average() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def train_run(config: str, overrides: list[str], out_dir: Path, name: str) -> tuple[dict[str, Any], list[dict]]:
    """Train once (own local Ray) and return (summary, metrics rows).

    A run stopped by SIGINT/SIGTERM (``timeout``, Ctrl-C) has written its final checkpoint; the benchmark then
    stops too, with the shell's 128 + signal number, rather than start its next run as if this one had
    finished. Its ``--reuse``/``--resume`` continues from that checkpoint."""
    from llmrl.training.loop import train
    from llmrl.training.stopping import stopped_exit_code

    cfg = load_config(config, [*overrides, f"run.out_dir={out_dir}", f"run.name={name}"])
    summary = train(cfg, stream=None)
    if summary.get("stopped_by"):
        print(f"llmrl: run {name} stopped by {summary['stopped_by']} at {summary['env_steps']} env steps, its "
              f"checkpoint kept ({summary['checkpoint']}); not starting the next run", file=sys.stderr, flush=True)
        raise SystemExit(stopped_exit_code(summary["stopped_by"]))
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return summary, last_per_iteration(rows)


def finished_run(run_dir: Path, env_steps: int, stop_on_success: bool = False
                 ) -> tuple[dict[str, Any], list[dict]] | None:
    """(summary, metrics rows) of a run folder whose run ended on its own: it reached ``env_steps``, or with
    ``stop_on_success`` (``run.stop_on_success``) the success threshold. Else None."""
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        return None
    summary = json.loads(summary_file.read_text())
    succeeded = stop_on_success and summary.get("steps_to_success") is not None
    if summary.get("stopped_by") is not None or (summary.get("env_steps", 0) < env_steps and not succeeded):
        return None
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return summary, last_per_iteration(rows)


def last_per_iteration(rows: list[dict]) -> list[dict]:
    """One row per iteration, the last written: a run resumed from a checkpoint repeats the iterations it had
    logged after that checkpoint (metrics.jsonl is appended to)."""
    return list({row["iteration"]: row for row in rows}.values())


def train_or_reuse(config: str, overrides: list[str], out_dir: Path, name: str, reuse: bool
                   ) -> tuple[dict[str, Any], list[dict]]:
    """``train_run`` into ``out_dir/name``; with ``reuse``, a later leg of the same run.

    With ``reuse``, a run there that ended on its own (its ``run.max_env_steps`` reached, or with
    ``run.stop_on_success`` its threshold) is read back. Any other run there with a checkpoint (stopped by a
    signal, killed, crashed, or finished with a smaller budget) continues from its newest complete checkpoint,
    the iterations it logged after that checkpoint replaced by the resumed ones. A run folder that is not
    continued (no ``reuse``, or no checkpoint) is kept aside as ``name.earlier-<time>``: never trained into,
    never deleted."""
    from llmrl.training.checkpoint import newest_checkpoint

    run_dir = out_dir / name
    if reuse:
        run = load_config(config, overrides).run
        finished = finished_run(run_dir, run.max_env_steps, run.stop_on_success)
        if finished is not None:
            print(f"== {name}: finished in an earlier leg; read back", flush=True)
            return finished
        checkpoint = newest_checkpoint(run_dir)
        if checkpoint is not None:
            print(f"== {name}: resuming {checkpoint}", flush=True)
            return train_run(config, [*overrides, f"run.resume={checkpoint}"], out_dir, name)
    if run_dir.exists():
        run_dir.rename(out_dir / f"{name}.earlier-{time.strftime('%Y%m%d-%H%M%S')}")
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
