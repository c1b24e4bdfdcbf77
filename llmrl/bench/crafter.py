"""``llmrl bench crafter``: PPO guided by the scripted sub-goal teacher vs PPO alone (``teacher.backend=off``) on
Crafter, at one env-step budget, same config and seeds.

    llmrl bench crafter --steps 24576 --seeds 0 --out runs/bench-crafter [key=value ...]

A long run goes in legs: ``--checkpoint-every N`` checkpoints every N iterations, and the same command with
``--resume`` reads back every run that already reached ``--steps`` and continues any other from the newest
checkpoint in its folder (``bench.runs.train_or_reuse``; ``run.resume``: env steps, lambda and the prompt bank
continue; iterations logged after that checkpoint are replaced by the resumed ones).

Per run it reports:
  * the Crafter score over all training episodes (the Crafter benchmark's protocol: success rates over every
    episode within the budget) and per-achievement success rates;
  * the score of one evaluation at the end (``run.eval_episodes`` episodes of the stochastic student; the guided
    student keeps its teacher, since it is conditioned on the teacher's sub-goals);
  * env steps/s end to end (sampling + learning, evaluation excluded): the teacher runs off the env-step hot
    path, so the guided arm should train almost as fast as the teacher-off arm. (RLlib's phase timers are
    moving averages over many iterations, so a sampling-only rate per run is not read from them.)

It prints the tables and writes ``crafter_bench.json`` (everything), ``crafter_table.md``, ``crafter_curves.csv``
(every iteration of every run) and ``crafter_curves.png`` (score and return against env steps) into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from llmrl.bench.runs import REUSE_HELP, load_average, machine, markdown_table, today, train_or_reuse
from llmrl.config import load_config
from llmrl.envs.registry import family_spec

ACHIEVEMENTS = family_spec("Crafter").achievements
ARMS: dict[str, list[str]] = {"guided": ["teacher.backend=scripted"], "off": ["teacher.backend=off"]}
CURVE_FIELDS = ("arm", "seed", "iteration", "env_steps", "wall_s", "iter_env_steps", "iter_s",
                "env_return_mean", "episode_return_mean", "episode_len_mean", "train_episodes", "train_crafter_score",
                "crafter_score", "teacher_requests")


def throughput(rows: list[dict]) -> float:
    """Env steps/s of training, leaving out the first iteration (start-up) and the last (it also evaluates)."""
    body = rows[1:-1] or rows
    wall = sum(r["iter_s"] for r in body)
    return sum(r["iter_env_steps"] for r in body) / wall if wall > 0 else math.nan


def _record(arm: str, seed: int, summary: dict[str, Any], rows: list[dict]) -> dict[str, Any]:
    last = rows[-1] if rows else {}
    return {
        "arm": arm, "seed": seed, "env_steps": summary["env_steps"], "wall_s": summary["wall_s"],
        "env_steps_per_s": throughput(rows),
        "train_crafter_score": summary["train_crafter_score"], "train_episodes": summary["train_episodes"],
        "train_achievements": summary["train_achievements"],
        "eval_crafter_score": summary["crafter_score"], "eval_achievements": summary["achievements"],
        "env_return_mean": last.get("env_return_mean", math.nan),
        "episode_len_mean": last.get("episode_len_mean", math.nan),
        "teacher_requests": summary["teacher_requests"], "teacher_llm_calls": summary["teacher_llm_calls"],
        "run_dir": summary["run_dir"],
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per arm: the mean over seeds of every number, and of every achievement's training success rate."""
    out: dict[str, dict[str, Any]] = {}
    for arm in dict.fromkeys(r["arm"] for r in records):
        runs = [r for r in records if r["arm"] == arm]
        scores = [r["train_crafter_score"] for r in runs]
        out[arm] = {
            "seeds": [r["seed"] for r in runs],
            **{k: _mean([r[k] for r in runs]) for k in (
                "env_steps", "wall_s", "env_steps_per_s", "train_crafter_score",
                "train_episodes", "eval_crafter_score", "env_return_mean", "episode_len_mean",
                "teacher_requests", "teacher_llm_calls")},
            "train_crafter_score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "train_achievements": {a: _mean([r["train_achievements"][a] for r in runs]) for a in ACHIEVEMENTS},
            # A run that never evaluated has null eval fields (crafter_summary): the mean is over the others.
            "eval_achievements": {a: _mean([(r["eval_achievements"] or {}).get(a) for r in runs])
                                  for a in ACHIEVEMENTS},
        }
    return out


