"""A run replayed from its own teacher log gives the same advice, step for step (real Ray, real RLlib, MiniGrid).

The first run's teacher is the scripted planner with 30% wrong plans; the second run's teacher is the replay
backend with another teacher.seed and no fallback, so every answer it gives must come from the log: a scripted
teacher with that seed would draw other errors, and a miss would be no advice. Exact replay needs the same
prompts in the same order: one env runner, the same run.seed, feedback off (a fixed prompt bank) and an advice
timeout no answer can miss (docs/teacher_log.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.envs.registry import planner_module
from llmrl.teacher.teacher_log import read_log
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"
REPRODUCIBLE = [
    "ppo.train_batch_size=512",
    "ppo.minibatch_size=128",
    "ppo.num_epochs=1",
    "run.eval_episodes=2",
    "run.max_env_steps=1024",
    "resources.num_env_runners=0",  # sampling in the driver: no env runner actor to cold-start (~10 s a run)
    "resources.num_envs_per_env_runner=2",
    "feedback.enabled=false",
    "teacher.advice_timeout_s=120",
]


def run(tmp: Path, name: str, *overrides: str) -> dict:
    cfg = load_config(CONFIG, [*REPRODUCIBLE, f"run.out_dir={tmp}", f"run.name={name}", *overrides])
    return train(cfg, stream=None)


def test_a_replayed_run_gets_the_logged_advice_step_for_step(tmp_path):
    first = run(tmp_path, "scripted", "teacher.error_rate=0.3", "teacher.seed=3")
    assert first["teacher_log"] == str(Path(first["run_dir"]) / "teacher_log.jsonl")
    logged = read_log(first["teacher_log"]).records
    assert logged and first["teacher_log_dropped"] == 0
    planner = planner_module("minigrid")
    wrong = [r for r in logged if r.has_advice and r.top_option() != planner.correct_option(r.state_text, r.options)]
    assert wrong, "the scripted teacher drew no wrong plan: the replay would prove nothing"

    second = run(tmp_path, "replayed", "teacher.backend=replay", f"teacher.replay.log={first['teacher_log']}",
                 "teacher.replay.fallback=none", "teacher.seed=11")
    assert second["teacher_replay_misses"] == 0
    assert second["teacher_replay_hits"] == len(logged)
    replayed = read_log(second["teacher_log"]).records
    # The same questions in the same order, answered with the same distributions (wrong plans included).
    assert [(r.prompt_hash, r.probs) for r in replayed] == [(r.prompt_hash, r.probs) for r in logged]
    assert {r.source for r in replayed} == {"replay"}

    # And the student saw the same teacher: the distillation term matches iteration by iteration.
    def ce(summary):
        return [json.loads(line)["distill_ce"] for line in Path(summary["run_dir"], "metrics.jsonl").open()]

    assert ce(second) == pytest.approx(ce(first))
