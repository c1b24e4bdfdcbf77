"""``llmrl bench teacher-learns``: does the teacher get better at its job because of the student?

Four arms on the same config and seeds (each trains with its own local Ray):
  frozen    the LM teacher with an empty prompt bank (feedback off)
  bank      the prompt bank (RL -> LLM through the prompt)
  reweight  bank + reweighting by the student's success, with episode credit
  adapter   bank + the online LoRA adapter (llmrl.adapter), with episode credit
  hindsight the adapter arm, its pairs labelled with the plans the student achieved (adapter.pair_label=achieved)
  hindsight_only  hindsight with a prompt bank that never publishes: the teacher's prompt stays the frozen arm's,
            so only the adapter changes the teacher (the bank alone moves its success by up to 0.3 on SimpleDoorKey)

For every checkpoint of every run (``--checkpoint-every`` iterations), the teacher as it was then (that
checkpoint's prompt bank and adapter) is measured acting alone on evaluation seeds: its success, and its plan
accuracy against the family's scripted planner over the distinct states it met (how often its top plan is the
planner's). That is the curve that shows the teacher improving as the student trains. For the students:
steps to the success threshold and final eval success. It prints a table, writes ``results.json`` and a plot.

The teacher is measured in-process (a ``TeacherService`` on one event loop, no Ray), with the run's own config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmrl.adapter.trainer import read_attempts
from llmrl.bench.runs import REUSE_HELP, load_average, machine, markdown_table, today, train_or_reuse
from llmrl.bench.teacher_quality import LocalAdvice, local_source
from llmrl.config import Config, load_config
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.training.checkpoint import LOOP_STATE

NEVER_PUBLISH = 10**9  # episodes between bank versions: more than any run has, so the bank stays at version 0
ARMS: dict[str, list[str]] = {
    "frozen": ["feedback.enabled=false"],
    "bank": [],
    "reweight": ["teacher.reweight_by_success=true", "feedback.credit=episode"],
    # Advised labels have no votes to wait for (a config's min_label_votes is for hindsight labels).
    "adapter": ["adapter.enabled=true", "feedback.credit=episode", "adapter.pair_label=advised",
                "adapter.min_label_votes=1"],
    "hindsight": ["adapter.enabled=true", "feedback.credit=episode", "adapter.pair_label=achieved"],
    "hindsight_only": ["adapter.enabled=true", "feedback.credit=episode", "adapter.pair_label=achieved",
                       f"feedback.publish_every={NEVER_PUBLISH}"],
}


class RecordingSource(LocalAdvice):
    """The in-process ``AdviceSource`` of ``teacher_quality``, also remembering every distinct query's answer."""

    def __init__(self, service: Any) -> None:
        super().__init__(service)
        self.queries: dict[tuple, TeacherQuery] = {}
        self.answers: dict[tuple, Advice] = {}

    def request(self, query: TeacherQuery) -> Advice | None:
        advice = self.advise(query)
        self.queries[query.key()] = query
        self.answers[query.key()] = advice
        return advice if advice.has_advice else None


def plan_accuracy(source: RecordingSource, cfg: Config) -> dict[str, float]:
    """Over the distinct states met: how often the teacher's top plan is the scripted planner's, and the mean
    probability it gives the planner's plan."""
    from llmrl.config import TeacherConfig
    from llmrl.teacher.backends.scripted import ScriptedBackend

    keys = list(source.queries)
    if not keys:
        return {"states": 0, "top1_accuracy": float("nan"), "p_correct": float("nan")}
    planner = ScriptedBackend(TeacherConfig(backend="scripted", error_rate=0.0), 0)
    truth = source.run(
        planner.advise([source.queries[k] for k in keys], PromptBankSnapshot(0, "")))
    hits, mass = 0, 0.0
    for k, right in zip(keys, truth):
        answer, correct = source.answers[k], right.best()
        hits += int(answer.best() == correct)
        if answer.has_advice and correct in answer.options:
            mass += answer.probs[answer.options.index(correct)]
    return {"states": len(keys), "top1_accuracy": hits / len(keys), "p_correct": mass / len(keys)}


def measure_teacher(setup: Any, episodes: int, env_steps: int) -> dict[str, Any]:
    """A teacher (its config, bank and adapter), acting alone, and its plan accuracy."""
    from llmrl.training.evaluate import teacher_alone

    source = local_source(setup.cfg, setup.bank, setup.adapter, kind=RecordingSource)
    try:
        result = teacher_alone(setup.cfg, episodes, source)
        accuracy = plan_accuracy(source, setup.cfg)
    finally:
        source.close()
    return {"env_steps": env_steps, "bank_version": setup.bank.version,
            "adapter_version": setup.adapter_version, "teacher_success": result["success"], **accuracy}


