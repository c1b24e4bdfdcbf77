"""``llmrl bench scaling``: measured throughput for 1..K env runners, the scaling model fitted to it, predictions.

    llmrl bench scaling [--config configs/minigrid/simple_doorkey.yaml] [--runners 1,2] [--steps N] [--out DIR]

For each runner count K a short real training run (``training.loop.train``, scripted teacher, evaluation and
checkpoints off) runs in a Ray started here with K + 1 CPUs, while a thread polls the teacher actor's counters.
Each run gives one row in the column schema of ``bench.scaling_model`` (``scaling.csv``): end-to-end env
steps/s, RLlib's sampling and learning time per iteration, teacher requests per env step and per second,
mean teacher batch size and batch time, and the mean advice latency a runner waited. The first iteration is
left out (start-up, cold caches). ``scaling_model.fit_costs_from_measurements`` turns the rows into costs, the
model is checked against the measured points (relative error), and predictions for K runners x G teacher GPUs
are written with ``scaling_model.write_plot``'s plot.

Predictions give every runner its own core (``cores_per_node = K``) and keep the measured learner (one CPU
learner in the driver, synchronous PPO). Two teacher scenarios:

* ``measured``: the fitted query rate and teacher costs of the measured runs (scripted teacher, MiniGrid);
* ``llm``: an LLM teacher asked about a new state every ``--llm-query-every`` env steps (AdaRefiner's
  re-ask period; no cache hits), on G GPUs with the ASSUMED per-replica costs of ``GPU_TEACHER``, or for
  G = 0 on CPU with costs fitted from ``llmrl bench teacher``'s hf rows (``--teacher-csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from llmrl.bench import scaling_model as sm
from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.bench.teacher import int_list

CSV_COLUMNS = ("runners", "teacher_gpus", "envs_per_runner", "train_batch_size", "cores", "env_steps_per_s",
               "efficiency", "sample_s", "learn_s", "env_step_s", "query_rate", "teacher_requests_per_s",
               "mean_batch_size", "teacher_batch_s", "advice_latency_p50_s", "max_batch_size", "max_wait_s",
               "load_before", "load_after")


@dataclass(frozen=True)
class GPUTeacherAssumption:
    """Per-replica service time a + b * B of an LLM teacher on one GPU. ASSUMED, not measured here.

    Llama-3.1-8B (BF16) under vLLM on one H100 with prefix caching, answering LLM4Teach-style: 10 sampled
    plans of ~16 tokens per new state (160 output tokens per query). Published third-party figures: ~12,500
    output tokens/s saturated on one H100 (vLLM, Llama 3.1 8B), and ~75 tokens/s for a lone request on an
    A100 (~13 ms per decode step; an H100 ~7 ms). So b = 160 / 12,500 s per query at full batch, and
    a = 16 decode steps x 7 ms for a batch however small.
    """

    a_s: float = 16 * 0.007
    b_s: float = 160 / 12_500
    max_batch_size: int = 256  # vLLM's continuous batching keeps far more requests in flight than the CPU path
    source: str = ("assumed: Llama-3.1-8B BF16 on vLLM, 1x H100 per replica, 10 samples x 16 tokens per query; "
                   "~12,500 output tok/s saturated, ~7 ms per decode step")


GPU_TEACHER = GPUTeacherAssumption()


# -- pure helpers (tested without Ray) ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="llmrl bench scaling", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--runners", type=int_list, default=[1, 2], help="env runner counts to measure")
    p.add_argument("--steps", type=int, default=16384, help="env steps per run")
    p.add_argument("--out", default="runs/bench-scaling")
    p.add_argument("--predict-runners", type=int_list, default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--predict-gpus", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2, 4, 8])
    p.add_argument("--llm-query-every", type=int, default=100, help="llm scenario: env steps between new queries")
    p.add_argument("--teacher-csv", default="runs/bench-teacher/teacher.csv",
                   help="llmrl bench teacher output, for the CPU LM teacher's costs (G = 0 in the llm scenario)")
    p.add_argument("overrides", nargs="*", help="extra key=value config overrides")
    args = p.parse_args(argv)
    if args.steps <= 0 or args.llm_query_every <= 0 or any(g < 0 for g in args.predict_gpus):
        p.error("--steps and --llm-query-every must be > 0, --predict-gpus >= 0")
    return args


def run_overrides(runners: int, steps: int, out_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """Config overrides of one measured run: K runners, a fixed budget, no evaluation or periodic checkpoints."""
    return [
        *extra, "teacher.backend=scripted", f"resources.num_env_runners={runners}",
        f"resources.num_cpus={runners + 1}", f"run.max_env_steps={steps}", "run.eval_every=1000000",
        "run.checkpoint_every=1000000", f"run.out_dir={out_dir}", f"run.name=k{runners}",
    ]


# RLlib 2.60 logs its phase timers (``sample_s``/``learn_s`` in the metrics rows) as an exponential moving average
# with this coefficient, seeded with the first value: a row holds the EMA, not that iteration's time.
RLLIB_TIMER_EMA = 0.01


def undo_ema(values: Sequence[float], coeff: float = RLLIB_TIMER_EMA) -> list[float]:
    """Per-iteration values from their running EMA: x_t = (ema_t - (1 - c) ema_{t-1}) / c, x_1 = ema_1."""
    out, prev = [], None
    for ema in values:
        out.append(ema if prev is None else (ema - (1.0 - coeff) * prev) / coeff)
        prev = ema
    return out


def measured_row(runners: int, metrics: Sequence[dict[str, Any]], teacher: dict[str, float], cfg: Any,
                 env_step_s: float, cores: int, skip: int = 1) -> dict[str, Any]:
    """One row of the scaling CSV from a run's metrics rows and its teacher's final counters.

    ``metrics`` are ``metrics.jsonl`` rows (cumulative teacher counters); the first ``skip`` are left out.
    """
    if len(metrics) <= skip:
        raise ValueError(f"need more than {skip} iterations, got {len(metrics)}")
    first, rows = metrics[skip - 1] if skip else None, metrics[skip:]
    sample_s = undo_ema([r["sample_s"] for r in metrics])[skip:]
    learn_s = undo_ema([r["learn_s"] for r in metrics])[skip:]
    steps = sum(r["iter_env_steps"] for r in rows)
    wall = sum(r["iter_s"] for r in rows)

    def delta(key: str) -> float:
        return rows[-1][key] - (first[key] if first is not None else 0.0)

    service = delta("teacher_service_requests")
    batches = teacher.get("batches", 0.0)
    return {
        "runners": runners, "teacher_gpus": 0, "envs_per_runner": cfg.resources.num_envs_per_env_runner,
        "train_batch_size": cfg.ppo.train_batch_size, "cores": cores, "env_steps_per_s": steps / wall,
        "efficiency": math.nan,
        "sample_s": sum(sample_s) / len(rows),
        "learn_s": sum(learn_s) / len(rows),
        "env_step_s": env_step_s,
        "query_rate": service / steps,
        "teacher_requests_per_s": service / wall,
        "mean_batch_size": teacher.get("batched_prompts", 0.0) / batches if batches else 0.0,
        "teacher_batch_s": teacher.get("latency_s_sum", 0.0) / batches if batches else 0.0,
        # The client waits right after sending, so its wait per remote call is the advice latency (a mean).
        "advice_latency_p50_s": delta("teacher_wait_s") / service if service else 0.0,
        "max_batch_size": cfg.teacher.max_batch_size, "max_wait_s": cfg.teacher.max_wait_ms / 1000.0,
    }


def add_efficiency(rows: list[dict[str, Any]]) -> None:
    """efficiency = env steps/s over (K x the 1-runner rate); nan without a 1-runner row."""
    base = next((r["env_steps_per_s"] for r in rows if r["runners"] == 1), None)
    for r in rows:
        r["efficiency"] = r["env_steps_per_s"] / (r["runners"] * base) if base else math.nan


def cpu_teacher_costs(teacher_rows: Sequence[dict[str, Any]]) -> tuple[float, float] | None:
    """(a, b) of the CPU LM teacher's service time a + b * B, from ``llmrl bench teacher``'s hf rows, or None.

    b = 1 / the best requests/s over all points (the marginal time per query at full load) and a = the
    one-at-a-time time per request minus b, so S(1) and the capacity both match the measurement. Both include
    the Ray call, as a runner's requests do.
    """
    hf = [r for r in teacher_rows if r.get("backend") == "hf" and r.get("states") == "distinct"
          and int(float(r.get("per_call") or 1)) == 1]
    base = [r for r in hf if int(float(r["max_batch_size"])) == 1 and int(float(r["concurrency"])) == 1]
    if not base or len(hf) < 2:
        return None
    b = 1.0 / max(float(r["requests_per_s"]) for r in hf)
    return max(0.0, 1.0 / float(base[0]["requests_per_s"]) - b), b


def scenario_costs(fitted: sm.SystemCosts, scenario: str, gpus: int, runners: int, llm_query_every: int,
                   cpu_teacher: tuple[float, float] | None) -> sm.SystemCosts | None:
    """The costs a prediction uses; None when the scenario has no teacher costs for ``gpus``."""
    costs = replace(fitted, cores_per_node=runners)
    if scenario == "measured":
        return costs
    costs = replace(costs, query_rate=1.0 / llm_query_every)
    if gpus > 0:
        return replace(costs, teacher_a_s=GPU_TEACHER.a_s, teacher_b_s=GPU_TEACHER.b_s, gpus_per_replica=1,
                       max_batch_size=GPU_TEACHER.max_batch_size)
    if cpu_teacher is None:
        return None
    return replace(costs, teacher_a_s=cpu_teacher[0], teacher_b_s=cpu_teacher[1])


def prediction_table(fitted: sm.SystemCosts, scenario: str, runners: Sequence[int], gpus: Sequence[int],
                     llm_query_every: int, cpu_teacher: tuple[float, float] | None,
                     learner: bool = True) -> tuple[str, list[dict]]:
    """Markdown (env steps/s, bottleneck per cell) and flat rows for the CSV.

    ``learner=False`` drops the learner's cost: the env runners' and teacher's own limit, which is what an
    asynchronous or much faster learner would let through.
    """
    flat, table = [], []
    for k in runners:
        cells: list[Any] = [k]
        for g in gpus:
            costs = scenario_costs(fitted, scenario, g, k, llm_query_every, cpu_teacher)
            if costs is None:
                cells.append(None)
                continue
            if not learner:
                costs = replace(costs, learn_s_per_sample=0.0)
            pred = sm.predict(costs, k, g)
            flat.append({"scenario": scenario if learner else f"{scenario}, no learner", **asdict(pred)})
            cells.append(f"{pred.env_steps_per_s:,.0f} ({pred.bottleneck}, eff {pred.efficiency:.2f})")
        table.append(cells)
    return markdown_table(["runners", *[f"G={g}" for g in gpus]], table), flat


def check_table(checks: Sequence[sm.Check]) -> str:
    return markdown_table(["runners", "measured env steps/s", "model env steps/s", "relative error"],
                          [[c.point[0], c.measured, c.predicted, f"{100 * c.rel_error:+.1f}%"] for c in checks])


def plot_predictions(flat: Sequence[dict[str, Any]], path: Path) -> Path:
    """Predicted env steps/s against runners, end to end (left) and without the learner (right); log-log.

    Colour = teacher GPUs, line style = scenario (dashed: measured, solid: llm).
    """
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    gpus = sorted({p["teacher_gpus"] for p in flat})
    colour = {g: plt.cm.viridis(i / max(1, len(gpus) - 1)) for i, g in enumerate(gpus)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, suffix, title in ((axes[0], "", "end to end (measured learner)"),
                              (axes[1], ", no learner", "runners + teacher only")):
        for scenario in ("measured", "llm"):
            for g in gpus:
                pts = [(p["runners"], p["env_steps_per_s"]) for p in flat
                       if p["scenario"] == scenario + suffix and p["teacher_gpus"] == g]
                if pts:
                    ax.plot([k for k, _ in pts], [v for _, v in pts], color=colour[g], marker="o", ms=3,
                            ls="--" if scenario == "measured" else "-", label=f"{scenario}, G={g}")
        ax.set(xscale="log", yscale="log", xlabel="env runners (one core each)", title=title)
    axes[0].set_ylabel("predicted env steps / s")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("scaling model predictions (GPU teacher costs are assumptions)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_csv(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# -- measurement ------------------------------------------------------------------------------------------


def env_step_seconds(cfg: Any, steps: int = 3000) -> float:
    """Mean seconds of one raw ``env.step`` (random actions) of the configured task on this process's core."""
    import numpy as np

    from llmrl.envs.registry import make_task

    env = make_task(cfg.env, seed=cfg.run.seed)
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=cfg.run.seed)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
            if term or trunc:
                env.reset()
        return (time.perf_counter() - t0) / steps
    finally:
        env.close()


