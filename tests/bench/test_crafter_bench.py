"""``llmrl bench crafter``'s bookkeeping on hand-written runs (the training itself is covered by the Crafter
integration tests)."""

import csv
import math

import pytest

from llmrl.bench.crafter import aggregate, tables, throughput, write_curves
from llmrl.envs.crafter.score import ACHIEVEMENTS


def record(arm, seed, score, wood):
    rates = {a: 0.0 for a in ACHIEVEMENTS} | {"collect_wood": wood}
    return {"arm": arm, "seed": seed, "env_steps": 4096, "wall_s": 60.0,
            "env_steps_per_s": 70.0 if arm == "off" else 63.0, "train_crafter_score": score, "train_episodes": 20,
            "train_achievements": rates,
            "eval_crafter_score": score, "eval_achievements": rates, "env_return_mean": 1.0, "episode_len_mean": 180.0,
            "teacher_requests": 0.0 if arm == "off" else 50.0, "teacher_llm_calls": 0.0, "run_dir": "x"}


def test_throughput_skips_start_up_and_the_evaluating_last_iteration():
    rows = [{"iter_env_steps": 2048, "iter_s": 100.0}, {"iter_env_steps": 2048, "iter_s": 20.0},
            {"iter_env_steps": 2048, "iter_s": 30.0}, {"iter_env_steps": 2048, "iter_s": 90.0}]
    assert throughput(rows) == pytest.approx(4096 / 50.0)
    assert throughput(rows[:1]) == pytest.approx(20.48)


def test_arms_average_over_seeds_and_tables_show_both(tmp_path):
    records = [record("guided", 0, 3.0, 80.0), record("off", 0, 2.0, 60.0), record("guided", 1, 5.0, 100.0),
               record("off", 1, 2.0, 40.0)]
    arms = aggregate(records)
    assert arms["guided"]["seeds"] == [0, 1]
    assert arms["guided"]["train_crafter_score"] == pytest.approx(4.0)
    assert arms["guided"]["train_crafter_score_std"] == pytest.approx(math.sqrt(2.0))
    assert arms["off"]["train_achievements"]["collect_wood"] == pytest.approx(50.0)
    text = tables(arms)
    assert "throughput guided/off: 0.90x" in text
    assert all(a in text for a in ACHIEVEMENTS)
    curves = [{"arm": arm, "seed": 0, "iteration": i, "env_steps": 2048 * i, "train_crafter_score": 1.0 * i,
               "env_return_mean": 0.5 * i} for arm in ("guided", "off") for i in (1, 2)]
    write_curves(curves, tmp_path)
    assert (tmp_path / "crafter_curves.png").stat().st_size > 0
    with (tmp_path / "crafter_curves.csv").open() as f:
        assert [r["arm"] for r in csv.DictReader(f)] == ["guided", "guided", "off", "off"]


def test_a_leg_resumes_from_the_newest_complete_checkpoint_and_replaces_repeated_iterations(tmp_path):
    from llmrl.bench.runs import last_per_iteration
    from llmrl.training.checkpoint import LOOP_STATE, newest_checkpoint

    assert newest_checkpoint(tmp_path / "never-ran") is None
    for name in ("iter_000010", "iter_000020", "iter_000030.tmp"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / name / LOOP_STATE).write_text("{}")
    (tmp_path / "checkpoints" / "iter_000040").mkdir()  # its loop state not yet written: still being saved
    assert newest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "iter_000020"
    # Iterations 21-22 were logged, the leg died, the next leg resumed from iteration 20 and logged 21-23.
    rows = [{"iteration": i, "leg": 1} for i in (20, 21, 22)] + [{"iteration": i, "leg": 2} for i in (21, 22, 23)]
    assert last_per_iteration(rows) == [{"iteration": 20, "leg": 1}, {"iteration": 21, "leg": 2},
                                        {"iteration": 22, "leg": 2}, {"iteration": 23, "leg": 2}]


def test_a_run_that_reached_its_budget_in_an_earlier_leg_is_read_back_not_resumed(tmp_path):
    import json

    from llmrl.bench.runs import finished_run

    assert finished_run(tmp_path, 4096) is None
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 2048}))
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"iteration": 1}) + "\n")
    assert finished_run(tmp_path, 4096) is None  # ended short of the budget: resume it
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 2048, "steps_to_success": 2048}))
    assert finished_run(tmp_path, 4096, stop_on_success=True) is not None  # stopped at its success threshold
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 4096, "stopped_by": "SIGTERM"}))
    assert finished_run(tmp_path, 4096) is None  # a signal stopped it in its last iteration: resume it
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 4096}))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"iteration": i}) + "\n" for i in (1, 2, 2)))
    summary, rows = finished_run(tmp_path, 4096)
    assert summary["env_steps"] == 4096 and [r["iteration"] for r in rows] == [1, 2]