def teacher_at_checkpoint(checkpoint: Path, episodes: int) -> dict[str, Any]:
    """The teacher of this checkpoint: its run's config, bank and adapter."""
    from llmrl.training.teacher_state import teacher_of_checkpoint

    loop_state = json.loads((checkpoint / LOOP_STATE).read_text())
    return measure_teacher(teacher_of_checkpoint(checkpoint), episodes, loop_state["env_steps"])


def teacher_at_start(run_dir: Path, episodes: int) -> dict[str, Any]:
    """The teacher the run started with (its config, the initial bank, no adapter): the point a run's gain is
    measured from. The first checkpoint is too late for that: by then the bank has moved on."""
    from llmrl.training.checkpoint import RUN_CONFIG
    from llmrl.training.teacher_state import teacher_of_config

    return measure_teacher(teacher_of_config(run_dir / RUN_CONFIG), episodes, 0)


def write_plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # p(correct) beside top-1: with a handful of states top-1 moves in steps of 1/states, while the mass the
    # teacher puts on the planner's plan shows a fine-tune that has not yet flipped a state.
    panels = (("teacher_success", "teacher success alone"), ("top1_accuracy", "teacher top-1 plan accuracy"),
              ("p_correct", "teacher p(planner's plan)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 4))
    # Colour = arm (and env), line style = seed: more runs than a colour cycle has colours tell apart.
    names = [label.rsplit("-s", 1) for label in curves]
    arms = list(dict.fromkeys(arm for arm, _ in names))
    seeds = list(dict.fromkeys(seed for _, seed in names))
    dashes = ("-", "--", ":", "-.")
    for (label, points), (arm, seed) in zip(curves.items(), names):
        xs = [p["env_steps"] / 1000 for p in points]
        style = {"color": f"C{arms.index(arm) % 10}", "linestyle": dashes[seeds.index(seed) % len(dashes)],
                 "marker": "o", "markersize": 3, "label": label}
        for ax, (key, _) in zip(axes, panels):
            ax.plot(xs, [p[key] for p in points], **style)
    for ax, (_, name) in zip(axes, panels):
        ax.set_xlabel("student env steps (thousands)")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
    axes[-1].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


CURVE_FILE = "teacher_curve.json"  # in a run's folder: its measured teachers, read back by --reuse


def measured_run(config: str, arm: str, seed: int, args: argparse.Namespace, out: Path
                 ) -> tuple[dict[str, Any], list[dict]]:
    """Train one arm-seed (or, with ``--reuse``, read back a finished one) and measure the teacher at each of its
    checkpoints; returns (its row of results, its teacher curve)."""
    overrides = [*args.overrides, *ARMS[arm], f"run.seed={seed}", f"run.max_env_steps={args.steps}",
                 f"run.checkpoint_every={args.checkpoint_every}"]
    cfg = load_config(config, overrides)
    name = f"{cfg.env.name}-{arm}-s{seed}"
    summary, rows = train_or_reuse(config, overrides, out, name, args.reuse)
    run_dir = Path(summary["run_dir"])
    cached = run_dir / CURVE_FILE
    cache_key = {"teacher_episodes": args.teacher_episodes}
    saved = json.loads(cached.read_text()) if args.reuse and cached.is_file() else {}
    if saved.get("key") != cache_key:
        saved = {"key": cache_key, "points": [teacher_at_checkpoint(c, args.teacher_episodes)
                                              for c in sorted((run_dir / "checkpoints").glob("iter_*"))]}
    if "start" not in saved:  # also a curve cached before start points were measured: only that is measured
        saved["start"] = teacher_at_start(run_dir, args.teacher_episodes)
        cached.write_text(json.dumps(saved, indent=1, default=float))
    points = [saved["start"], *saved["points"]]
    evals = [r["eval_success"] for r in rows if r["eval_success"] == r["eval_success"]]
    row = {"env": cfg.env.name, "arm": arm, "seed": seed,
           "steps_to_success": summary["steps_to_success"],
           "final_eval_success": sum(evals[-3:]) / len(evals[-3:]) if evals else None,
           "teacher_success_start": points[0]["teacher_success"],
           "teacher_success_last": points[-1]["teacher_success"],
           "teacher_success_best": max(p["teacher_success"] for p in points),
           "top1_accuracy_start": points[0]["top1_accuracy"], "top1_accuracy_last": points[-1]["top1_accuracy"],
           "adapter_version": summary.get("adapter_version", 0),
           # Each fine-tune's verdict (why a first fine-tune was not kept, when the next one was).
           "adapter_attempts": [{k: a.get(k) for k in ("outcome", "why", "episodes", "pairs")}
                                for a in read_attempts(run_dir)]}
    return row, points


def over_seeds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (env, arm): how many seeds reached the threshold and their mean steps, the mean final success, and the
    mean change of the teacher's own success within a run (last and best checkpoint against the start)."""
    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["env"], r["arm"]), []).append(r)
    table = []
    for (env, arm), rs in groups.items():
        reached = [r["steps_to_success"] for r in rs if r["steps_to_success"] is not None]
        table.append({"env": env, "arm": arm, "seeds": len(rs), "reached": len(reached),
                      "mean_steps_to_success": mean(reached),
                      "mean_final_eval_success": mean([r["final_eval_success"] for r in rs
                                                       if r["final_eval_success"] is not None]),
                      "mean_teacher_gain_last": mean([r["teacher_success_last"] - r["teacher_success_start"]
                                                      for r in rs]),
                      "mean_teacher_gain_best": mean([r["teacher_success_best"] - r["teacher_success_start"]
                                                      for r in rs])})
    return table


