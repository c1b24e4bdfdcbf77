"""Bad setups fail before training with one line and exit code 2 (real Ray, nothing trains)."""

import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml")

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["teacher.backend=hf", "teacher.hf.model=/nonexistent/model"], "teacher.hf.model: cannot load"),
        (["teacher.num_gpus=1"], "teacher.num_gpus"),  # no GPU here: must not hang waiting for one
    ],
)
def test_fails_fast_with_one_line(overrides, expected, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "train", CONFIG, *overrides, f"run.out_dir={tmp_path}",
         "run.max_env_steps=100"],
        capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("llmrl: ") and expected in last
