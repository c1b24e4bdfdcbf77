"""``llmrl bench sample-efficiency --arms lm`` end to end on a tiny budget, with the tiny local LM as the teacher: a
real training run, the LM teacher measured alone at the start and with its run's last prompt bank. (The ppo arm
is the bench's existing teacher-off run; the verdicts against it are unit-tested in test_sample_efficiency_bench.)"""

from __future__ import annotations

import json

import pytest

from llmrl.bench.sample_efficiency import main

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

TINY = ["ppo.train_batch_size=512", "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
        "run.checkpoint_every=1", "resources.num_envs_per_env_runner=2", "feedback.publish_every=2",
        "feedback.flush_every=1", "teacher.bank_refresh_s=0",
        "resources.num_env_runners=0"]  # sampling in the driver: no env runner actor to cold-start (~10 s a run)


def test_lm_arm_reports_steps_success_and_the_lm_teacher_alone(tmp_path, tiny_lm_dir):
    out = tmp_path / "bench"
    assert main(["--arms", "lm", "--budget", "512", "--teacher-episodes", "2",
                 "--out", str(out), *TINY, "teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}"]) == 0
    report = json.loads((out / "results.json").read_text())
    results = report["results"]
    assert results["lm"]["env_steps"] >= 512 and results["lm"]["teacher_llm_calls"] > 0
    alone = results["lm_teacher_alone"]
    assert 0.0 <= alone["start"] <= 1.0 and 0.0 <= alone["end"] <= 1.0
    assert alone["end_bank_version"] >= 1  # the run's feedback reached the bank its last checkpoint holds
    assert alone["best"] == max(alone["start"], alone["end"])
    assert set(report["verdicts"]) == {"lm_student_0.15_above_lm_teacher"}
    assert (out / "success_vs_steps.png").is_file()
