"""The verdicts and per-run records of ``llmrl bench overhead --train-steps`` (pure; the runs themselves are
training runs, tried on a tiny budget by hand and recorded in docs/benchmarks/hot_path.md)."""

import pytest

from llmrl.bench.overhead import judge_training, run_record


def _run(end_to_end, sampling, steps):
    return {"end_to_end": end_to_end, "sampling": sampling, "steps_to_success": steps}


def test_ratios_are_of_mean_rates_and_every_guided_seed_must_reach_success():
    runs = {"off": [_run(300, 600, 80_000), _run(100, 200, None)],
            "hf": [_run(180, 360, 20_000), _run(180, 360, 30_000)]}
    v = judge_training(runs, "hf", target_ratio=0.9, max_steps=26_600)
    assert v["ratio_end_to_end"] == pytest.approx(0.9) and v["ratio_sampling"] == pytest.approx(0.9)
    assert v["throughput_met"] and v["guided_mean_steps_to_success"] == 25_000 and v["steps_to_success_met"]
    runs["hf"][1]["steps_to_success"] = None  # one seed never got there: no mean to compare
    v = judge_training(runs, "hf", target_ratio=0.95, max_steps=26_600)
    assert not v["throughput_met"] and v["guided_mean_steps_to_success"] is None and not v["steps_to_success_met"]


def test_run_record_undoes_rllibs_moving_average_of_sampling_time():
    per_iter = [4.0, 2.0, 2.0]  # seconds of sampling per iteration
    ema, rows = None, []
    for x in per_iter:
        ema = x if ema is None else 0.99 * ema + 0.01 * x
        rows.append({"sample_s": ema})
    summary = {"env_steps": 6000, "wall_s": 20.0, "env_steps_per_s": 300.0, "steps_to_success": 4000,
               "eval_success": 1.0, "teacher_llm_calls": 6.0, "teacher_wait_s": 1.5, "teacher_stale_step_frac": 0.1,
               "teacher_rescored": 12.0, "teacher_backend_busy_s": 5.0}
    r = run_record(summary, rows)
    assert r["sampling"] == pytest.approx(6000 / 8.0) and r["end_to_end"] == 300.0
    assert r["lm_busy_frac"] == 0.25
    assert (r["steps_to_success"], r["stale_step_frac"], r["rescored"], r["teacher_wait_s"]) == (4000, 0.1, 12.0, 1.5)
