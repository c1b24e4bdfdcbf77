"""``llmrl bench teacher-learns`` on a tiny budget with the tiny local LM: the arms run, every checkpoint's teacher
is measured (its bank and adapter loaded), and the report, table and plot are written. Not a measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.bench.teacher_learns import main

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"


def test_the_adapter_arm_on_a_tiny_budget(tmp_path, tiny_lm_dir):
    # One arm (the one that loads a bank and an adapter at every checkpoint) keeps CI short; the arms differ
    # only by their overrides, checked below.
    overrides = ["teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}", "ppo.train_batch_size=512",
                 "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
                 "resources.num_envs_per_env_runner=2", "feedback.publish_every=2", "feedback.flush_every=1",
                 "teacher.bank_refresh_s=0", "adapter.min_new_pairs=1", "adapter.poll_s=0.2", "adapter.r=4",
                 "resources.num_env_runners=0"]  # sampling in the driver: no env runner actor to cold-start
    assert main(["--configs", str(CONFIG), "--seeds", "0", "--steps", "1024", "--checkpoint-every", "1",
                 "--teacher-episodes", "1", "--arms", "adapter", "--out", str(tmp_path), *overrides]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert [r["arm"] for r in report["results"]] == ["adapter"]
    for name, points in report["curves"].items():
        assert len(points) >= 2, name  # one measured teacher per checkpoint
        for p in points:
            assert 0.0 <= p["teacher_success"] <= 1.0 and p["states"] > 0 and 0.0 <= p["top1_accuracy"] <= 1.0
    curve = report["curves"]["SimpleDoorKey-adapter-s0"]
    assert curve[-1]["bank_version"] >= 1  # the bank went on
    # The curve starts with the teacher the run started with: step 0, the initial bank, no adapter.
    assert (curve[0]["env_steps"], curve[0]["bank_version"], curve[0]["adapter_version"]) == (0, 0, 0)
    assert (tmp_path / "teacher_vs_steps.png").stat().st_size > 0 and (tmp_path / "table.md").is_file()
    assert [(g["arm"], g["seeds"]) for g in report["over_seeds"]] == [("adapter", 1)]
    # Each finished fine-tune's verdict, from the run's journal: as many as the trainer's saved counters (written
    # when a fine-tune ends; none when the tiny run ended before its first trigger).
    (result,) = report["results"]
    saved = tmp_path / "SimpleDoorKey-adapter-s0" / "adapters" / "trainer_counters.json"
    counters = json.loads(saved.read_text()) if saved.is_file() else {"attempts": 0, "accepted": 0}
    assert len(result["adapter_attempts"]) == counters["attempts"]
    assert [a["outcome"] for a in result["adapter_attempts"]].count("accepted") == counters["accepted"]
    # --reuse reads the finished run and its measured teachers back: nothing trained or measured again.
    run_dir = tmp_path / "SimpleDoorKey-adapter-s0"
    stamps = {f: f.stat().st_mtime_ns for f in (run_dir / "metrics.jsonl", run_dir / "teacher_curve.json")}
    assert main(["--configs", str(CONFIG), "--seeds", "0", "--steps", "1024", "--checkpoint-every", "1",
                 "--teacher-episodes", "1", "--arms", "adapter", "--out", str(tmp_path), "--reuse", *overrides]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["results"] == report["results"] and again["curves"] == report["curves"]
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps


def test_over_seeds_averages_per_env_and_arm():
    from llmrl.bench.teacher_learns import over_seeds

    def run(arm, seed, steps, final, start, last, best):
        return {"env": "E", "arm": arm, "seed": seed, "steps_to_success": steps, "final_eval_success": final,
                "teacher_success_start": start, "teacher_success_last": last, "teacher_success_best": best}

    table = over_seeds([run("a", 0, 100, 0.9, 0.7, 0.9, 0.95), run("a", 1, None, 0.5, 0.8, 0.8, 0.8),
                        run("b", 0, 300, 1.0, 0.5, 0.4, 0.5)])
    assert [(g["arm"], g["seeds"], g["reached"]) for g in table] == [("a", 2, 1), ("b", 1, 1)]
    a = table[0]
    # Steps averaged over the seeds that reached the threshold only; the count says how many did.
    assert a["mean_steps_to_success"] == 100 and a["mean_final_eval_success"] == pytest.approx(0.7)
    assert a["mean_teacher_gain_last"] == pytest.approx(0.1) and a["mean_teacher_gain_best"] == pytest.approx(0.125)
    assert table[1]["mean_teacher_gain_last"] == pytest.approx(-0.1)


def test_an_unknown_arm_is_one_line_naming_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["--configs", str(CONFIG), "--arms", "frozen,adaptr"])
    assert "unknown arm(s) adaptr; choose from frozen, bank" in capsys.readouterr().err


def test_the_arms_are_the_issues_four_and_hindsight():
    from llmrl.bench.teacher_learns import ARMS
    from llmrl.config import load_config


    assert ARMS["frozen"] == ["feedback.enabled=false"]  # the LM teacher with only the task description
    assert "teacher.reweight_by_success=true" in ARMS["reweight"] and "adapter.enabled=true" in ARMS["adapter"]
    assert ARMS["bank"] == []  # the prompt bank alone: feedback on (the default), no reweighting or adapter
    # The adapter arms differ only in their pairs' labels, whatever the config says.
    cfgs = {arm: load_config("configs/minigrid/simple_doorkey_smollm.yaml", ARMS[arm])
            for arm in ("adapter", "hindsight", "hindsight_only")}
    assert {arm: c.adapter.pair_label for arm, c in cfgs.items()} == {
        "adapter": "advised", "hindsight": "achieved", "hindsight_only": "achieved"}
    assert cfgs["hindsight_only"].feedback.publish_every > 10**8 > cfgs["hindsight"].feedback.publish_every
