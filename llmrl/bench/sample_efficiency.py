"""``llmrl bench sample-efficiency``: the LLM4Teach claims, measured.

Arms (same config and seeds; each arm trains with its own local Ray):
  guided      scripted teacher, budget B
  ppo         teacher.backend=off, budget F*B (F = --ppo-factor, default 3, so "PPO does not reach it within 3x
              the guided budget" is decidable)
  noisy       scripted teacher with teacher.error_rate=E (default 0.3), budget 3B (room to overtake its teacher)
  lm          the config's own LM teacher (teacher.backend hf | vllm | openai, e.g. a *_smollm.yaml config or
              teacher.backend=hf teacher.hf.model=...), budget B
and each imperfect teacher's own success acting alone (``llmrl eval --teacher`` logic) on evaluation seeds: the
noisy one, and the LM teacher twice, as training starts (initial prompt bank) and as its run ended (the bank of
the lm run's last checkpoint), in process so that a slow LM answer is waited for rather than replaced by a
random action.

Claims checked and printed:
  1. guided reaches eval success >= threshold in <= 1/3 of the env steps PPO needs, or PPO does not reach it
     within its budget;
  2. the student trained with the noisy teacher ends above that teacher's own success;
  3. (issue 8, the seeds' headline claim with a real LM) the lm student reaches the threshold in <= 1/5 of PPO's
     steps (undecided when PPO never does and its budget is under 5x the student's steps), and
  4. ends >= 0.15 above its LM teacher acting alone (the better of the teacher at the start and at the end).
"Ends" is the mean of the last 3 evaluations. ``--seeds 0,1,2`` runs the arms for each seed (``<out>/seed<k>/``)
and adds a table over seeds. It prints tables, writes ``results.json`` and a plot of eval success per seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmrl.bench.runs import REUSE_HELP, load_average, machine, markdown_table, today, train_or_reuse
from llmrl.config import ConfigError, load_config

LM_BACKENDS = ("hf", "vllm", "openai")
LM_SPEEDUP = 5.0  # claim 3: the LM-taught student needs at most 1/5 of PPO's steps
LM_MARGIN = 0.15  # claim 4: ... and ends at least this far above its LM teacher acting alone
FLOAT_NOISE = 1e-9  # success rates are means of eval fractions: a tie must not read as a win


def _curve(rows: list[dict]) -> tuple[list[int], list[float]]:
    pts = [(r["env_steps"], r["eval_success"]) for r in rows if r.get("eval_success") == r.get("eval_success")]
    return [p[0] for p in pts], [p[1] for p in pts]


def _final_success(rows: list[dict], last: int = 3) -> float:
    _, ys = _curve(rows)
    tail = ys[-last:]
    return sum(tail) / len(tail) if tail else float("nan")


def faster_by(student_steps: int | None, ppo_steps: int | None, ppo_budget: int, factor: float) -> bool | None:
    """Whether the student reached the threshold in <= 1/factor of PPO's steps. When PPO never reached it, yes
    if PPO's budget was at least factor x the student's steps, otherwise undecided (None)."""
    if student_steps is None:
        return False
    if ppo_steps is not None:
        return student_steps * factor <= ppo_steps
    return True if student_steps * factor <= ppo_budget else None


def judge(results: dict[str, dict], teacher_success: float, lm_teacher_success: float = float("nan")
          ) -> dict[str, bool | None]:
    """The benchmark's claims, for the arms that ran.

    Success rates are means of eval fractions, so a tie can come out as 0.7000000000000001 vs 0.7: the student
    must beat its teacher by more than float noise, or a tie would read as a win.
    """
    verdicts: dict[str, bool | None] = {}
    ppo = results.get("ppo")
    if "guided" in results and ppo is not None:
        g, q = results["guided"]["steps_to_success"], ppo["steps_to_success"]
        verdicts["guided_3x_faster"] = g is not None and (q is None or g * 3 <= q)
    if "noisy" in results:
        verdicts["student_beats_noisy_teacher"] = results["noisy"]["final_eval_success"] > teacher_success + FLOAT_NOISE
    if "lm" in results:
        lm = results["lm"]
        if ppo is not None:
            verdicts["lm_student_5x_faster"] = faster_by(lm["steps_to_success"], ppo["steps_to_success"],
                                                         ppo["env_steps"], LM_SPEEDUP)
        # Unmeasured teacher (NaN): every comparison is False, never a win by default.
        verdicts["lm_student_0.15_above_lm_teacher"] = (
            lm["final_eval_success"] >= lm_teacher_success + LM_MARGIN - FLOAT_NOISE)
    return verdicts


def write_plot(curves: dict[str, tuple[list[int], list[float]]], threshold: float, teachers: dict[str, float],
               path: Path) -> None:
    """Eval success against env steps per arm, with each imperfect teacher's own success as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label)
    ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold}")
    for (label, success), colour in zip(teachers.items(), ("red", "purple", "brown")):
        if success == success:
            ax.axhline(success, color=colour, linestyle="--", label=f"{label} alone {success:.2f}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success (student alone, greedy)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def lm_teacher_alone(config: str, overrides: list[str], run_dir: str | None, episodes: int) -> dict[str, Any]:
    """The LM teacher's own success acting alone, as training starts and with the bank its run ended with
    (in process, waiting for every answer: ``teacher_quality.success_alone``)."""
    from llmrl.bench.teacher_quality import success_alone
    from llmrl.training.teacher_state import teacher_of_checkpoint, teacher_of_config

    start = success_alone(teacher_of_config(config, overrides), episodes)
    out: dict[str, Any] = {"episodes": episodes, "start": start["success"], "end": float("nan"),
                           "end_bank_version": None}
    if run_dir is not None and (Path(run_dir) / "checkpoints").is_dir():
        end = success_alone(teacher_of_checkpoint(run_dir), episodes)
        out["end"], out["end_bank_version"] = end["success"], end["bank_version"]
    out["best"] = max((x for x in (out["start"], out["end"]) if x == x), default=float("nan"))
    return out


def _arm_overrides(args: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "guided": ["teacher.backend=scripted", f"run.max_env_steps={args.budget}"],
        "ppo": ["teacher.backend=off", f"run.max_env_steps={int(args.ppo_factor * args.budget)}"],
        "noisy": ["teacher.backend=scripted", f"teacher.error_rate={args.error_rate}",
                  f"run.max_env_steps={3 * args.budget}"],
        "lm": [f"run.max_env_steps={args.budget}"],
    }


def run_seed(args: argparse.Namespace, wanted: list[str], seed: int, out: Path) -> dict[str, Any]:
    """Every wanted arm for one seed in ``out``, the teachers alone, the verdicts; writes results.json there."""
    out.mkdir(parents=True, exist_ok=True)
    base = [*args.overrides, f"run.seed={seed}"]
    arms = _arm_overrides(args)
    # With --reuse, a teacher measured alone beside an arm that is read back is read back too: it is the same
    # teacher (start bank, or the same run's last checkpoint) on the same seeded episodes.
    read_back = {n for n in wanted if args.reuse and (out / n / "summary.json").is_file()}
    previous = json.loads((out / "results.json").read_text())["results"] if read_back and (
        out / "results.json").is_file() else {}

    def kept(key: str, arm: str) -> dict[str, Any] | None:
        old = previous.get(key)
        return old if arm in read_back and old and old.get("episodes") == args.teacher_episodes else None

    results: dict[str, Any] = {}
    curves = {}
    run_dirs: dict[str, str] = {}
    for name in wanted:
        summary, rows = train_or_reuse(args.config, [*base, *arms[name]], out, name, args.reuse)
        run_dirs[name] = str(out / name)
        results[name] = {
            "steps_to_success": summary["steps_to_success"], "env_steps": summary["env_steps"],
            "final_eval_success": _final_success(rows), "env_steps_per_s": summary["env_steps_per_s"],
            "wall_s": summary["wall_s"], "teacher_llm_calls": summary["teacher_llm_calls"],
        }
        curves[name] = _curve(rows)
    teachers: dict[str, float] = {}
    if "noisy" in wanted:
        from llmrl.training.evaluate import evaluate_teacher

        results["noisy_teacher_alone"] = kept("noisy_teacher_alone", "noisy") or {
            "success": evaluate_teacher(load_config(args.config, [*base, "teacher.backend=scripted",
                                                                  f"teacher.error_rate={args.error_rate}"]),
                                        args.teacher_episodes)["success"],
            "episodes": args.teacher_episodes}
        teachers["noisy teacher"] = results["noisy_teacher_alone"]["success"]
    if "lm" in wanted:
        results["lm_teacher_alone"] = kept("lm_teacher_alone", "lm") or lm_teacher_alone(
            args.config, base, run_dirs.get("lm"), args.teacher_episodes)
        teachers["LM teacher (best)"] = results["lm_teacher_alone"]["best"]
    threshold = load_config(args.config).run.success_threshold
    verdicts = judge(results, teachers.get("noisy teacher", float("nan")), teachers.get("LM teacher (best)",
                                                                                        float("nan")))
    arm_rows = [[n, r["env_steps"], r["steps_to_success"], r["final_eval_success"], r["env_steps_per_s"],
                 r["teacher_llm_calls"]] for n, r in results.items() if not n.endswith("_alone")]
    if "noisy" in wanted:
        arm_rows.append(["noisy teacher alone", "-", "-", teachers["noisy teacher"], "-", "-"])
    if "lm" in wanted:
        alone = results["lm_teacher_alone"]
        arm_rows += [["LM teacher alone, start", "-", "-", alone["start"], "-", "-"],
                     ["LM teacher alone, end", "-", "-", alone["end"], "-", "-"]]
    table = markdown_table(["arm", "budget", "steps to success", "final eval success", "env steps/s", "LLM calls"],
                           arm_rows)
    write_plot(curves, threshold, teachers, out / "success_vs_steps.png")
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "config": args.config,
              "overrides": args.overrides, "budget": args.budget, "ppo_factor": args.ppo_factor,
              "error_rate": args.error_rate, "seed": seed, "threshold": threshold, "results": results,
              "verdicts": verdicts, "curves": curves}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "table.md").write_text(table + "\n")
    print(f"seed {seed}:")
    print(table)
    for k, v in verdicts.items():
        print(f"{k}: {_verdict_word(v)}")
    print(f"plot: {out / 'success_vs_steps.png'}")
    return report


