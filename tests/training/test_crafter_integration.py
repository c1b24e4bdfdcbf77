"""End-to-end Crafter runs through real Ray actors and real RLlib, with tiny budgets.

One iteration of 256 env steps per run (128 per env), on episodes of at most 100 steps: a Crafter step costs
4-8 ms and building a world ~1.3 s on these machines, and this is about the smallest budget in which every env
finishes a training episode and evaluation finishes its episodes.
The runs check wiring and outputs (the sub-goal-conditioned student, both teacher backends, the Crafter
metrics), not learning; that is ``llmrl bench crafter``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.envs.crafter.score import ACHIEVEMENTS, crafter_score
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "crafter" / "default.yaml"
TINY = [
    "env.max_steps=100",
    "ppo.train_batch_size=256",
    "ppo.minibatch_size=128",
    "ppo.num_epochs=1",
    "run.max_env_steps=256",
    "run.eval_every=1",
    "run.eval_episodes=2",
    "resources.num_envs_per_env_runner=2",
    "resources.num_env_runners=1",  # the budget above is 128 steps per env: the config's two runners would halve it
]
ROW_KEYS = {"episode_return_mean", "env_return_mean", "episode_len_mean", "crafter_score", "train_crafter_score",
            "train_episodes"}


def run(tmp: Path, *overrides: str) -> dict:
    return train(load_config(CONFIG, [*TINY, f"run.out_dir={tmp}", *overrides]), stream=None)


def rows(run_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def check_crafter_outputs(summary: dict) -> None:
    assert summary["env"] == "Crafter" and summary["env_steps"] >= 256
    assert set(summary["achievements"]) == set(ACHIEVEMENTS) and len(summary["achievements"]) == 22
    assert all(0.0 <= v <= 100.0 for v in summary["achievements"].values())
    assert 0.0 <= summary["crafter_score"] <= 100.0
    assert set(summary["train_achievements"]) == set(ACHIEVEMENTS)
    assert summary["train_episodes"] >= 2  # each of the 2 envs ended at least one episode in its 128 steps
    assert summary["teacher_requests"] > 0 and summary["teacher_llm_calls"] > 0
    assert 0.0 <= summary["teacher_cache_hit_rate"] <= 1.0
    metrics = rows(summary["run_dir"])
    assert len(metrics) == summary["iterations"] >= 1
    last = metrics[-1]
    assert ROW_KEYS <= set(last)
    assert 0 < last["episode_len_mean"] <= 100
    assert {k for k in last if k.startswith("eval_ach/")} == {f"eval_ach/{a}" for a in ACHIEVEMENTS}
    assert {k for k in last if k.startswith("train_ach/")} == {f"train_ach/{a}" for a in ACHIEVEMENTS}
    assert last["crafter_score"] == pytest.approx(summary["crafter_score"])
    assert last["advised_frac"] > 0  # sub-goal skill actions reached the learner's distillation term


def test_tiny_scripted_crafter_run(tmp_path):
    summary = run(tmp_path, "run.name=scripted")
    assert summary["teacher_backend"] == "scripted"
    check_crafter_outputs(summary)
    # llmrl eval CHECKPOINT: a Crafter student is evaluated with its teacher's sub-goals.
    from llmrl.training.evaluate import evaluate_student

    result = evaluate_student(Path(summary["checkpoint"]), episodes=2)
    assert result["episodes"] == 2 and result["teacher_backend"] == "scripted"
    # As training's evaluation: the stochastic student, scored by the Crafter protocol over the episodes.
    assert result["greedy"] is False
    assert set(result["achievements"]) == set(ACHIEVEMENTS)
    assert all(rate in (0.0, 50.0, 100.0) for rate in result["achievements"].values())
    assert result["score"] == pytest.approx(crafter_score(result["achievements"]))
    assert "env_return_mean" in result


def test_tiny_hf_crafter_run(tmp_path):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "tiny-lm")
    # Sampling in the driver (no env runner actor to cold-start, ~10 s): the scripted run covers the actor path.
    summary = run(tmp_path, "run.name=hf", "teacher.backend=hf", f"teacher.hf.model={model}",
                  "resources.num_env_runners=0")
    assert summary["teacher_backend"] == "hf"
    check_crafter_outputs(summary)
