"""A small performance model of llmrl: predicted throughput for K env runners x G teacher GPUs.

``llmrl bench scaling`` measures 1 and 2 runners; ``fit_costs_from_measurements`` turns those rows into
``SystemCosts``; ``predict`` extrapolates to larger K and G; ``check_against`` and ``write_plot`` show how
far off the model is on the measured points.

The model (mean values, deterministic service; closed loop solved by bisection)
-------------------------------------------------------------------------------
* Env runners are identical parallel servers. One *vector step* of a runner costs
  ``c = N * env_step_s + policy_infer_s`` of CPU. With probability ``p = 1 - (1 - q)^N`` (``q`` = teacher
  query rate per env step after the client cache) at least one of its N envs meets an unseen state and the
  runner blocks for the advice latency, capped at ``advice_timeout_s`` (then it goes on without advice).
  So a runner does ``X = 1 / (c + p * latency)`` vector steps/s, and all runners together can use at most
  ``cores`` cores: ``K * X * c <= cores`` (blocked runners use no core, so K > cores can still help).
* The teacher is R = G / gpus_per_replica replicas (one CPU replica when G = 0) with even routing. A replica
  serves a batch of B distinct prompts in ``a + b * B`` s. Dynamic batching: when idle it collects for up
  to ``max_wait_s``; when busy, the next batch is everything that arrived during the current one, so at
  request rate ``lam`` the busy batch size solves ``B = lam * (a + b * B)``, capped at ``max_batch_size``.
  A request then waits half a batch on average before its own batch: latency ~ 1.5 * S(B) when busy,
  ``wait + S(B)`` when idle (blended by utilisation), plus ``rpc_s``. With deterministic service and a
  uniform arrival phase the latency is symmetric around its mean, so the mean is reported as the p50.
* Closed loop: the runners' request rate depends on the latency they see and vice versa. Capacity is
  ``max_batch_size / S(max_batch_size)`` per replica; when the runners could ask faster than that the
  teacher is the bottleneck: request rate = capacity and latency follows from Little's law (at most K
  runners wait at once, so the queue stays bounded). No Poisson queueing term: arrivals from a few
  blocking runners are far more regular than Poisson.
* The learner is serial. Synchronous PPO alternates: time per env step = 1 / sampling rate +
  ``learn_s_per_sample``; with ``async_learner`` the two overlap and the slower stage sets the rate.
  Driver overhead, weight sync and stragglers are folded into the fitted costs, not modelled.

Measured rows are dicts (e.g. from ``csv.DictReader``; numbers may be strings), one per (K, G) point.
Required: ``runners``, ``env_steps_per_s`` (end to end). Optional: ``teacher_gpus``, ``envs_per_runner``,
``train_batch_size``, ``cores`` (cores the runners share), ``sample_s`` and ``learn_s`` (wall seconds per
training iteration spent sampling and updating), ``env_step_s`` (one env.step), ``policy_infer_s`` (one
forward per vector step), ``query_rate`` (teacher requests per env step leaving the runners, i.e. after the
client cache), ``mean_batch_size`` and ``teacher_batch_s`` (prompts per backend batch and its seconds),
``teacher_requests_per_s``, ``advice_latency_p50_s`` (as a runner sees it: request to answer),
``max_batch_size``, ``max_wait_s``. ``as_row`` writes a prediction in this schema.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class SystemCosts:
    env_step_s: float  # one env.step of one env on one core
    policy_infer_s: float  # one policy forward over a runner's whole vector of envs
    learn_s_per_sample: float  # learner wall time per train sample (all epochs and minibatches)
    teacher_a_s: float  # teacher batch service time = a + b * B, per replica
    teacher_b_s: float
    query_rate: float  # teacher requests per env step after the client cache (its miss rate)
    envs_per_runner: int = 8
    cores_per_node: int = 2  # cores the env runners share (all runner nodes together)
    train_batch_size: int = 2048
    gpus_per_replica: int = 1  # teacher GPUs per replica (vLLM: tensor_parallel_size)
    max_batch_size: int = 32  # teacher.max_batch_size
    max_wait_s: float = 0.005  # teacher.max_wait_ms / 1000
    rpc_s: float = 0.0  # runner <-> teacher round trip outside the batch service (Ray call, pickling)
    advice_timeout_s: float = 5.0  # teacher.advice_timeout_s
    async_learner: bool = False  # sampling overlaps learning (otherwise synchronous PPO)

    def service_s(self, batch: float) -> float:
        return self.teacher_a_s + self.teacher_b_s * batch


@dataclass(frozen=True)
class Prediction:
    runners: int
    teacher_gpus: int
    replicas: int
    env_steps_per_s: float  # end to end, sampling and learning included
    sampling_steps_per_s: float  # while sampling
    teacher_requests_per_s: float
    mean_batch_size: float
    advice_latency_p50_s: float  # inf when advice comes later than the runners wait (advice_late)
    teacher_utilisation: float
    efficiency: float  # env_steps_per_s / (runners * the same at 1 runner); 1.0 = linear scaling
    bottleneck: str  # "env_runners" | "cores" | "teacher" | "learner"
    advice_late: bool = False


class Check(NamedTuple):
    point: tuple[int, int]  # (runners, teacher_gpus)
    measured: float  # env steps/s
    predicted: float
    rel_error: float  # (predicted - measured) / measured


def _replicas(costs: SystemCosts, teacher_gpus: int) -> int:
    if teacher_gpus <= 0:
        return 1
    r = teacher_gpus // costs.gpus_per_replica
    if r < 1:
        raise ValueError(f"{teacher_gpus} teacher GPUs cannot hold one replica of {costs.gpus_per_replica} GPUs")
    return r


def _capacity(costs: SystemCosts) -> float:
    """Requests/s one replica serves with full batches."""
    s = costs.service_s(costs.max_batch_size)
    return math.inf if s <= 0 else costs.max_batch_size / s


def _replica_state(costs: SystemCosts, lam: float) -> tuple[float, float, float]:
    """(mean batch size, utilisation, latency without rpc) of one replica at request rate ``lam`` < capacity."""
    a, b, w = costs.teacher_a_s, costs.teacher_b_s, costs.max_wait_s
    b_idle = 1.0 + lam * w
    b_busy = lam * a / (1.0 - lam * b) if lam * b < 1.0 else math.inf
    batch = min(float(costs.max_batch_size), max(1.0, b_idle, b_busy))
    s = costs.service_s(batch)
    rho = min(1.0, lam * s / batch)
    # The first request of an idle-phase batch waits the whole window, later ones about half of it.
    wait_idle = w * (1.0 + lam * w / 2.0) / (1.0 + lam * w)
    latency = (1.0 - rho) * (wait_idle + s) + rho * 1.5 * s
    return batch, rho, latency


def _solve(costs: SystemCosts, runners: int, replicas: int) -> dict[str, Any]:
    n, q = costs.envs_per_runner, costs.query_rate
    c = n * costs.env_step_s + costs.policy_infer_s
    p = 1.0 - (1.0 - q) ** n  # chance a vector step waits for advice
    m = n * q  # requests per vector step
    x_cores = costs.cores_per_node / (runners * c) if c > 0 else math.inf
    x_max = min(1.0 / c if c > 0 else math.inf, x_cores)
    cap = _capacity(costs)

    def blocked(lam_r: float) -> float:
        latency = _replica_state(costs, lam_r)[2] + costs.rpc_s
        return min(latency, costs.advice_timeout_s)

    def rate(x: float) -> float:
        return min(1.0 / (c + p * blocked(runners * x * m / replicas)), x_cores)

    out: dict[str, Any] = {"c": c, "p": p, "x_cores": x_cores, "teacher_bound": False, "late": False}
    x_cap = cap * replicas / (runners * m) if m > 0 else math.inf
    hi = min(x_max, x_cap * (1.0 - 1e-12))
    if m > 0 and x_cap <= x_max and rate(hi) >= hi:
        # The runners would ask faster than the teacher can answer: it sets the pace (Little's law).
        out["teacher_bound"] = True
        latency = (1.0 / x_cap - c) / p
        if latency > costs.advice_timeout_s:
            x = min(1.0 / (c + p * costs.advice_timeout_s), x_cores)
            out.update(x=x, lam_r=cap, latency=math.inf, late=True)
        else:
            out.update(x=x_cap, lam_r=cap, latency=latency)
        out["batch"], out["rho"] = float(costs.max_batch_size), 1.0
        return out
    lo = 0.0
    if not math.isfinite(hi):
        raise ValueError("costs give an infinite rate: env_step_s and policy_infer_s are both 0")
    for _ in range(100):  # rate() falls as x rises, so x - rate(x) has one root in [0, hi]
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate(mid) > mid else (lo, mid)
    x = 0.5 * (lo + hi)
    lam_r = runners * x * m / replicas
    batch, rho, lat = _replica_state(costs, lam_r) if m > 0 else (0.0, 0.0, 0.0)
    out.update(x=x, lam_r=lam_r, batch=batch, rho=rho, latency=(lat + costs.rpc_s) if m > 0 else 0.0)
    return out


def _end_to_end(costs: SystemCosts, sampling: float) -> float:
    learn = costs.learn_s_per_sample
    if costs.async_learner:
        return min(sampling, 1.0 / learn if learn > 0 else math.inf)
    return 1.0 / (1.0 / sampling + learn)


def _predict_one(costs: SystemCosts, runners: int, teacher_gpus: int) -> tuple[Prediction, dict[str, Any]]:
    if runners < 1:
        raise ValueError(f"runners must be >= 1, got {runners}")
    replicas = _replicas(costs, teacher_gpus)
    s = _solve(costs, runners, replicas)
    sampling = runners * s["x"] * costs.envs_per_runner
    total = _end_to_end(costs, sampling)
    per_step_sampling = 1.0 / sampling
    if costs.learn_s_per_sample > per_step_sampling:
        bottleneck = "learner"
    elif s["teacher_bound"] or s["p"] * min(s["latency"], costs.advice_timeout_s) > s["c"]:
        bottleneck = "teacher"
    elif s["x"] >= s["x_cores"] * (1.0 - 1e-9):
        bottleneck = "cores"
    else:
        bottleneck = "env_runners"
    pred = Prediction(
        runners=runners,
        teacher_gpus=teacher_gpus,
        replicas=replicas,
        env_steps_per_s=total,
        sampling_steps_per_s=sampling,
        teacher_requests_per_s=s["lam_r"] * replicas,
        mean_batch_size=s["batch"],
        advice_latency_p50_s=s["latency"],
        teacher_utilisation=s["rho"],
        efficiency=1.0,
        bottleneck=bottleneck,
        advice_late=s["late"],
    )
    return pred, s


def predict(costs: SystemCosts, runners: int, teacher_gpus: int) -> Prediction:
    """Predicted steady state for ``runners`` env runners and ``teacher_gpus`` teacher GPUs."""
    pred, _ = _predict_one(costs, runners, teacher_gpus)
    base, _ = _predict_one(costs, 1, teacher_gpus)
    return replace(pred, efficiency=pred.env_steps_per_s / (runners * base.env_steps_per_s))


def predict_grid(costs: SystemCosts, runners: Iterable[int], teacher_gpus: Iterable[int]) -> list[Prediction]:
    gpus = list(teacher_gpus)
    return [predict(costs, k, g) for k in runners for g in gpus]


def as_row(costs: SystemCosts, pred: Prediction) -> dict[str, float]:
    """A prediction in the measured-row schema (what a perfect benchmark would record)."""
    t = costs.train_batch_size
    return {
        "runners": pred.runners,
        "teacher_gpus": pred.teacher_gpus,
        "envs_per_runner": costs.envs_per_runner,
        "train_batch_size": t,
        "cores": costs.cores_per_node,
        "env_steps_per_s": pred.env_steps_per_s,
        "sample_s": t / pred.sampling_steps_per_s,
        "learn_s": t * costs.learn_s_per_sample,
        "policy_infer_s": costs.policy_infer_s,
        "query_rate": costs.query_rate,
        "mean_batch_size": pred.mean_batch_size,
        "teacher_batch_s": costs.service_s(pred.mean_batch_size) if pred.mean_batch_size else 0.0,
        "teacher_requests_per_s": pred.teacher_requests_per_s,
        "advice_latency_p50_s": pred.advice_latency_p50_s,
        "max_batch_size": costs.max_batch_size,
        "max_wait_s": costs.max_wait_s,
    }


# -- fitting -----------------------------------------------------------------------------------------------


def load_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _col(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray | None:
    """Column ``key`` as floats, or None when any row lacks it (empty CSV cells count as missing)."""
    vals = [r.get(key) for r in rows]
    if any(v is None or v == "" for v in vals):
        return None
    return np.asarray([float(v) for v in vals], dtype=float)


def _affine_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares ``y = a + b x`` with a, b >= 0. One distinct x: all cost per unit (a = 0), the
    pessimistic choice, since it predicts no gain from batching or scaling that was never measured."""
    if np.ptp(x) < 1e-9:
        return 0.0, float(np.mean(y) / np.mean(x)) if np.mean(x) > 0 else 0.0
    a, b = np.linalg.lstsq(np.stack([np.ones_like(x), x], axis=1), y, rcond=None)[0]
    if a < 0:
        return 0.0, float(np.dot(x, y) / np.dot(x, x))
    if b < 0:
        return float(np.mean(y)), 0.0
    return float(a), float(b)