def _verdict_word(v: bool | None) -> str:
    return "undecided" if v is None else ("yes" if v else "no")


def over_seeds(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-arm means over seeds, and for each claim how many seeds it held in (undecided ones counted apart)."""
    arms = [n for n in reports[0]["results"] if not n.endswith("_alone")]
    means = {}
    for arm in arms:
        steps = [r["results"][arm]["steps_to_success"] for r in reports]
        reached = [x for x in steps if x is not None]
        means[arm] = {
            "reached": len(reached), "seeds": len(steps),
            "steps_to_success_mean_when_reached": sum(reached) / len(reached) if reached else None,
            "final_eval_success_mean": sum(r["results"][arm]["final_eval_success"] for r in reports) / len(reports),
        }
    claims = {}
    for claim in reports[0]["verdicts"]:
        values = [r["verdicts"][claim] for r in reports]
        claims[claim] = {"yes": values.count(True), "no": values.count(False), "undecided": values.count(None)}
    return {"seeds": [r["seed"] for r in reports], "arms": means, "claims": claims}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench sample-efficiency")
    p.add_argument("--config", default="configs/minigrid/simple_doorkey.yaml")
    p.add_argument("--budget", type=int, default=100_000, help="guided and lm budget B (PPO gets F*B, noisy 3B)")
    p.add_argument("--ppo-factor", type=float, default=3.0, help="F: PPO's budget in multiples of B")
    p.add_argument("--error-rate", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default="", help="comma-separated seeds (overrides --seed); each in <out>/seed<k>/, "
                   "also when only one is given")
    p.add_argument("--teacher-episodes", type=int, default=100)
    p.add_argument("--arms", default="guided,ppo,noisy", help="subset of guided,ppo,noisy,lm, comma-separated")
    p.add_argument("--out", default="runs/bench-sample-efficiency")
    p.add_argument("--reuse", action="store_true",
                   help=REUSE_HELP)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    wanted = args.arms.split(",")
    unknown = [a for a in wanted if a not in _arm_overrides(args)]
    if unknown:
        raise ConfigError(f"--arms: unknown arm(s) {', '.join(unknown)}; choose from guided, ppo, noisy, lm")
    if "lm" in wanted:
        backend = load_config(args.config, args.overrides).teacher.backend
        if backend not in LM_BACKENDS:
            raise ConfigError(f"teacher.backend: the lm arm needs an LM teacher ({' | '.join(LM_BACKENDS)}) in "
                              f"--config or the overrides, got {backend}")
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
    out = Path(args.out)
    # --seeds puts every seed in its own folder, one seed too: a seed run alone is found by a later
    # --seeds 0,1,2 --reuse, which then adds the table over seeds without training or measuring again.
    reports = [run_seed(args, wanted, seed, out / f"seed{seed}" if args.seeds else out) for seed in seeds]
    if len(seeds) > 1:
        summary = over_seeds(reports)
        (out / "results.json").write_text(json.dumps({"date": today(), "machine": machine(), "config": args.config,
                                                      "overrides": args.overrides, "budget": args.budget,
                                                      **summary}, indent=2, default=float))
        print(markdown_table(["arm", "seeds reaching the threshold", "mean steps (when reached)", "mean final success"],
                             [[a, f"{m['reached']}/{m['seeds']}", m["steps_to_success_mean_when_reached"],
                               m["final_eval_success_mean"]] for a, m in summary["arms"].items()]))
        for claim, c in summary["claims"].items():
            print(f"{claim}: yes in {c['yes']}, no in {c['no']}, undecided in {c['undecided']} of {len(seeds)} seeds")
    return 0
