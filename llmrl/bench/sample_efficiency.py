"""``llmrl bench sample-efficiency``: the LLM4Teach claims, measured.

Arms (same config and seeds; each arm trains with its own local Ray):
  guided      scripted teacher, budget B
  ppo         teacher.backend=off, budget 3B (so "PPO does not reach it within 3x the guided budget" is decidable)
  noisy       scripted teacher with teacher.error_rate=E (default 0.3), budget 3B (room to overtake its teacher)
and the noisy teacher's own success acting alone (``llmrl eval --teacher`` logic) on evaluation seeds.

Claims checked and printed:
  1. guided reaches eval success >= threshold in <= 1/3 of the env steps PPO needs, or PPO does not reach it
     within 3B;
  2. the student trained with the noisy teacher ends above that teacher's own success.
It prints a table, writes ``results.json`` and a plot of eval success against env steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmrl.bench.runs import load_average, machine, markdown_table, today, train_or_reuse
from llmrl.config import load_config


def _curve(rows: list[dict]) -> tuple[list[int], list[float]]:
    pts = [(r["env_steps"], r["eval_success"]) for r in rows if r.get("eval_success") == r.get("eval_success")]
    return [p[0] for p in pts], [p[1] for p in pts]


def _final_success(rows: list[dict], last: int = 3) -> float:
    _, ys = _curve(rows)
    tail = ys[-last:]
    return sum(tail) / len(tail) if tail else float("nan")


def judge(results: dict[str, dict], teacher_success: float) -> dict[str, bool]:
    """The benchmark's two claims, for the arms that ran.

    Success rates are means of eval fractions, so a tie can come out as 0.7000000000000001 vs 0.7: the student
    must beat its teacher by more than float noise, or a tie would read as a win.
    """
    verdicts = {}
    if "guided" in results and "ppo" in results:
        g, q = results["guided"]["steps_to_success"], results["ppo"]["steps_to_success"]
        verdicts["guided_3x_faster"] = g is not None and (q is None or g * 3 <= q)
    if "noisy" in results:
        verdicts["student_beats_noisy_teacher"] = results["noisy"]["final_eval_success"] > teacher_success + 1e-9
    return verdicts


def write_plot(curves: dict[str, tuple[list[int], list[float]]], threshold: float, teacher_success: float,
               path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label)
    ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold}")
    ax.axhline(teacher_success, color="red", linestyle="--", label=f"noisy teacher alone {teacher_success:.2f}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success (student alone, greedy)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench sample-efficiency")
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--budget", type=int, default=100_000, help="guided budget B (PPO gets 3B)")
    p.add_argument("--error-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-episodes", type=int, default=100)
    p.add_argument("--arms", default="guided,ppo,noisy", help="subset to run, comma-separated")
    p.add_argument("--out", default="runs/bench-sample-efficiency")
    p.add_argument("--reuse", action="store_true",
                   help="read back arms whose run folder in --out already has a summary.json instead of re-running")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [*args.overrides, f"run.seed={args.seed}"]
    arms = {
        "guided": ["teacher.backend=scripted", f"run.max_env_steps={args.budget}"],
        "ppo": ["teacher.backend=off", f"run.max_env_steps={3 * args.budget}"],
        "noisy": ["teacher.backend=scripted", f"teacher.error_rate={args.error_rate}",
                  f"run.max_env_steps={3 * args.budget}"],
    }
    wanted = args.arms.split(",")
    results: dict[str, Any] = {}
    curves = {}
    for name in wanted:
        summary, rows = train_or_reuse(args.config, [*base, *arms[name]], out, name, args.reuse)
        results[name] = {
            "steps_to_success": summary["steps_to_success"], "env_steps": summary["env_steps"],
            "final_eval_success": _final_success(rows), "env_steps_per_s": summary["env_steps_per_s"],
            "wall_s": summary["wall_s"], "teacher_llm_calls": summary["teacher_llm_calls"],
        }
        curves[name] = _curve(rows)
    teacher_success = float("nan")
    if "noisy" in wanted:
        from llmrl.training.evaluate import evaluate_teacher

        tcfg = load_config(args.config, [*base, "teacher.backend=scripted", f"teacher.error_rate={args.error_rate}"])
        teacher_success = evaluate_teacher(tcfg, args.teacher_episodes)["success"]
        results["noisy_teacher_alone"] = {"success": teacher_success, "episodes": args.teacher_episodes}
    threshold = load_config(args.config).run.success_threshold
    verdicts = judge(results, teacher_success)
    table = markdown_table(
        ["arm", "budget", "steps to success", "final eval success", "env steps/s", "LLM calls"],
        [[n, r["env_steps"], r["steps_to_success"], r["final_eval_success"], r["env_steps_per_s"],
          r["teacher_llm_calls"]] for n, r in results.items() if n != "noisy_teacher_alone"]
        + ([["noisy teacher alone", "-", "-", teacher_success, "-", "-"]] if "noisy" in wanted else []),
    )
    write_plot(curves, threshold, teacher_success, out / "success_vs_steps.png")
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
              "budget": args.budget, "error_rate": args.error_rate, "seed": args.seed, "threshold": threshold,
              "results": results, "verdicts": verdicts, "curves": curves}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "table.md").write_text(table + "\n")
    print(table)
    for k, v in verdicts.items():
        print(f"{k}: {'yes' if v else 'no'}")
    print(f"plot: {out / 'success_vs_steps.png'}")
    return 0
