"""``llmrl bench overhead``: env steps/s with the scripted teacher in the loop vs ``teacher.backend=off``.

Both arms run the same config in the same invocation, alternating arms round by round so that background load
hits both alike. Two rates are reported: end to end (sampling + learning, what a user sees) and sampling
alone (RLlib's env-runner sampling timer: where the teacher's cost lands, so the stricter measure).
Evaluation is off in both arms so it does not dilute the difference.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from llmrl.bench.runs import load_average, machine, markdown_table, today, train_run


def _rates(rows: list[dict], skip: int) -> tuple[float, float]:
    rows = rows[skip:] or rows
    steps = sum(r["iter_env_steps"] for r in rows)
    wall = sum(r["iter_s"] for r in rows)
    sample = sum(r["sample_s"] for r in rows)
    return steps / wall, steps / sample if sample else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench overhead")
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--steps", type=int, default=20480, help="env steps per arm and round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="runs/bench-overhead")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [*args.overrides, f"run.max_env_steps={args.steps}", "run.eval_every=100000", "run.checkpoint_every=100000"]
    results: dict[str, list[tuple[float, float]]] = {"off": [], "scripted": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for backend in ("off", "scripted"):
                _, rows = train_run(args.config, [*common, f"teacher.backend={backend}"], Path(tmp), f"{backend}-{r}")
                results[backend].append(_rates(rows, skip=1))  # the first iteration includes warm-up
    mean = {b: tuple(sum(x[i] for x in v) / len(v) for i in range(2)) for b, v in results.items()}
    ratio_e2e = mean["scripted"][0] / mean["off"][0]
    ratio_sample = mean["scripted"][1] / mean["off"][1]
    table = markdown_table(
        ["teacher.backend", "env steps/s end to end", "env steps/s sampling", "rounds"],
        [["off", mean["off"][0], mean["off"][1], args.rounds], ["scripted", mean["scripted"][0], mean["scripted"][1], args.rounds],
         ["ratio scripted/off", ratio_e2e, ratio_sample, ""]],
    )
    report = {
        "date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
        "steps_per_arm_and_round": args.steps, "rounds": args.rounds, "per_round": results,
        "ratio_end_to_end": ratio_e2e, "ratio_sampling": ratio_sample, "target": 0.9,
    }
    (out / "overhead.json").write_text(json.dumps(report, indent=2))
    (out / "overhead.md").write_text(table + "\n")
    print(table)
    print(f"target >= 0.9x: end to end {'met' if ratio_e2e >= 0.9 else 'NOT met'}, "
          f"sampling {'met' if ratio_sample >= 0.9 else 'NOT met'}")
    return 0
