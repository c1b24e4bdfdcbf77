"""The verdicts of ``llmrl bench sample-efficiency`` (pure; the arms themselves are integration runs)."""

from llmrl.bench.sample_efficiency import faster_by, judge, main, over_seeds


def _arm(steps_to_success=None, final=0.0):
    return {"steps_to_success": steps_to_success, "final_eval_success": final}


def test_guided_must_reach_the_threshold_in_a_third_of_ppos_steps():
    assert judge({"guided": _arm(20_000), "ppo": _arm(None)}, float("nan")) == {"guided_3x_faster": True}
    assert judge({"guided": _arm(20_000), "ppo": _arm(60_000)}, 0.0)["guided_3x_faster"]
    assert not judge({"guided": _arm(20_001), "ppo": _arm(60_000)}, 0.0)["guided_3x_faster"]
    assert not judge({"guided": _arm(None), "ppo": _arm(None)}, 0.0)["guided_3x_faster"]


def test_a_tie_with_the_noisy_teacher_is_not_a_win():
    tie = (0.7 + 0.8 + 0.6) / 3  # 0.7000000000000001, as in a recorded run
    assert tie > 0.7
    assert judge({"noisy": _arm(final=tie)}, 0.7) == {"student_beats_noisy_teacher": False}
    assert judge({"noisy": _arm(final=0.75)}, 0.7) == {"student_beats_noisy_teacher": True}


def test_lm_student_must_need_a_fifth_of_ppos_steps_or_less():
    ppo_never = {"steps_to_success": None, "final_eval_success": 0.0, "env_steps": 100_000}
    assert judge({"lm": _arm(20_000, 1.0), "ppo": ppo_never}, 0.0, 0.5)["lm_student_5x_faster"] is True
    # PPO never got there, but its budget was under 5x the student's steps: the claim cannot be decided.
    assert judge({"lm": _arm(20_001, 1.0), "ppo": ppo_never}, 0.0, 0.5)["lm_student_5x_faster"] is None
    ppo_reached = {"steps_to_success": 100_000, "final_eval_success": 0.9, "env_steps": 120_000}
    assert judge({"lm": _arm(20_000, 1.0), "ppo": ppo_reached}, 0.0, 0.5)["lm_student_5x_faster"] is True
    assert judge({"lm": _arm(20_001, 1.0), "ppo": ppo_reached}, 0.0, 0.5)["lm_student_5x_faster"] is False
    assert judge({"lm": _arm(None, 1.0), "ppo": ppo_never}, 0.0, 0.5)["lm_student_5x_faster"] is False


def test_lm_student_must_end_015_above_its_teacher():
    key = "lm_student_0.15_above_lm_teacher"
    assert judge({"lm": _arm(final=0.9)}, 0.0, 0.75)[key]  # exactly 0.15 above (as float sums come out)
    assert not judge({"lm": _arm(final=0.89)}, 0.0, 0.75)[key]
    assert not judge({"lm": _arm(final=1.0)}, 0.0, float("nan"))[key]  # an unmeasured teacher is no win
    assert "lm_student_5x_faster" not in judge({"lm": _arm(final=1.0)}, 0.0, 0.5)  # no PPO arm, no verdict


def test_faster_by_is_decided_only_when_ppos_budget_allows():
    assert faster_by(10, None, 50, 5) is True
    assert faster_by(11, None, 50, 5) is None
    assert faster_by(10, 49, 1_000, 5) is False
    assert faster_by(None, None, 1_000, 5) is False


def test_over_seeds_counts_where_each_claim_held():
    def report(seed, lm_steps, verdict):
        return {"seed": seed, "verdicts": {"lm_student_5x_faster": verdict},
                "results": {"lm": _arm(lm_steps, 1.0), "lm_teacher_alone": {"best": 0.7}}}

    summary = over_seeds([report(0, 10_000, True), report(1, None, False), report(2, 30_000, None)])
    assert summary["seeds"] == [0, 1, 2] and list(summary["arms"]) == ["lm"]
    assert summary["arms"]["lm"]["reached"] == 2
    assert summary["arms"]["lm"]["steps_to_success_mean_when_reached"] == 20_000
    assert summary["claims"]["lm_student_5x_faster"] == {"yes": 1, "no": 1, "undecided": 1}


def test_the_lm_arm_needs_an_lm_teacher_and_arms_are_checked():
    import pytest

    from llmrl.config import ConfigError

    with pytest.raises(ConfigError, match="teacher.backend: the lm arm needs an LM teacher"):
        main(["--arms", "lm,ppo", "--budget", "1"])
    with pytest.raises(ConfigError, match="--arms: unknown arm"):
        main(["--arms", "lm,bogus", "--budget", "1"])


def test_one_seed_lands_in_its_folder_and_reuse_reads_its_teacher_back(tmp_path, monkeypatch):
    """Training and the LM teacher are faked here (the real arms are integration runs): what is checked is where a
    seed's results go and that --reuse measures nothing again."""
    import json

    from llmrl.bench import sample_efficiency as se

    def fake_train(config, overrides, out, name, reuse):
        (out / name).mkdir(parents=True, exist_ok=True)
        summary = {"steps_to_success": 10_000 if name == "lm" else None, "env_steps": 50_000, "env_steps_per_s": 1.0,
                   "wall_s": 1.0, "teacher_llm_calls": 0}
        (out / name / "summary.json").write_text(json.dumps(summary))
        return summary, [{"env_steps": 50_000, "eval_success": 1.0 if name == "lm" else 0.0}]

    measured = []

    def fake_alone(config, overrides, run_dir, episodes):
        measured.append(run_dir)
        return {"episodes": episodes, "start": 0.5, "end": 0.6, "end_bank_version": 3, "best": 0.6}

    monkeypatch.setattr(se, "train_or_reuse", fake_train)
    monkeypatch.setattr(se, "lm_teacher_alone", fake_alone)
    args = ["--config", "configs/minigrid/simple_doorkey_smollm.yaml", "--arms", "lm,ppo", "--budget", "50000",
            "--teacher-episodes", "7", "--out", str(tmp_path)]
    assert se.main([*args, "--seeds", "2"]) == 0
    assert (tmp_path / "seed2" / "results.json").is_file() and not (tmp_path / "lm").exists()
    assert len(measured) == 1
    assert se.main([*args, "--seeds", "2", "--reuse"]) == 0
    assert len(measured) == 1  # read back, not measured again
    report = json.loads((tmp_path / "seed2" / "results.json").read_text())
    assert report["results"]["lm_teacher_alone"]["best"] == 0.6
    assert se.main([*args, "--seeds", "2", "--reuse", "--teacher-episodes", "8"]) == 0
    assert len(measured) == 2  # another episode count is another measurement
