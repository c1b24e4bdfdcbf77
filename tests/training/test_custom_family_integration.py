"""A user's own family (examples/corridor, ``env.name=examples.corridor:CorridorEnv``) trained end to end through
real Ray actors and real RLlib, with the scripted teacher and with an LM teacher (a tiny local LM), on tiny
budgets: the env, its planner and its prompt words are found by name in every process (driver, env runners,
teacher service). These check wiring, not learning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "corridor" / "corridor.yaml"
TINY = ["ppo.train_batch_size=256", "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
        "run.max_env_steps=512", "run.stop_on_success=false", "resources.num_envs_per_env_runner=2",
        "feedback.publish_every=2", "feedback.flush_every=1", "teacher.bank_refresh_s=0"]


def run(tmp: Path, monkeypatch, *overrides: str) -> tuple[dict, list[dict]]:
    monkeypatch.chdir(ROOT)  # the module resolves from the current directory, as for a user in their repo
    cfg = load_config(CONFIG, [*TINY, f"run.out_dir={tmp}", *overrides])
    summary = train(cfg, stream=None)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return summary, rows


def test_scripted_teacher_guides_a_user_family(tmp_path, monkeypatch):
    summary, rows = run(tmp_path, monkeypatch)
    assert summary["env"] == "examples.corridor:CorridorEnv" and summary["env_steps"] >= 512
    assert summary["teacher_requests"] > 0 and rows[-1]["advised_frac"] > 0  # advice reached the learner
    assert rows[-1]["teacher_no_advice"] == 0  # the service found this family's planner by name
    assert summary["bank_version"] >= 1 and rows[-1]["feedback_sent"] > 0


def test_lm_teacher_guides_a_user_family(tmp_path, monkeypatch):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "tiny-lm")
    summary, rows = run(tmp_path, monkeypatch, "teacher.backend=hf", f"teacher.hf.model={model}")
    assert summary["teacher_backend"] == "hf" and summary["teacher_llm_calls"] > 0
    # Two state texts (switch off / on) per episode: nearly every request is answered from a cache.
    assert summary["teacher_cache_hit_rate"] > 0.5