class TeacherPoller:
    """Polls the teacher actor's counters while a run trains (the run kills the actor when it ends)."""

    def __init__(self, actor_name: str, namespace: str, every_s: float = 1.0):
        self.latest: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(actor_name, namespace, every_s), daemon=True)

    def __enter__(self) -> TeacherPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self, name: str, namespace: str, every_s: float) -> None:
        import ray

        handle = None
        while not self._stop.wait(every_s):
            try:
                handle = handle or ray.get_actor(name, namespace=namespace)
                stats = ray.get(handle.stats.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - not started yet, or already stopped: keep the last poll
                handle = None
                continue
            self.latest = {k: float(getattr(stats, k)) for k in ("requests", "batches", "batched_prompts",
                                                                   "latency_s_sum")}


def measure(config: str, runners: int, steps: int, out_dir: Path, extra: Sequence[str]) -> dict[str, Any]:
    import ray

    from llmrl.config import load_config
    from llmrl.training.graph import NAMESPACE
    from llmrl.training.loop import train

    cfg = load_config(config, run_overrides(runners, steps, out_dir, extra))
    step_s = env_step_seconds(cfg)
    load_before = load_average()
    # Started here (not by train) so the poller can read the teacher's counters until the run ends.
    ray.init(num_cpus=cfg.resources.num_cpus, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False,
             object_store_memory=cfg.resources.object_store_mb * 1024 * 1024)
    try:
        with TeacherPoller(cfg.teacher.actor_name, NAMESPACE) as poller:
            summary = train(cfg, stream=None)
    finally:
        ray.shutdown()
    metrics = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    row = measured_row(runners, metrics, poller.latest, cfg, step_s, cores=os.cpu_count() or 1)
    row.update(load_before=load_before, load_after=load_average())
    return row


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.runners:
            rows.append(measure(args.config, k, args.steps, Path(tmp), args.overrides))
            print(f"  {k} runner(s): {rows[-1]['env_steps_per_s']:.0f} env steps/s", flush=True)
    add_efficiency(rows)
    write_csv(rows, out / "scaling.csv", CSV_COLUMNS)
    fitted = sm.fit_costs_from_measurements(rows)
    checks = sm.check_against(rows, fitted)
    sm.write_plot(rows, out / "scaling.png", fitted, max_runners=max(args.predict_runners))
    teacher_csv = Path(args.teacher_csv)
    cpu_teacher = cpu_teacher_costs(sm.load_rows(teacher_csv)) if teacher_csv.is_file() else None
    measured_cols = ["runners", "env_steps_per_s", "efficiency", "sample_s", "learn_s", "query_rate",
                     "teacher_requests_per_s", "mean_batch_size", "teacher_batch_s", "advice_latency_p50_s",
                     "load_before", "load_after"]
    parts = ["## Measured", markdown_table(measured_cols, [[r[c] for c in measured_cols] for r in rows]),
             "## Model check", check_table(checks), "## Fitted costs", json.dumps(asdict(fitted), indent=2)]
    flat: list[dict] = []
    for scenario in ("measured", "llm"):
        for learner in (True, False):
            table, preds = prediction_table(fitted, scenario, args.predict_runners, args.predict_gpus,
                                            args.llm_query_every, cpu_teacher, learner)
            flat += preds
            what = "end to end" if learner else "without the learner's cost (runners + teacher only)"
            parts += [f"## Predicted env steps/s, scenario {scenario}, {what}", table]
    write_csv(flat, out / "predictions.csv", ["scenario", *sm.Prediction.__dataclass_fields__])
    plot_predictions(flat, out / "predictions.png")
    info = {"date": today(), "machine": machine(), "config": args.config, "steps": args.steps,
            "gpu_teacher_assumption": asdict(GPU_TEACHER), "cpu_teacher_a_b_s": cpu_teacher,
            "llm_query_every": args.llm_query_every}
    parts += ["## Run info", json.dumps(info, indent=2)]
    report = "\n\n".join(parts) + "\n"
    (out / "scaling.md").write_text(report)
    print(report)
    return 0
