"""The pure parts of ``llmrl bench scaling``: overrides, per-iteration timers, measured rows, predictions."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from llmrl.bench import scaling as sb
from llmrl.bench import scaling_model as sm
from llmrl.config import load_config


def test_parse_args(capsys):
    args = sb.parse_args([])
    assert args.runners == [1, 2] and args.predict_gpus == [0, 1, 2, 4, 8] and args.predict_runners[-1] == 64
    args = sb.parse_args(["--runners", "1,2,4", "--steps", "100", "ppo.lr=0.01"])
    assert args.runners == [1, 2, 4] and args.steps == 100 and args.overrides == ["ppo.lr=0.01"]
    for bad in (["--steps", "0"], ["--runners", "0"], ["--predict-gpus", "-1"]):
        with pytest.raises(SystemExit):
            sb.parse_args(bad)
    capsys.readouterr()


def test_run_overrides_make_a_valid_config(tmp_path):
    cfg = load_config("configs/minigrid/simple_doorkey.yaml", sb.run_overrides(2, 4096, tmp_path, ["ppo.lr=0.01"]))
    assert cfg.resources.num_env_runners == 2 and cfg.resources.num_cpus == 3
    assert cfg.run.max_env_steps == 4096 and cfg.teacher.backend == "scripted" and cfg.ppo.lr == 0.01
    assert cfg.run.eval_every > 1000 and cfg.run.name == "k2"


def test_undo_ema_recovers_the_values():
    xs = [30.0, 2.0, 2.5, 1.5, 2.25]
    ema, out = None, []
    for x in xs:
        ema = x if ema is None else (1 - sb.RLLIB_TIMER_EMA) * ema + sb.RLLIB_TIMER_EMA * x
        out.append(ema)
    assert sb.undo_ema(out) == pytest.approx(xs)
    assert sb.undo_ema([]) == []


def _metrics(n=4):
    """Synthetic metrics rows: 2048 steps per iteration, cumulative teacher counters, EMA timers."""
    rows, ema_s, ema_l = [], None, None
    for i in range(n):
        s, le = (5.0, 20.0) if i == 0 else (1.0, 0.5)
        ema_s = s if ema_s is None else 0.99 * ema_s + 0.01 * s
        ema_l = le if ema_l is None else 0.99 * ema_l + 0.01 * le
        rows.append({"iteration": i + 1, "iter_env_steps": 2048, "iter_s": s + le, "sample_s": ema_s,
                     "learn_s": ema_l, "teacher_service_requests": 100.0 + 20 * i, "teacher_wait_s": 1.0 + 0.1 * i})
    return rows


def test_measured_row_leaves_out_the_first_iteration():
    cfg = SimpleNamespace(resources=SimpleNamespace(num_envs_per_env_runner=8),
                          ppo=SimpleNamespace(train_batch_size=2048),
                          teacher=SimpleNamespace(max_batch_size=32, max_wait_ms=5.0))
    teacher = {"batches": 10.0, "batched_prompts": 40.0, "latency_s_sum": 0.02}
    row = sb.measured_row(2, _metrics(), teacher, cfg, env_step_s=1e-4, cores=2)
    assert row["env_steps_per_s"] == pytest.approx(2048 / 1.5)
    assert row["sample_s"] == pytest.approx(1.0) and row["learn_s"] == pytest.approx(0.5)
    assert row["query_rate"] == pytest.approx(60 / (3 * 2048))
    assert row["teacher_requests_per_s"] == pytest.approx(60 / 4.5)
    assert row["advice_latency_p50_s"] == pytest.approx(0.3 / 60)
    assert row["mean_batch_size"] == 4.0 and row["teacher_batch_s"] == pytest.approx(0.002)
    with pytest.raises(ValueError):
        sb.measured_row(1, _metrics(1), teacher, cfg, 1e-4, 2)
    rows = [dict(row, runners=1, env_steps_per_s=1000.0), dict(row, runners=2, env_steps_per_s=1500.0)]
    sb.add_efficiency(rows)
    assert [r["efficiency"] for r in rows] == [1.0, 0.75]
    # The rows are what the scaling model fits.
    costs = sm.fit_costs_from_measurements(rows)
    assert costs.learn_s_per_sample == pytest.approx(0.5 / 2048)


def test_cpu_teacher_costs_from_bench_rows():
    rows = [{"backend": "hf", "states": "distinct", "per_call": "1", "max_batch_size": "1", "concurrency": "1",
             "requests_per_s": "50"},
            {"backend": "hf", "states": "distinct", "per_call": "1", "max_batch_size": "32", "concurrency": "32",
             "requests_per_s": "100"},
            {"backend": "hf", "states": "distinct", "per_call": "8", "max_batch_size": "32", "concurrency": "32",
             "requests_per_s": "1000"},
            {"backend": "scripted", "states": "distinct", "per_call": "1", "max_batch_size": "1", "concurrency": "1",
             "requests_per_s": "500"}]
    a, b = sb.cpu_teacher_costs(rows)
    assert b == pytest.approx(0.01) and a == pytest.approx(0.01)
    assert sb.cpu_teacher_costs(rows[1:]) is None


BASE = sm.SystemCosts(env_step_s=1e-4, policy_infer_s=1e-3, learn_s_per_sample=1e-4, teacher_a_s=0.0,
                      teacher_b_s=1e-4, query_rate=0.0, envs_per_runner=8, cores_per_node=2)


def test_scenario_costs():
    measured = sb.scenario_costs(BASE, "measured", 4, 16, 100, None)
    assert measured.cores_per_node == 16 and measured.query_rate == 0.0 and measured.teacher_b_s == 1e-4
    gpu = sb.scenario_costs(BASE, "llm", 2, 8, 100, None)
    assert gpu.query_rate == 0.01 and gpu.teacher_a_s == sb.GPU_TEACHER.a_s and gpu.teacher_b_s == sb.GPU_TEACHER.b_s
    assert gpu.max_batch_size == sb.GPU_TEACHER.max_batch_size
    assert sb.scenario_costs(BASE, "llm", 0, 8, 100, None) is None
    cpu = sb.scenario_costs(BASE, "llm", 0, 8, 50, (0.003, 0.009))
    assert (cpu.teacher_a_s, cpu.teacher_b_s, cpu.query_rate) == (0.003, 0.009, 0.02)


def test_prediction_and_check_tables():
    table, flat = sb.prediction_table(BASE, "llm", [1, 4], [0, 1], 100, None)
    lines = table.splitlines()
    assert lines[0] == "| runners | G=0 | G=1 |"
    assert lines[2].startswith("| 1 | - | ") and "eff 1.00" in lines[2]
    assert len(flat) == 2 and {f["teacher_gpus"] for f in flat} == {1}
    checks = [sm.Check((1, 0), 100.0, 110.0, 0.1), sm.Check((2, 0), 200.0, 150.0, -0.25)]
    lines = sb.check_table(checks).splitlines()
    assert lines[2] == "| 1 | 100 | 110 | +10.0% |" and lines[3].endswith("| -25.0% |")
    assert math.isclose(sb.GPU_TEACHER.b_s, 160 / 12_500)
