"""``llmrl bench overhead``: env steps/s with the scripted teacher in the loop vs ``teacher.backend=off``.

Both arms build the same training graph from the same config in one invocation, and alternate round by round
so background load hits both alike. Two rates, both timed here with a wall clock (RLlib's own phase timers are
moving averages, not per-call times):

- sampling: the env runners' ``sample()`` alone (real env runners, connectors, guided env and teacher), which
  is where the teacher's cost lands, so it is the strict measure;
- end to end: whole ``algo.train()`` iterations (sampling + PPO update), what a user sees.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llmrl.bench.runs import load_average, machine, markdown_table, today
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench overhead")
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--sample-steps", type=int, default=16384, help="env steps sampled per arm and round")
    p.add_argument("--train-iters", type=int, default=4, help="train iterations per arm and round (first is warm-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="runs/bench-overhead")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [*args.overrides, "run.eval_every=100000", f"run.out_dir={out}"]
    rates: dict[str, list[tuple[float, float]]] = {"off": [], "scripted": []}
    for _ in range(args.rounds):
        for backend in ("off", "scripted"):
            rates[backend].append(measure(args.config, [*common, f"teacher.backend={backend}"], args.sample_steps,
                                          args.train_iters))
    mean = {b: [sum(r[i] for r in v) / len(v) for i in range(2)] for b, v in rates.items()}
    ratio = [mean["scripted"][i] / mean["off"][i] for i in range(2)]
    table = markdown_table(
        ["teacher.backend", "env steps/s, sampling", "env steps/s, end to end"],
        [["off", *mean["off"]], ["scripted", *mean["scripted"]], ["ratio scripted / off", *ratio]],
    )
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
              "overrides": args.overrides, "sample_steps": args.sample_steps, "train_iters": args.train_iters,
              "rounds": args.rounds, "per_round": rates, "ratio_sampling": ratio[0], "ratio_end_to_end": ratio[1],
              "target": 0.9}
    (out / "overhead.json").write_text(json.dumps(report, indent=2))
    (out / "overhead.md").write_text(table + "\n")
    print(table)
    for name, r in zip(("sampling", "end to end"), ratio):
        print(f"{name}: scripted/off = {r:.3f} (target >= 0.9: {'met' if r >= 0.9 else 'NOT met'})")
    return 0
