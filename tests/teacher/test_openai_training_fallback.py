"""An unreachable OpenAI-compatible endpoint: training finishes on time, the failures are counted and warned about.

Nothing listens on the port (picked free, then closed), so every request fails fast with a connection error;
with ``timeout_s=0.5`` and one retry each query gives up within about a second and answers "no advice". The
run must still reach its step budget, count the no-advice answers, and log the backend's warning.

After a "teacher_unavailable" answer the runner backs off for ``teacher.retry_after_s``, so the dead endpoint
is asked a few times per second at most, not on every env step.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"
# Generous for a 2-core CI box under load; a hang (e.g. waiting on the dead endpoint per step) would blow it.
MAX_WALL_S = 180.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_openai_endpoint_falls_back_without_hanging(tmp_path, capfd):
    cfg = load_config(CONFIG, [
        "teacher.backend=openai", f"teacher.openai.base_url=http://127.0.0.1:{_closed_port()}/v1",
        "teacher.openai.model=x", "teacher.openai.timeout_s=0.5", "teacher.openai.max_retries=1",
        "teacher.openai.backoff_s=0.05", "run.max_env_steps=1024", "ppo.train_batch_size=512",
        "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2", "resources.num_envs_per_env_runner=2",
        "resources.num_env_runners=0",  # sampling in the driver: no env runner actor to cold-start (~10 s a run)
        f"run.out_dir={tmp_path}", "run.name=openai-down",
    ])
    t0 = time.monotonic()
    summary = train(cfg, stream=None)
    elapsed = time.monotonic() - t0
    assert elapsed < MAX_WALL_S, f"training took {elapsed:.0f}s with a dead teacher"
    assert summary["env_steps"] >= 1024
    assert summary["teacher_fallbacks"] > 0 and summary["teacher_no_advice"] > 0
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    # Every service answer was "no advice" (the endpoint never answered), and nothing was cached as advice.
    assert last["teacher_service_requests"] > 0
    assert last["teacher_no_advice"] == last["teacher_service_requests"]
    # Backing off: far fewer calls to the dead backend than env steps.
    assert last["teacher_service_requests"] < summary["env_steps"] / 4
    assert summary["teacher_cache_hit_rate"] <= 1.0
    assert all(r["advised_frac"] == 0.0 for r in rows if r["advised_frac"] == r["advised_frac"])
    # The backend's warning reaches the driver's log (Ray forwards actor logs asynchronously: allow a moment).
    deadline = time.monotonic() + 10
    seen = ""
    while time.monotonic() < deadline and "openai teacher at" not in seen:
        time.sleep(0.5)
        out, err = capfd.readouterr()
        seen += out + err
    assert "openai teacher at" in seen and "get no advice" in seen