def tables(arms: dict[str, dict[str, Any]]) -> str:
    names = list(arms)
    main = markdown_table(
        ["arm", "env steps", "Crafter score % (train episodes)", "Crafter score % (final eval)", "Crafter return",
         "episode length", "train episodes", "env steps/s", "teacher requests"],
        [[n, a["env_steps"], a["train_crafter_score"], a["eval_crafter_score"], a["env_return_mean"],
          a["episode_len_mean"], a["train_episodes"], a["env_steps_per_s"], a["teacher_requests"]]
         for n, a in arms.items()],
    )
    parts = [main]
    if {"guided", "off"} <= set(arms):
        ratio = arms["guided"]["env_steps_per_s"] / arms["off"]["env_steps_per_s"]
        parts.append(f"throughput guided/off: {ratio:.2f}x")
    parts.append(markdown_table(
        ["achievement", *(f"{n} train %" for n in names), *(f"{n} eval %" for n in names)],
        [[a, *(arms[n]["train_achievements"][a] for n in names), *(arms[n]["eval_achievements"][a] for n in names)]
         for a in ACHIEVEMENTS],
    ))
    return "\n\n".join(parts)


def write_curves(curves: list[dict[str, Any]], out: Path) -> None:
    with (out / "crafter_curves.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(curves)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_score, ax_return) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"guided": "tab:blue", "off": "tab:orange"}  # colour = arm, line style = seed
    seeds = list(dict.fromkeys(c["seed"] for c in curves))
    dashes = ("-", "--", ":", "-.")
    for arm, seed in dict.fromkeys((c["arm"], c["seed"]) for c in curves):
        rows = [c for c in curves if c["arm"] == arm and c["seed"] == seed]
        xs = [r["env_steps"] for r in rows]
        style = {"color": colors.get(arm), "linestyle": dashes[seeds.index(seed) % len(dashes)],
                 "label": f"{arm} (seed {seed})"}
        ax_score.plot(xs, [r["train_crafter_score"] for r in rows], **style)
        ax_return.plot(xs, [r["env_return_mean"] for r in rows], **style)
    ax_score.set_ylabel("Crafter score % (all training episodes so far)")
    ax_return.set_ylabel("Crafter return, no bonus (recent training episodes)")
    for ax in (ax_score, ax_return):
        ax.set_xlabel("env steps")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "crafter_curves.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench crafter")
    p.add_argument("--config", default="configs/crafter/default.yaml")
    p.add_argument("--steps", type=int, default=24576, help="env steps per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=list(ARMS))
    p.add_argument("--out", default="runs/bench-crafter")
    # The learner trains in this process while the env runners sample in others; on a small machine one
    # thread avoids oversubscribing the cores (2 shared cores: 5 s instead of 29 s per 2048-step update).
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads of the learner (0: torch's default)")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="iterations between checkpoints (0: only at the end); with --resume, runs continue in legs")
    p.add_argument("--resume", action="store_true",
                   help=REUSE_HELP)
    p.add_argument("overrides", nargs="*", help="key=value for every run, e.g. resources.num_envs_per_env_runner=8")
    args = p.parse_args(argv)
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config, args.overrides)
    iterations = math.ceil(args.steps / cfg.ppo.train_batch_size)
    # Evaluate once, after the last iteration (run.final_eval): the learning curves come from training episodes,
    # and evaluation would otherwise blur the throughput comparison. eval_every alone cannot say "last": RLlib
    # samples a little over train_batch_size per iteration, so a run may stop an iteration before `iterations`.
    common = [*args.overrides, f"run.max_env_steps={args.steps}", f"run.eval_every={iterations}", "run.final_eval=true",
              f"run.checkpoint_every={args.checkpoint_every or iterations}"]
    records, curves = [], []
    for seed in args.seeds:
        # Arms alternate within a seed, so a stretch of background load is less likely to hit one arm only; each
        # record keeps the load average seen when its run ended, to tell when it did.
        for arm in args.arms:
            name = f"{arm}-s{seed}"
            print(f"== {arm}, seed {seed}, {args.steps} env steps", flush=True)
            summary, rows = train_or_reuse(args.config, [*common, *ARMS[arm], f"run.seed={seed}"], out / "runs",
                                           name, args.resume)
            records.append({**_record(arm, seed, summary, rows), "load_average_after": load_average()})
            curves += [{**r, "arm": arm, "seed": seed} for r in rows]
    arms = aggregate(records)
    text = tables(arms)
    write_curves(curves, out)
    report = {
        "command": "llmrl bench crafter " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
        "overrides": args.overrides, "steps": args.steps, "seeds": args.seeds, "torch_threads": args.torch_threads,
        "arms": arms, "runs": records,
    }
    (out / "crafter_bench.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "crafter_table.md").write_text(text + "\n")
    print(text)
    print(f"curves: {out / 'crafter_curves.png'}, {out / 'crafter_curves.csv'}")
    return 0
