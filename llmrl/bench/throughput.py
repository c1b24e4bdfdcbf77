"""``llmrl bench throughput CONFIG [key=value ...]``: the ladder of costs, in one run on one machine.

Rungs, each a rate measured on its own (env steps/s unless noted):

  raw_env         the underlying MiniGrid / Crafter env, random actions, one core, no llmrl code
  task_adapter    the llmrl task (student observation, knowledge map / sub-goal state), random actions
  guided_wrapper  ``TeacherGuidedEnv`` as the env runners build it: the real teacher service (a Ray actor) behind
                  the per-process client and its cache, and the feedback actor, in the driver; random actions
  rllib_sampling  the training env runners' ``sample()`` (RLlib's env runner, connectors, module forward)
  learner         one PPO update on a fixed train batch, in samples/s (learner connectors, GAE, epochs, Adam)
  evaluation      training env steps per second of evaluation: ``train_batch_size * eval_every`` divided by the
                  seconds of one eval round (so it adds up with the other phases); eval env steps/s is recorded too
  end_to_end      whole ``algo.train()`` iterations, evaluation included at the configured cadence

Each rung is printed with its ratio to the rung above. The ceiling is cores x raw_env; the end-to-end ratio to
it is the headline. ``predicted_end_to_end`` = 1 / (1/sampling + 1/learner + 1/evaluation) is what a
synchronous sample-then-learn-then-evaluate loop would give from the rungs alone; a measured end to end above it
means phases overlap, below it means overhead between phases. ``--compare-off`` measures the training rungs
again with ``teacher.backend=off`` in the same run, for the guided/off ratios; ``--variant 'KEY=VALUE ...'``
measures the training rungs again with extra overrides (e.g. ``resources.learner_torch_threads=2``), as ratios to
the base, so that a speed-up is judged within one run. Both measure the training rungs named in ``--rungs``, no
others, exactly as the base did.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.config import Config, ConfigError, load_config
from llmrl.envs.registry import family_spec

RUNGS = ("raw_env", "task_adapter", "guided_wrapper", "rllib_sampling", "learner", "evaluation", "end_to_end")
OFF = "teacher.backend=off"
TRAINING_RUNGS = ("rllib_sampling", "learner", "evaluation", "end_to_end")
UNITS = {"learner": "samples/s", "evaluation": "train env steps / eval s"}


# -- arithmetic (pure, unit-tested) ---------------------------------------------------------------------------


def ladder(rates: dict[str, float], cores: int) -> dict[str, Any]:
    """Ratios of a measured ladder: each rung to the one above, end to end to the ceiling, and the synchronous
    prediction from the three training phases. Missing rungs are skipped (the next rung compares to the last
    one present)."""
    rows = []
    above: float | None = None
    for name in RUNGS:
        if name not in rates:
            continue
        rate = float(rates[name])
        rows.append({"rung": name, "rate": rate, "unit": UNITS.get(name, "env steps/s"),
                     "ratio_to_above": rate / above if above else None})
        above = rate
    ceiling = cores * float(rates["raw_env"]) if "raw_env" in rates else None
    phases = [rates.get(k) for k in ("rllib_sampling", "learner", "evaluation")]
    predicted = 1.0 / sum(1.0 / p for p in phases) if all(p and p > 0 for p in phases) else None
    e2e = rates.get("end_to_end")
    return {
        "rows": rows,
        "cores": cores,
        "ceiling": ceiling,
        "end_to_end_to_ceiling": e2e / ceiling if e2e is not None and ceiling else None,
        "predicted_end_to_end": predicted,
        "end_to_end_to_predicted": e2e / predicted if e2e is not None and predicted else None,
    }


def over(numerator: dict[str, dict[str, float]], denominator: dict[str, dict[str, float]]) -> dict[str, float]:
    """Rate ratios of the rungs two measurements share."""
    return {k: numerator[k]["rate"] / denominator[k]["rate"] for k in numerator
            if k in denominator and denominator[k]["rate"] > 0}


# -- environment rungs (no Ray needed for the first two) --------------------------------------------------------


def _step_for(reset: Callable[[], Any], step: Callable[[int], bool], num_actions: int, seconds: float,
              seed: int) -> tuple[int, float]:
    """Random actions for about ``seconds``; ``step`` returns True when the episode ended. (steps, seconds)."""
    rng = np.random.default_rng(seed)
    reset()
    steps = 0
    t0 = time.perf_counter()
    while True:
        for a in rng.integers(num_actions, size=64):
            steps += 1
            if step(int(a)):
                reset()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return steps, elapsed


def time_gym_env(env: Any, seconds: float, seed: int) -> tuple[int, float]:
    def step(a: int) -> bool:
        _, _, terminated, truncated, _ = env.step(a)
        return terminated or truncated

    return _step_for(lambda: env.reset(seed=seed), step, int(env.action_space.n), seconds, seed)


def env_rungs(cfg: Config, seconds: float, namespace: str | None) -> dict[str, tuple[int, float]]:
    """raw_env, task_adapter and guided_wrapper, in this process (the wrapper needs the graph's Ray actors)."""
    from llmrl.envs.registry import make_task
    from llmrl.rl.env import build_guided_env

    raw = family_spec(cfg.env.name).raw_stepper
    if raw is None:
        raise ConfigError(f"env.name: {cfg.env.name}'s family has no raw_stepper (FamilySpec): no ceiling to measure")
    out = {"raw_env": _step_for(*raw(cfg.env, cfg.run.seed), seconds, cfg.run.seed)}
    task = make_task(cfg.env, cfg.run.seed)
    out["task_adapter"] = time_gym_env(task, seconds, cfg.run.seed)
    guided = build_guided_env({"llmrl": cfg.to_dict(), "namespace": namespace, "evaluation": False})
    out["guided_wrapper"] = time_gym_env(guided, seconds, cfg.run.seed)
    if guided.feedback is not None:
        guided.feedback.flush()
    return out


# -- one run --------------------------------------------------------------------------------------------------


def measure(cfg: Config, budget: argparse.Namespace, rungs: tuple[str, ...] = RUNGS) -> dict[str, dict[str, float]]:
    """Measure the requested rungs on one training graph; returns {rung: {"units", "seconds", "rate", ...}}."""
    from llmrl.rl import ladder as rl
    from llmrl.training.graph import build_graph, init_ray

    started = init_ray(cfg)
    graph = build_graph(cfg)
    measured: dict[str, tuple[int, float]] = {}
    extra: dict[str, dict[str, float]] = {}
    try:
        if {"raw_env", "task_adapter", "guided_wrapper"} & set(rungs):
            measured.update(env_rungs(cfg, budget.env_seconds, graph.namespace))
        if "rllib_sampling" in rungs:
            measured["rllib_sampling"] = rl.time_sampling(graph.algo, budget.sample_steps)
        if "learner" in rungs:
            measured["learner"] = rl.time_learner(graph.algo, budget.learner_updates)
        if "evaluation" in rungs:
            steps, seconds, rounds = rl.time_evaluation(graph.algo, budget.eval_rounds)
            round_s = seconds / rounds
            measured["evaluation"] = (cfg.ppo.train_batch_size * cfg.run.eval_every * rounds, seconds)
            extra["evaluation"] = {"eval_env_steps": steps, "eval_env_steps_per_s": steps / seconds if seconds else 0.0,
                                   "seconds_per_round": round_s, "eval_every": cfg.run.eval_every}
        if "end_to_end" in rungs:
            measured["end_to_end"] = rl.time_train(graph.algo, budget.train_iters)
    finally:
        graph.stop()
        if started:
            import ray

            ray.shutdown()
        from llmrl.rl.callbacks import forget_process_counters

        forget_process_counters()
    return {name: {"units": units, "seconds": seconds, "rate": units / seconds if seconds > 0 else 0.0,
                   **extra.get(name, {})}
            for name, (units, seconds) in measured.items() if name in rungs}


def write_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["ladder"]["rows"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh([r["rung"] for r in rows][::-1], [r["rate"] for r in rows][::-1], color="tab:blue")
    if report["ladder"]["ceiling"]:
        ax.axvline(report["ladder"]["ceiling"], color="red", linestyle="--",
                   label=f"ceiling {report['ladder']['cores']} x raw_env")
    if report["ladder"]["predicted_end_to_end"]:
        ax.axvline(report["ladder"]["predicted_end_to_end"], color="grey", linestyle=":", label="predicted end to end")
    ax.set_xscale("log")
    ax.set_xlabel("rate (env steps/s; learner: samples/s; evaluation: train steps per eval second)")
    ax.set_title(f"{report['env']} ({report['teacher_backend']}), {report['date']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(report: dict[str, Any]) -> str:
    rows = [[r["rung"], r["unit"], r["rate"], r["ratio_to_above"]] for r in report["ladder"]["rows"]]
    lad = report["ladder"]
    rows.append(["ceiling", f"{lad['cores']} cores x raw_env", lad["ceiling"], None])
    rows.append(["end_to_end / ceiling", "", lad["end_to_end_to_ceiling"], None])
    rows.append(["predicted end to end", "1/(1/sampling+1/learner+1/eval)", lad["predicted_end_to_end"], None])
    for name, ratio in report.get("guided_over_off", {}).items():
        rows.append([f"{name}: {report['teacher_backend']} / off", "", ratio, None])
    for variant in report.get("variants", []):
        if variant["overrides"] == OFF:
            continue
        for name, ratio in variant["over_base"].items():
            rows.append([f"{name}: [{variant['overrides']}] / base", "", ratio, None])
    return markdown_table(["rung", "unit", "rate", "ratio to above"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench throughput")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. resources.learner_torch_threads=2")
    p.add_argument("--env-seconds", type=float, default=5.0, help="seconds per env rung")
    p.add_argument("--sample-steps", type=int, default=8192, help="env steps for the sampling rung")
    p.add_argument("--learner-updates", type=int, default=3, help="timed PPO updates on the fixed batch")
    p.add_argument("--eval-rounds", type=int, default=2, help="timed evaluation rounds")
    p.add_argument("--train-iters", type=int, default=4, help="timed algo.train() iterations (after a warm-up)")
    p.add_argument("--rungs", nargs="+", choices=RUNGS, default=list(RUNGS), help="measure only these rungs")
    p.add_argument("--compare-off", action="store_true", help="also the training rungs with teacher.backend=off")
    p.add_argument("--variant", action="append", default=[], metavar="'KEY=VALUE ...'",
                   help="also measure the training rungs (those in --rungs) with these extra overrides, as ratios to "
                        "the base (repeatable)")
    p.add_argument("--out", default="runs/bench-throughput")
    args = p.parse_args(argv)
    if (args.variant or args.compare_off) and not set(TRAINING_RUNGS) & set(args.rungs):
        p.error(f"--variant and --compare-off compare training rungs: add one of {', '.join(TRAINING_RUNGS)} "
                "to --rungs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = [*args.overrides, f"run.out_dir={out}"]
    cfg = load_config(args.config, overrides)
    load_before = load_average()
    from llmrl.training.graph import init_ray

    # One Ray for every measurement (a Ray start-up can time out on a loaded machine); it is sized by the base
    # config's resources.
    started = init_ray(cfg)
    try:
        command = "llmrl bench throughput " + shlex.join(sys.argv[3:] if argv is None else argv)
        report = {"command": command, **_measure_all(args, cfg, overrides, load_before)}
    finally:
        if started:
            import ray

            ray.shutdown()
    stem = f"throughput-{cfg.env.name}-{cfg.teacher.backend}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    write_chart(report, out / f"{stem}.png")
    table = _table(report)
    (out / f"{stem}.md").write_text(table + "\n")
    print(table)
    print(f"load average before {load_before}, after {report['load_average_after']}; wrote {out / stem}.json/.png")
    return 0


def _measure_all(args: argparse.Namespace, cfg: Config, overrides: list[str], load_before: str) -> dict[str, Any]:
    results = measure(cfg, args, tuple(args.rungs))
    cores = len(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "date": today(), "time_utc": time.strftime("%H:%M:%S", time.gmtime()), "machine": machine(),
        "load_average_before": load_before, "config": args.config, "overrides": args.overrides,
        "env": cfg.env.name, "teacher_backend": cfg.teacher.backend,
        "guided_wrapper_teacher": "real teacher service (Ray actor) via the per-process client; feedback actor on"
        if cfg.teacher.backend != "off" else "teacher off (the wrapper does no text work)",
        "budget": {k: getattr(args, k) for k in ("env_seconds", "sample_steps", "learner_updates", "eval_rounds",
                                                 "train_iters")},
        "rungs": results,
        "ladder": ladder({k: v["rate"] for k, v in results.items()}, cores),
    }
    variants = [*args.variant, *([OFF] if args.compare_off and cfg.teacher.backend != "off" else [])]
    # The same training rungs as the base, in the same order on a fresh graph: end_to_end measured after the other
    # rungs starts from a policy those rungs' updates have already moved, so a variant measuring more than its base
    # would not be compared like for like.
    variant_rungs = tuple(r for r in TRAINING_RUNGS if r in args.rungs)
    report["variants"] = []
    for i, variant in enumerate(variants):
        # Fresh actor names: a killed actor's name may not be free yet in the same Ray.
        names = [f"teacher.actor_name=llmrl_teacher_v{i}", f"feedback.actor_name=llmrl_feedback_v{i}"]
        measured = measure(load_config(args.config, [*overrides, *names, *variant.split()]), args, variant_rungs)
        report["variants"].append({"overrides": variant, "rungs": measured, "over_base": over(measured, results)})
        if variant == OFF:
            report["guided_over_off"] = over(results, measured)
    report["load_average_after"] = load_average()
    return report