def write_report(out: Path, args: argparse.Namespace, configs: list[str], seeds: list[int],
                 results: list[dict[str, Any]], curves: dict[str, list[dict]]) -> str:
    """results.json, table.md and the plot for the runs so far: written after every run, so that a comparison
    stopped part-way (hours on 2 cores) keeps what it measured, and ``--reuse`` goes on from there."""
    per_run = markdown_table(
        ["env", "arm", "seed", "steps to success", "final eval success", "teacher success start -> last (best)",
         "plan top-1 start -> last", "adapter v"],
        [[r["env"], r["arm"], r["seed"], r["steps_to_success"], r["final_eval_success"],
          f"{r['teacher_success_start']} -> {r['teacher_success_last']} ({r['teacher_success_best']})",
          f"{r['top1_accuracy_start']:.2f} -> {r['top1_accuracy_last']:.2f}", r["adapter_version"]]
         for r in results])
    summary = over_seeds(results)
    by_arm = markdown_table(
        ["env", "arm", "seeds reaching threshold", "mean steps to success (those)", "mean final eval success",
         "mean teacher gain, last (best)"],
        [[g["env"], g["arm"], f"{g['reached']}/{g['seeds']}", g["mean_steps_to_success"],
          g["mean_final_eval_success"], f"{fmt(g['mean_teacher_gain_last'])} ({fmt(g['mean_teacher_gain_best'])})"]
         for g in summary])
    write_plot(curves, out / "teacher_vs_steps.png")
    report = {"date": today(), "machine": machine(), "load_average_after": load_average(), "configs": configs,
              "seeds": seeds, "steps": args.steps, "checkpoint_every": args.checkpoint_every,
              "teacher_episodes": args.teacher_episodes, "overrides": args.overrides, "results": results,
              "over_seeds": summary, "curves": curves}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=float))
    tables = per_run + "\n\n" + by_arm + "\n"
    (out / "table.md").write_text(tables)
    return tables


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"



def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench teacher-learns")
    p.add_argument("--configs", required=True, help="LM-teacher configs, one per environment, comma-separated")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated")
    p.add_argument("--steps", type=int, default=60_000, help="env steps per run")
    p.add_argument("--checkpoint-every", type=int, default=5, help="iterations between measured teachers")
    p.add_argument("--teacher-episodes", type=int, default=50)
    p.add_argument("--arms", default=",".join(ARMS), help="subset to run, comma-separated")
    p.add_argument("--out", default="runs/bench-teacher-learns")
    p.add_argument("--reuse", action="store_true",
                   help=REUSE_HELP + " (with their measured teachers)")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    unknown = [arm for arm in args.arms.split(",") if arm not in ARMS]
    if unknown:
        p.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    curves: dict[str, list[dict]] = {}
    configs, seeds = args.configs.split(","), [int(x) for x in args.seeds.split(",")]
    tables = ""
    for config in configs:
        for seed in seeds:
            for arm in args.arms.split(","):
                row, points = measured_run(config, arm, seed, args, out)
                results.append(row)
                curves[f"{row['env']}-{arm}-s{seed}"] = points
                tables = write_report(out, args, configs, seeds, results, curves)
    print(tables)
    print(f"plot: {out / 'teacher_vs_steps.png'}")
    return 0