def fit_costs_from_measurements(rows: Sequence[Mapping[str, Any]], **overrides: Any) -> SystemCosts:
    """``SystemCosts`` from measured rows (see the module docstring for the columns).

    Teacher: least squares ``teacher_batch_s = a + b * mean_batch_size``. Learner: ``learn_s`` per sample.
    Runners: per-runner vector step time from ``sample_s`` minus the measured advice wait; without
    ``sample_s``/``learn_s``, least squares on ``1 / env_steps_per_s = learn + (vector step / N) / K``.
    ``overrides`` set fields directly (e.g. ``cores_per_node=64`` to extrapolate to a bigger machine).
    """
    if not rows:
        raise ValueError("no measured rows")
    first = rows[0]

    def scalar(key: str, default: float) -> float:
        col = _col(rows, key)
        return float(np.median(col)) if col is not None else float(first.get(key) or default)

    k = _col(rows, "runners")
    x = _col(rows, "env_steps_per_s")
    if k is None or x is None:
        raise ValueError("every row needs 'runners' and 'env_steps_per_s'")
    n = int(scalar("envs_per_runner", 8))
    t = int(scalar("train_batch_size", 2048))
    cores = int(scalar("cores", 2))
    q = scalar("query_rate", 0.0)
    base = SystemCosts(env_step_s=0.0, policy_infer_s=0.0, learn_s_per_sample=0.0, teacher_a_s=0.0,
                       teacher_b_s=0.0, query_rate=q, envs_per_runner=n, cores_per_node=cores,
                       train_batch_size=t, max_batch_size=int(scalar("max_batch_size", 32)),
                       max_wait_s=scalar("max_wait_s", 0.005))

    bs, ts = _col(rows, "mean_batch_size"), _col(rows, "teacher_batch_s")
    a = b = 0.0
    if bs is not None and ts is not None and np.any(bs > 0):
        a, b = _affine_fit(bs[bs > 0], ts[bs > 0])
    base = replace(base, teacher_a_s=a, teacher_b_s=b)

    # What a runner waited for advice per vector step, measured; subtracted so c is pure compute.
    p = 1.0 - (1.0 - q) ** n
    lat = _col(rows, "advice_latency_p50_s")
    wait = np.zeros_like(k) if lat is None else p * np.minimum(np.nan_to_num(lat, posinf=1e9), base.advice_timeout_s)

    sample_s, learn_s = _col(rows, "sample_s"), _col(rows, "learn_s")
    if sample_s is not None and learn_s is not None:
        learn = float(np.sum(learn_s) / (t * len(rows)))
        vec_step = sample_s * k * n / t
    else:
        slope_a, slope_b = _affine_fit(1.0 / k, 1.0 / x)  # 1/X = learn + (vec_step / N) / K
        learn, vec_step = slope_a, np.full_like(k, slope_b * n)
    # The model's wall time per vector step is max(c + wait, K * c / cores) (own cycle, or the runners'
    # share of the cores); both grow with c, so c is the smaller of the two inversions.
    compute = np.minimum(vec_step - wait, vec_step * cores / k)
    c = float(max(np.mean(compute), 1e-12))

    infer = _col(rows, "policy_infer_s")
    step = _col(rows, "env_step_s")
    if step is not None:
        e = float(np.mean(step))
        i = float(np.mean(infer)) if infer is not None else max(0.0, c - n * e)
    else:
        i = float(np.mean(infer)) if infer is not None else 0.0
        e = max(c - i, 0.0) / n

    rpc = 0.0
    lam = _col(rows, "teacher_requests_per_s")
    if lat is not None and lam is not None and q > 0:
        g = _col(rows, "teacher_gpus")
        reps = np.ones_like(k) if g is None else np.asarray([_replicas(base, int(v)) for v in g])
        model = [_replica_state(base, lr)[2] for lr in lam / reps if lr < _capacity(base)]
        if model and len(model) == len(lat) and np.all(np.isfinite(lat)):
            rpc = max(0.0, float(np.median(lat - np.asarray(model))))

    fitted = replace(base, env_step_s=e, policy_infer_s=i, learn_s_per_sample=learn, rpc_s=rpc)
    return replace(fitted, **overrides)


