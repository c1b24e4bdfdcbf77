"""A registered BabyAI multi-room level (``BabyAI-GoToSeqS5R2-v0``: 2x2 rooms, a sequence of go-to missions) trained
end to end through real Ray actors and real RLlib with the scripted teacher (BabyAIBot carrying out the mission),
on a tiny budget: the family, its planner and its prompt words are found by the id in every process. Wiring,
not learning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

ROOT = Path(__file__).resolve().parents[2]
TINY = ["env.name=BabyAI-GoToSeqS5R2-v0", "ppo.train_batch_size=256", "ppo.minibatch_size=128", "ppo.num_epochs=1",
        "run.eval_episodes=2", "run.max_env_steps=512", "run.stop_on_success=false",
        "resources.num_envs_per_env_runner=2", "feedback.publish_every=2", "feedback.flush_every=1",
        "teacher.bank_refresh_s=0"]


def test_scripted_teacher_guides_a_babyai_multi_room_level(tmp_path):
    cfg = load_config(ROOT / "configs" / "minigrid" / "registered.yaml", [*TINY, f"run.out_dir={tmp_path}"])
    summary = train(cfg, stream=None)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert summary["env"] == "BabyAI-GoToSeqS5R2-v0" and summary["env_steps"] >= 512
    assert summary["teacher_requests"] > 0 and rows[-1]["advised_frac"] > 0  # advice reached the learner
    assert rows[-1]["teacher_no_advice"] == 0  # the service found the registered planner by the id
