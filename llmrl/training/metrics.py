"""Per-iteration metrics: one JSON line per iteration, TensorBoard scalars, and a live progress line."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

PROGRESS_FIELDS = (
    ("iter", "iteration", "{:d}"),
    ("steps", "env_steps", "{:d}"),
    ("sps", "env_steps_per_s", "{:.0f}"),
    ("return", "episode_return_mean", "{:.3f}"),
    ("eval_success", "eval_success", "{:.2f}"),
    ("teacher_calls/s", "teacher_llm_calls_per_s", "{:.1f}"),
    ("cache_hit", "teacher_cache_hit_rate", "{:.2f}"),
    ("lambda", "distill_coef", "{:.3f}"),
)


def progress_line(row: dict[str, Any]) -> str:
    parts = []
    for label, key, fmt in PROGRESS_FIELDS:
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{label}=-")
        else:
            parts.append(f"{label}={fmt.format(int(value) if fmt == '{:d}' else value)}")
    return " ".join(parts)


class MetricsWriter:
    def __init__(self, run_dir: Path, tensorboard: bool = True, stream: TextIO | None = None):
        self.path = run_dir / "metrics.jsonl"
        # Append: a resumed run continues the same file, so no metrics are lost across restarts.
        self._file = self.path.open("a", buffering=1)
        self._stream = stream
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
            except Exception as exc:  # noqa: BLE001 - TensorBoard is optional; JSONL is the record
                logger.warning("TensorBoard logging disabled: %s", exc)

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, default=float) + "\n")
        if self._tb is not None:
            step = int(row.get("env_steps", 0))
            for key, value in row.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
        if self._stream is not None:
            print(progress_line(row), file=self._stream, flush=True)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
