"""``llmrl bench faults``: its bookkeeping on synthetic metrics, and one real trial on a tiny budget."""

from __future__ import annotations

import json

import pytest

from llmrl.bench.faults import FAULTS, Trial, lambda_continued, main, report, schedule, steps_lost
from llmrl.config import Config
from llmrl.schedule import distill_coef


def row(env_steps: int, iter_steps: int, coef: float = 0.0) -> dict:
    return {"env_steps": env_steps, "iter_env_steps": iter_steps, "distill_coef": coef}


def test_steps_lost_counts_a_resume_from_an_older_state():
    uninterrupted = [row(512, 512), row(1024, 512), row(1536, 512)]
    assert steps_lost(uninterrupted) == 0
    # Trained to 1536, then resumed from the checkpoint at 512: the 1024 steps after it were lost.
    assert steps_lost([*uninterrupted, row(1024, 512), row(1536, 512)]) == 1024


def test_lambda_continued_means_the_schedule_of_one_run():
    cfg = Config()
    rows = [row(512 * (i + 1), 512, distill_coef(i, cfg.distill)) for i in range(4)]
    assert lambda_continued(rows, cfg)
    restarted = rows[:2] + [row(1536, 512, distill_coef(0, cfg.distill))]  # lambda back at its start
    assert not lambda_continued(restarted, cfg)
    # Iterations that sampled nothing while an env runner restarted made no update: lambda goes on after them.
    assert lambda_continued([*rows[:2], row(1024, 0, float("nan")), row(1024, 0, float("nan")), *rows[2:]], cfg)
    assert not lambda_continued([], cfg)


def test_schedule_is_seeded_and_covers_every_kind():
    kinds = list(FAULTS)
    first = schedule(kinds, 2 * len(kinds), seed=3, max_delay_s=5.0)
    assert [(t.kind, t.delay_s) for t in first] == [(t.kind, t.delay_s) for t in schedule(kinds, 2 * len(kinds), 3, 5.0)]
    assert sorted(t.kind for t in first) == sorted(kinds * 2)
    assert all(0.0 <= t.delay_s <= 5.0 for t in first)


def test_report_aggregates_per_kind_and_leaves_out_skipped_trials():
    trials = [Trial(0, "feedback", 1.0, injected=True, survived=True, summaries_lost=2, summaries_sent=40,
                    lambda_continued=True, bank_version_continued=True),
              Trial(1, "feedback", 2.0, injected=True, survived=False, env_steps_lost=512, summaries_sent=30),
              Trial(2, "adapter_trainer", 1.0, skipped="no adapter_trainer in this run")]
    table = {r[0]: r for r in report(trials)}
    assert table["feedback"][1:] == [2, 2, 1, 512, 2, 70, "1/2", "1/2", "n/a"]
    assert table["adapter_trainer"][1:4] == [1, 0, 0]
    assert report([Trial(0, "none", 0.0, survived=True)])[0][1:4] == [1, 0, 1]  # the baseline injects nothing


def test_unknown_kind_is_a_one_line_error(capsys):
    assert main(["--kinds", "teacher,nope"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.integration
def test_a_feedback_crash_trial_survives_and_is_counted(tmp_path, ray_local):
    assert main(["--trials", "1", "--kinds", "feedback", "--steps", "1536", "--max-delay-s", "0",
                 "--out", str(tmp_path)]) == 0
    (trial,) = json.loads((tmp_path / "faults.json").read_text())["trials"]
    assert trial["injected"] and trial["survived"], trial
    assert trial["restarts"]["feedback_restarts"] >= 1  # the loop counted the restart
    assert trial["lambda_continued"] and trial["bank_version_continued"]  # the recovered bank went on
    assert trial["env_steps_lost"] == 0 and trial["summaries_sent"] > 0


def test_an_adapter_trainer_trial_runs_the_online_adapter(tmp_path):
    from llmrl.bench.faults import DEFAULT_CONFIG, TRIAL_OVERRIDES
    from llmrl.config import load_config

    # The default config has no adapter trainer: the fault brings the overrides that give the run one.
    needs = FAULTS["adapter_trainer"].needs
    assert needs is not None and FAULTS["feedback"].needs is None
    cfg = load_config(DEFAULT_CONFIG, [*TRIAL_OVERRIDES, *needs(tmp_path)])
    assert cfg.adapter.enabled and cfg.teacher.backend == "hf"
    assert (tmp_path / "tiny-lm" / "config.json").is_file()
    built = (tmp_path / "tiny-lm" / "config.json").stat().st_mtime_ns
    needs(tmp_path)  # the second trial reuses the model
    assert (tmp_path / "tiny-lm" / "config.json").stat().st_mtime_ns == built
