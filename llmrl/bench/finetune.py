"""``llmrl bench finetune``: how long one adapter fine-tune takes, packed choice scoring against one row per plan.

    llmrl bench finetune [--config configs/minigrid/simple_doorkey_smollm.yaml] [--pairs 40] [--repeats 2]
                         [--banks initial,mid] [--out DIR] [key=value ...]

The adapter trainer's own steps, on its own model, settings and prompt format (``adapter.*``, the teacher's
chat template and ``max_prompt_tokens`` from ``--config``), with ``--pairs`` distinct SimpleDoorKey states (the
MiniGrid family's ``sample_states``, seeded) labelled with a seeded random admissible plan:

* ``train``: one fine-tune (``adapter.epochs`` passes of ``adapter.loss`` over the pairs), from the fresh adapter;
* ``judge``: the acceptance check's scoring (``plan_choices`` over every pair, no gradients).

Each is timed with the packed scoring (every plan of a pair in one row, ``finetune.LoraFineTuner._packed_nll``)
and with one full row per plan (the fallback, and what every fine-tune did before), alternating, ``--repeats``
times, on two prompt banks: ``initial`` (the task description only, a run's start) and ``mid`` (three exemplars
and four feedback lines, ``bench.teacher.bench_bank``: what the bank arms train on). It checks that both give the
same choice loss before training, prints one table, and writes ``finetune.json`` and ``finetune.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.messages import PromptBankSnapshot, TeacherQuery, TrainingPair

BANKS = ("initial", "mid")
MODES = ("packed", "full")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="llmrl bench finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/minigrid/simple_doorkey_smollm.yaml")
    p.add_argument("--pairs", type=int, default=40, help="distinct (state, plan) pairs per fine-tune")
    p.add_argument("--repeats", type=int, default=2, help="timings per mode and bank (alternating modes)")
    p.add_argument("--banks", default=",".join(BANKS), help=f"comma-separated, of {', '.join(BANKS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench-finetune")
    p.add_argument("overrides", nargs="*", help="key=value for the config, e.g. adapter.epochs=1")
    args = p.parse_args(argv)
    banks = [b for b in args.banks.split(",") if b]
    if not banks or any(b not in BANKS for b in banks):
        p.error(f"--banks: expected a comma-separated list of {', '.join(BANKS)}, got '{args.banks}'")
    if args.pairs < 1 or args.repeats < 1:
        p.error("--pairs and --repeats must be at least 1")
    args.banks = banks
    return args


def bank_of(name: str, task_description: str) -> PromptBankSnapshot:
    from llmrl.bench.teacher import bench_bank

    return PromptBankSnapshot(version=0, task_description=task_description) if name == "initial" else bench_bank()


def labelled_pairs(n: int, seed: int) -> list[TrainingPair]:
    from llmrl.bench.teacher import state_stream

    rng = random.Random(seed)
    return [TrainingPair(TeacherQuery("minigrid", "SimpleDoorKey", text, opts), rng.choice(opts))
            for text, opts in itertools.islice(state_stream(seed), n)]


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure_bank(tuner: Any, prompts: Any, pairs: list[TrainingPair], bank: PromptBankSnapshot,
                 repeats: int) -> dict[str, Any]:
    """Both modes on one bank: seconds per fine-tune and per judging pass, and the loss agreement."""
    from llmrl.adapter.data import pair_choices

    examples = tuner.encode_choices([pair_choices(p, bank, prompts) for p in pairs])
    prompt_tokens = [len(rows[0][0]) - rows[0][1] for rows, _ in examples]
    plan_tokens = [sum(n for _, n in rows) for rows, _ in examples]
    secs: dict[str, dict[str, list[float]]] = {m: {"train": [], "judge": []} for m in MODES}
    losses: dict[str, float] = {}
    for _, mode in itertools.product(range(repeats), MODES):
        tuner.packed_scoring = mode == "packed"
        tuner.load(None)
        losses[mode] = tuner.loss(examples)
        judge_s, _ = timed(lambda: tuner.plan_choices(examples))
        train_s, _ = timed(lambda: tuner.train(examples))
        secs[mode]["train"].append(train_s)
        secs[mode]["judge"].append(judge_s)
        print(f"  {mode}: fine-tune {train_s:.1f} s, judge {judge_s:.1f} s", flush=True)  # minutes per fine-tune
    row: dict[str, Any] = {
        "pairs": len(examples), "mean_prompt_tokens": statistics.fmean(prompt_tokens),
        "mean_plan_tokens_per_pair": statistics.fmean(plan_tokens),
        "mean_plans_per_pair": statistics.fmean(len(rows) for rows, _ in examples),
        "loss_packed": losses["packed"], "loss_full": losses["full"],
    }
    for mode, phase in itertools.product(MODES, ("train", "judge")):
        row[f"{phase}_s_{mode}"] = statistics.median(secs[mode][phase])
        row[f"{phase}_s_{mode}_all"] = secs[mode][phase]
    for phase in ("train", "judge"):
        row[f"{phase}_speedup"] = row[f"{phase}_s_full"] / row[f"{phase}_s_packed"]
    return row


def table(rows: dict[str, dict[str, Any]]) -> str:
    header = ["bank", "pairs", "prompt tokens", "plans/pair", "fine-tune s, full", "fine-tune s, packed",
              "speed-up", "judge s, full", "judge s, packed", "speed-up", "choice loss full / packed"]
    body = [[name, r["pairs"], f"{r['mean_prompt_tokens']:.0f}", f"{r['mean_plans_per_pair']:.1f}",
             f"{r['train_s_full']:.1f}", f"{r['train_s_packed']:.1f}", f"{r['train_speedup']:.2f}x",
             f"{r['judge_s_full']:.1f}", f"{r['judge_s_packed']:.1f}", f"{r['judge_speedup']:.2f}x",
             f"{r['loss_full']:.4f} / {r['loss_packed']:.4f}"] for name, r in rows.items()]
    return markdown_table(header, body)


def main(argv: list[str] | None = None) -> int:
    from dataclasses import replace

    from llmrl.config import adapter_base_model, load_config, teacher_chat_template

    args = parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    # The bench times the choice loss the MiniGrid SmolLM2 configs use; other settings come from the config.
    acfg = replace(cfg.adapter, loss="choice")
    from llmrl.adapter.finetune import LoraFineTuner
    from llmrl.config import EnvConfig
    from llmrl.envs.registry import make_task
    from llmrl.teacher.backends.hf import prompt_format

    base = adapter_base_model(cfg)
    tuner = LoraFineTuner(base, acfg, cfg.teacher.hf.max_prompt_tokens)
    if not tuner.packed_scoring:
        print(f"error: {base} cannot take the packed scoring (its attention ignores custom masks)", file=sys.stderr)
        return 2
    prompts = prompt_format(teacher_chat_template(cfg), tuner.tokenizer, base)
    task = make_task(EnvConfig(name="SimpleDoorKey"))
    description = task.task_description()
    task.close()
    pairs = labelled_pairs(args.pairs, args.seed)
    started, load_before = today(), load_average()
    rows = {name: measure_bank(tuner, prompts, pairs, bank_of(name, description), args.repeats)
            for name in args.banks}
    report = {"command": "llmrl bench finetune " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": started, "load_before": load_before, "load_after": load_average(),
              "config": args.config, "base_model": base,
              "adapter": {k: getattr(acfg, k) for k in ("r", "alpha", "lr", "epochs", "batch_size", "loss")},
              "banks": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune.json").write_text(json.dumps(report, indent=2))
    text = table(rows)
    (out / "finetune.md").write_text(text + "\n")
    print(text)
    print(f"load {load_before} -> {report['load_after']}; wrote {out / 'finetune.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
