import math
from dataclasses import replace

import pytest

from llmrl.bench.scaling_model import (
    SystemCosts,
    as_row,
    check_against,
    fit_costs_from_measurements,
    predict,
    write_plot,
)

# Roughly this project's DoorKey figures: ~80 us per env step, a CPU policy, a fast cached teacher.
BASE = SystemCosts(env_step_s=80e-6, policy_infer_s=0.5e-3, learn_s_per_sample=20e-6, teacher_a_s=0.002,
                   teacher_b_s=0.0002, query_rate=0.01, envs_per_runner=8, cores_per_node=8,
                   train_batch_size=4000, rpc_s=0.001)


def test_throughput_rises_with_runners_until_the_cores_run_out():
    costs = replace(BASE, learn_s_per_sample=0.0, query_rate=0.0)
    rates = [predict(costs, k, 0).env_steps_per_s for k in range(1, 17)]
    assert all(b > a for a, b in zip(rates[:7], rates[1:8], strict=True))  # K = 1..8: monotone
    assert rates[7] == pytest.approx(8 * rates[0])  # no teacher, no learner: linear up to the cores
    assert all(r == pytest.approx(rates[7]) for r in rates[8:])  # past 8 cores: flat
    assert predict(costs, 12, 0).bottleneck == "cores"
    assert predict(costs, 4, 0).efficiency == pytest.approx(1.0)


def test_sync_learner_caps_throughput_and_async_overlaps_it():
    costs = replace(BASE, learn_s_per_sample=200e-6, cores_per_node=64)
    rates = [predict(costs, k, 1).env_steps_per_s for k in (1, 2, 4, 8, 16, 32)]
    assert all(b > a for a, b in zip(rates[:-1], rates[1:], strict=True))
    assert rates[-1] < 1 / costs.learn_s_per_sample
    assert predict(costs, 32, 1).bottleneck == "learner"
    assert predict(costs, 32, 1).efficiency < 0.5
    asyn = replace(costs, async_learner=True)
    assert predict(asyn, 32, 1).env_steps_per_s == pytest.approx(1 / costs.learn_s_per_sample)


def test_a_slow_teacher_is_the_bottleneck_and_more_teacher_gpus_help():
    slow = replace(BASE, teacher_a_s=0.3, teacher_b_s=0.01, query_rate=0.02, cores_per_node=1024,
                   learn_s_per_sample=0.0)
    p = predict(slow, 64, 1)
    assert p.bottleneck == "teacher"
    cap = slow.max_batch_size / slow.service_s(slow.max_batch_size)
    assert p.teacher_requests_per_s == pytest.approx(cap)  # saturated: full batches at capacity
    assert p.mean_batch_size == slow.max_batch_size
    assert predict(slow, 64, 2).env_steps_per_s > 1.5 * p.env_steps_per_s
    assert predict(slow, 64, 2).advice_latency_p50_s < p.advice_latency_p50_s
    # Batching: more runners -> bigger batches on the same replica, and throughput still grows until capacity.
    assert predict(slow, 8, 1).mean_batch_size > predict(slow, 2, 1).mean_batch_size
    # Far past capacity the runners stop waiting for advice (advice_timeout_s) and it is flagged.
    late = predict(slow, 1000, 1)
    assert late.advice_late and math.isinf(late.advice_latency_p50_s)


def test_teacher_gpus_must_hold_a_replica():
    with pytest.raises(ValueError):
        predict(replace(BASE, gpus_per_replica=2), 1, 1)
    assert predict(replace(BASE, gpus_per_replica=2), 1, 4).replicas == 2


def test_fit_recovers_known_costs_from_synthetic_rows():
    rows = [as_row(BASE, predict(BASE, k, 1)) for k in (1, 2)]
    rows = [{k: str(v) for k, v in r.items()} for r in rows]  # as csv.DictReader gives them
    fit = fit_costs_from_measurements(rows)
    for name in ("env_step_s", "policy_infer_s", "learn_s_per_sample", "teacher_a_s", "teacher_b_s", "rpc_s"):
        assert getattr(fit, name) == pytest.approx(getattr(BASE, name), rel=1e-6, abs=1e-12), name
    assert fit.query_rate == pytest.approx(BASE.query_rate)


def test_fit_from_throughput_only_uses_the_affine_runner_model():
    costs = replace(BASE, query_rate=0.0)
    rows = [{"runners": k, "env_steps_per_s": predict(costs, k, 0).env_steps_per_s, "envs_per_runner": 8,
             "train_batch_size": 4000, "cores": 8, "policy_infer_s": costs.policy_infer_s} for k in (1, 2)]
    fit = fit_costs_from_measurements(rows)
    assert fit.learn_s_per_sample == pytest.approx(costs.learn_s_per_sample, rel=1e-6)
    assert fit.env_step_s == pytest.approx(costs.env_step_s, rel=1e-6)
    assert predict(fit, 6, 0).env_steps_per_s == pytest.approx(predict(costs, 6, 0).env_steps_per_s, rel=1e-6)


def test_check_against_reports_relative_errors():
    rows = [as_row(BASE, predict(BASE, k, 1)) for k in (1, 2)]
    rows[1]["env_steps_per_s"] *= 0.8  # the "measurement" came out 20 % lower than the model
    checks = check_against(rows, BASE)
    assert [c.point for c in checks] == [(1, 1), (2, 1)]
    assert checks[0].rel_error == pytest.approx(0.0, abs=1e-12)
    assert checks[1].rel_error == pytest.approx(0.25)
    point, measured, predicted, rel = checks[1]
    assert predicted == pytest.approx(measured * 1.25)


def test_write_plot(tmp_path):
    rows = [as_row(BASE, predict(BASE, k, g)) for k in (1, 2) for g in (1, 2)]
    out = write_plot(rows, tmp_path / "plots" / "scaling.png")
    assert out.is_file() and out.stat().st_size > 1000