def check_against(measured_rows: Sequence[Mapping[str, Any]], costs: SystemCosts) -> list[Check]:
    """Measured vs predicted env steps/s at every measured (runners, teacher_gpus) point."""
    out = []
    for r in measured_rows:
        k, g = int(float(r["runners"])), int(float(r.get("teacher_gpus") or 0))
        meas = float(r["env_steps_per_s"])
        pred = predict(costs, k, g).env_steps_per_s
        out.append(Check((k, g), meas, pred, (pred - meas) / meas if meas else math.inf))
    return out


def write_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, costs: SystemCosts | None = None,
               max_runners: int | None = None) -> Path:
    """Measured points and predicted curves (env steps/s and advice latency vs runners) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on cluster nodes or CI
    import matplotlib.pyplot as plt

    costs = costs or fit_costs_from_measurements(rows)
    ks_meas = [int(float(r["runners"])) for r in rows]
    top = max_runners or max(8, 2 * costs.cores_per_node, 4 * max(ks_meas))
    ks = list(range(1, top + 1))
    gpus = sorted({int(float(r.get("teacher_gpus") or 0)) for r in rows})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for g in gpus:
        preds = [predict(costs, k, g) for k in ks]
        line = ax1.plot(ks, [p.env_steps_per_s for p in preds], label=f"predicted, {g} teacher GPU")[0]
        ax1.plot(ks, [k * preds[0].env_steps_per_s for k in ks], ls=":", color=line.get_color(), alpha=0.5)
        pts = [(int(float(r["runners"])), float(r["env_steps_per_s"])) for r in rows
               if int(float(r.get("teacher_gpus") or 0)) == g]
        ax1.plot([k for k, _ in pts], [v for _, v in pts], "o", color=line.get_color(),
                 label=f"measured, {g} teacher GPU")
        lat = [p.advice_latency_p50_s * 1e3 if math.isfinite(p.advice_latency_p50_s) else np.nan for p in preds]
        ax2.plot(ks, lat, color=line.get_color(), label=f"{g} teacher GPU")
    ax1.set(xlabel="env runners", ylabel="env steps / s", title="throughput (dotted: linear)")
    ax2.set(xlabel="env runners", ylabel="advice latency p50 (ms)", title="predicted advice latency")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
