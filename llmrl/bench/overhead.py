"""``llmrl bench overhead``: env steps/s with a teacher in the loop vs ``teacher.backend=off``.

The guided arm uses the scripted teacher, or with ``--guided config`` the config's own teacher (an LM). Both arms
build the same training graph from the same config in one invocation, and alternate round by round so
background load hits both alike. Two rates, both timed here with a wall clock (RLlib's own phase timers are
moving averages, not per-call times):

- sampling: the env runners' ``sample()`` alone (real env runners, connectors, guided env and teacher), which
  is where the teacher's cost lands, so it is the strict measure;
- end to end: whole ``algo.train()`` iterations (sampling + PPO update), what a user sees.

With ``--train-steps N`` each arm instead trains a whole run of N env steps per seed in ``--seeds`` (arms
alternating per seed), so the same runs give both rates and the env steps to the success threshold: a teacher
that is only fast because it stopped teaching cannot pass. Rates then come from the runs' own records: end to
end = env steps / training wall time (model loading excluded), sampling = env steps / RLlib's sampling time
(its moving average undone). It prints the ratios guided / off and checks them against ``--target-ratio`` and
the guided arm's mean steps to success against ``--max-steps-to-success``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llmrl.bench.runs import REUSE_HELP, load_average, machine, markdown_table, today, train_or_reuse
from llmrl.config import load_config


def measure(config: str, overrides: list[str], sample_steps: int, train_iters: int) -> tuple[float, float]:
    import ray

    from llmrl.rl.algo import env_steps_of
    from llmrl.training.graph import build_graph, init_ray

    cfg = load_config(config, overrides)
    started = init_ray(cfg)
    graph = build_graph(cfg)
    try:
        group = graph.algo.env_runner_group
        per_runner = max(1, sample_steps // max(1, cfg.resources.num_env_runners))

        def sample(steps: int) -> int:
            episodes = group.foreach_env_runner(
                lambda runner: sum(len(e) for e in runner.sample(num_timesteps=steps, random_actions=False)),
                local_env_runner=cfg.resources.num_env_runners == 0,
            )
            return int(sum(episodes))

        sample(min(per_runner, 1024))  # warm-up: env construction, first teacher queries, torch kernels
        t0 = time.perf_counter()
        sampled = sample(per_runner)
        sampling_rate = sampled / (time.perf_counter() - t0)
        graph.algo.train()  # warm-up iteration
        before = env_steps_of(graph.algo.train()) if train_iters > 1 else 0
        t0 = time.perf_counter()
        after = before
        for _ in range(max(1, train_iters - 1)):
            after = env_steps_of(graph.algo.train())
        end_to_end = (after - before) / (time.perf_counter() - t0)
        return sampling_rate, end_to_end
    finally:
        graph.stop()
        if started:
            ray.shutdown()


def run_record(summary: dict, rows: list[dict]) -> dict:
    """What one training run says about the teacher's cost and its teaching."""
    from llmrl.bench.scaling import undo_ema

    sample_s = sum(undo_ema([r["sample_s"] for r in rows]))
    return {
        "env_steps": summary["env_steps"], "wall_s": summary["wall_s"],
        "end_to_end": summary["env_steps_per_s"],
        "sampling": summary["env_steps"] / sample_s if sample_s > 0 else 0.0,
        "steps_to_success": summary["steps_to_success"], "final_eval_success": summary["eval_success"],
        "teacher_wait_s": summary.get("teacher_wait_s", 0.0), "llm_calls": summary["teacher_llm_calls"],
        "stale_step_frac": summary.get("teacher_stale_step_frac", 0.0),
        "rescored": summary.get("teacher_rescored", 0.0),
        "lm_busy_frac": summary.get("teacher_backend_busy_s", 0.0) / summary["wall_s"] if summary["wall_s"] else 0.0,
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def judge_training(runs: dict[str, list[dict]], guided: str, target_ratio: float, max_steps: int) -> dict:
    """Ratios guided / off of the mean rates, and whether every guided seed reached the success threshold with
    a mean no later than ``max_steps``."""
    ratio = {k: mean([r[k] for r in runs[guided]]) / mean([r[k] for r in runs["off"]]) for k in ("sampling",
                                                                                             "end_to_end")}
    reached = [r["steps_to_success"] for r in runs[guided]]
    steps = mean(reached) if all(s is not None for s in reached) else None
    return {"ratio_sampling": ratio["sampling"], "ratio_end_to_end": ratio["end_to_end"],
            "guided_mean_steps_to_success": steps,
            "throughput_met": ratio["end_to_end"] >= target_ratio,
            "steps_to_success_met": steps is not None and steps <= max_steps}


def arm_overrides(args: argparse.Namespace, guided: str) -> dict[str, list[str]]:
    """The overrides of each arm: teacher off, and the guided arm's teacher (the config's own with --guided config)."""
    return {"off": ["teacher.backend=off"], guided: [] if args.guided == "config" else ["teacher.backend=scripted"]}


def train_arms(args: argparse.Namespace, out: Path, guided: str) -> int:
    backend = arm_overrides(args, guided)
    runs: dict[str, list[dict]] = {"off": [], guided: []}
    for seed in args.seeds:
        for arm in ("off", guided):
            summary, rows = train_or_reuse(args.config, [*args.overrides, *backend[arm], f"run.seed={seed}",
                                                         f"run.max_env_steps={args.train_steps}"], out,
                                           f"{arm}-s{seed}", args.reuse)
            runs[arm].append({"seed": seed, **run_record(summary, rows)})
    verdict = judge_training(runs, guided, args.target_ratio, args.max_steps_to_success)
    cols = ("seed", "end_to_end", "sampling", "steps_to_success", "final_eval_success", "teacher_wait_s",
            "llm_calls", "stale_step_frac", "rescored", "lm_busy_frac")
    table = markdown_table(["arm", "seed", "env steps/s, end to end", "env steps/s, sampling", "steps to success",
                            "final eval success", "teacher wait s", "LLM calls", "stale-step fraction", "re-scored",
                            "LM busy fraction"],
                           [[arm, *(r[c] for c in cols)] for arm, rs in runs.items() for r in rs])
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
              "overrides": args.overrides, "guided": guided, "seeds": args.seeds, "train_steps": args.train_steps,
              "runs": runs, **verdict, "target_ratio": args.target_ratio,
              "max_steps_to_success": args.max_steps_to_success}
    (out / "overhead_training.json").write_text(json.dumps(report, indent=2))
    (out / "overhead_training.md").write_text(table + "\n")
    print(table)
    for name in ("sampling", "end_to_end"):
        print(f"{name.replace('_', ' ')}: {guided}/off = {verdict['ratio_' + name]:.3f}")
    print(f"throughput: {guided}/off end to end >= {args.target_ratio}: {'met' if verdict['throughput_met'] else 'NOT met'}")
    print(f"steps to success: {guided} mean {verdict['guided_mean_steps_to_success']} <= {args.max_steps_to_success}: "
          f"{'met' if verdict['steps_to_success_met'] else 'NOT met'}")
    return 0


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench overhead")
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--guided", choices=("scripted", "config"), default="scripted",
                   help="teacher of the guided arm: the scripted planner, or the config's own teacher.backend")
    p.add_argument("--train-steps", type=int, default=0,
                   help="> 0: train whole runs of this many env steps per arm and seed instead of short timings")
    p.add_argument("--seeds", type=seed_list, default=[0], help="with --train-steps: run seeds, comma-separated")
    p.add_argument("--target-ratio", type=float, default=0.9)
    p.add_argument("--max-steps-to-success", type=int, default=26_600,
                   help="with --train-steps: the guided arm's mean env steps to the success threshold must not exceed")
    p.add_argument("--reuse", action="store_true",
                   help="with --train-steps: " + REUSE_HELP)
    p.add_argument("--sample-steps", type=int, default=16384, help="env steps sampled per arm and round")
    p.add_argument("--train-iters", type=int, default=4, help="train iterations per arm and round (first is warm-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="runs/bench-overhead")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    guided = load_config(args.config, args.overrides).teacher.backend if args.guided == "config" else "scripted"
    if guided == "off":
        p.error("--guided config needs a config whose teacher.backend is not off")
    if args.train_steps > 0:
        return train_arms(args, out, guided)
    common = [*args.overrides, "run.eval_every=100000", f"run.out_dir={out}"]
    arms = arm_overrides(args, guided)
    rates: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm, backend in arms.items():
            rates[arm].append(measure(args.config, [*common, *backend], args.sample_steps, args.train_iters))
    means = {b: [mean([r[i] for r in v]) for i in range(2)] for b, v in rates.items()}
    ratio = [means[guided][i] / means["off"][i] for i in range(2)]
    table = markdown_table(
        ["teacher.backend", "env steps/s, sampling", "env steps/s, end to end"],
        [["off", *means["off"]], [guided, *means[guided]], [f"ratio {guided} / off", *ratio]],
    )
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
              "overrides": args.overrides, "sample_steps": args.sample_steps, "train_iters": args.train_iters,
              "rounds": args.rounds, "per_round": rates, "ratio_sampling": ratio[0], "ratio_end_to_end": ratio[1],
              "target": args.target_ratio}
    (out / "overhead.json").write_text(json.dumps(report, indent=2))
    (out / "overhead.md").write_text(table + "\n")
    print(table)
    for name, r in zip(("sampling", "end to end"), ratio):
        print(f"{name}: {guided}/off = {r:.3f} (target >= {args.target_ratio}: "
              f"{'met' if r >= args.target_ratio else 'NOT met'})")
    return 0
