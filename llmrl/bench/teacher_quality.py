"""``llmrl bench teacher-quality CONFIG [CHECKPOINT] [key=value ...]``: how good is the configured teacher?

On seeded evaluation episodes it compares the teacher's advice with the environment family's scripted planner
(``planner_module(family).correct_option``; on Crafter that is the tech-tree planner, so the figure is the
teacher's sub-goal agreement with it). Two state distributions are measured, both on the same seeds:

* ``planner``: the states the scripted planner (no errors) visits acting alone: what a competent agent sees;
* ``teacher``: the states the measured teacher visits acting alone. Those same episodes give its success
  acting alone (``training.evaluate.teacher_alone``, the episodes ``llmrl eval --teacher`` plays).

For each distinct state (``TeacherQuery.key()``: the state text and admissible options, and on Crafter the
context line the teacher also reads) it asks the teacher once and reports, over states with a choice (two or
more options: a single-option state says nothing about the teacher), weighted per distinct state and per visit:

* top-1 accuracy: how often the teacher's highest-rated option (the one the env follows) is the planner's;
* the probability mass on the planner's option (the accuracy of a plan drawn from the teacher's distribution);
* the entropy of the advice distribution, in nats and divided by log(number of options);
* states with no advice (an unparseable LM answer): counted, and wrong for top-1 with mass 0.

It also reports LM calls and backend time per call from the service's own counters. The teacher runs in this
process (a ``TeacherService`` without Ray over ``make_backend``), so the LM loads once and no advice times out;
``--via-service`` measures the success acting alone once more through the Ray service, as training serves it.

With a CHECKPOINT (``<run>/checkpoints/iter_N`` or a run folder) the teacher answers with that run's prompt
bank (``training.teacher_state``), i.e. as it was at that point of training; without one, with the initial
bank (task description only), as training starts. Prints a table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.config import Config, ConfigError, load_config
from llmrl.messages import Advice, TeacherQuery

DISTRIBUTIONS = ("planner", "teacher")


class LocalAdvice:
    """An in-process ``TeacherService`` (no Ray) behind the ``AdviceSource`` interface; records every query
    asked (the visited states, with visit counts, in order of first visit)."""

    def __init__(self, service: Any):
        self.service = service
        self._loop = asyncio.new_event_loop()
        self.visits: dict[tuple, list] = {}  # query key -> [query, visits]

    def request(self, query: TeacherQuery) -> Advice | None:
        self.visits.setdefault(query.key(), [query, 0])[1] += 1
        advice = self.advise(query)
        return advice if advice.has_advice else None

    def run(self, coroutine: Any) -> Any:
        """Run one of the service's coroutines on this source's event loop (the service's tasks live there)."""
        return self._loop.run_until_complete(coroutine)

    def note_advised_step(self, advice: Advice) -> None:
        """Nothing to count: in process every answer is waited for under the bank in use, so none is stale."""

    def advise(self, query: TeacherQuery) -> Advice:
        """The service's answer, without recording a visit (repeated states come from its cache)."""
        return self.run(self.service.advise([query]))[0]

    def stats(self) -> dict[str, float]:
        s = self.service.stats()
        return {"llm_calls": float(s.llm_calls), "requests": float(s.requests), "cache_hits": float(s.cache_hits),
                "batches": float(s.batches), "no_advice": float(s.no_advice),
                "invalid_outputs": float(s.invalid_outputs), "backend_s": s.latency_s_sum}

    def close(self) -> None:
        self._loop.run_until_complete(self.service.close())
        self._loop.close()


# -- the arithmetic (pure, tested on hand-made advice) ---------------------------------------------------------


def entropy(probs: Sequence[float]) -> float:
    """Shannon entropy in nats of a (renormalised) distribution."""
    total = float(sum(probs))
    return -sum(p / total * math.log(p / total) for p in probs if p > 0) if total > 0 else float("nan")


def _mean(values: Sequence[float], weights: Sequence[float]) -> float:
    total = float(sum(weights))
    return sum(v * w for v, w in zip(values, weights)) / total if total > 0 else float("nan")


def score_states(rows: Sequence[tuple[TeacherQuery, int, Advice]],
                 correct_option: Callable[[str, tuple[str, ...]], str]) -> dict[str, Any]:
    """Quality figures over (query, visits, advice) rows, one per distinct state (see the module docstring)."""
    top1, mass, ent, norm_ent, visits, advised_visits = [], [], [], [], [], []
    no_advice = 0
    for query, n, advice in rows:
        if len(query.options) < 2:
            continue
        correct = correct_option(query.state_text, query.options)
        visits.append(n)
        if not advice.has_advice:
            no_advice += 1
            top1.append(0.0)
            mass.append(0.0)
            continue
        p = dict(zip(advice.options, advice.probs))
        total = float(sum(advice.probs))
        top1.append(float(advice.best() == correct))
        mass.append(p.get(correct, 0.0) / total if total > 0 else 0.0)
        h = entropy(advice.probs)
        ent.append(h)
        norm_ent.append(h / math.log(len(query.options)))
        advised_visits.append(n)
    ones = [1.0] * len(top1)
    return {
        "distinct_states": len(rows),
        "visits": int(sum(n for _, n, _ in rows)),
        "states_with_choice": len(top1),
        "visits_with_choice": int(sum(visits)),
        "no_advice_states": no_advice,
        "top1_accuracy": _mean(top1, ones),
        "top1_accuracy_per_visit": _mean(top1, visits),
        "correct_mass": _mean(mass, ones),
        "correct_mass_per_visit": _mean(mass, visits),
        "entropy_nats": _mean(ent, [1.0] * len(ent)),
        "entropy_nats_per_visit": _mean(ent, advised_visits),
        "normalized_entropy": _mean(norm_ent, [1.0] * len(norm_ent)),
    }


def state_row(query: TeacherQuery, visits: int, advice: Advice,
              correct_option: Callable[[str, tuple[str, ...]], str]) -> dict[str, Any]:
    """One distinct state as the report lists it: what the teacher saw, the planner's option, the advice."""
    return {"state": query.state_text, "context": query.context, "visits": visits,
            "planner": correct_option(query.state_text, query.options), "teacher_best": advice.best(),
            "advice": dict(zip(advice.options, advice.probs)) if advice.has_advice else None,
            "reason": advice.reason}


# -- the measurement ---------------------------------------------------------------------------------------------


def _planner_config(cfg: Config) -> Config:
    return dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, backend="scripted", error_rate=0.0))


def local_source(cfg: Config, bank: Any, adapter: Any = None, kind: type[LocalAdvice] = LocalAdvice) -> LocalAdvice:
    """An in-process teacher service answering with ``bank`` and ``adapter`` (a refused adapter is an error)."""
    from llmrl.teacher.service import TeacherService
    from llmrl.training.teacher_state import adapter_refused

    from llmrl.config import adapter_base_model, analyst_config

    service = TeacherService(cfg.teacher, cfg.teacher.seed, adapter_base_model=adapter_base_model(cfg),
                             analyst=analyst_config(cfg))
    service.set_bank(bank)
    source = kind(service)
    if adapter is not None and not source.run(service.load_adapter(adapter)):
        source.close()
        raise adapter_refused(adapter)
    return source


def success_alone(setup: Any, episodes: int) -> dict[str, Any]:
    """The teacher of ``setup`` acting alone, in process: every new state waits for its answer, so the figure
    is the teacher's quality, not its latency on a busy machine (over Ray, advice later than
    ``teacher.advice_timeout_s`` becomes a random action)."""
    from llmrl.training.evaluate import teacher_alone

    source = local_source(setup.cfg, setup.bank, setup.adapter)
    try:
        return {**teacher_alone(setup.cfg, episodes, source), "bank_version": setup.bank.version,
                "adapter_version": setup.adapter_version,
                "lm": source.stats()}
    finally:
        source.close()


def measure(setup: Any, episodes: int, max_states: int = 0) -> dict[str, Any]:
    """The teacher of ``setup`` (a ``training.teacher_state.TeacherSetup``) on ``episodes`` seeded episodes."""
    from llmrl.envs.registry import planner_module
    from llmrl.training.evaluate import teacher_alone

    cfg = setup.cfg
    planner_cfg = _planner_config(cfg)
    planner = local_source(planner_cfg, setup.bank)
    t0 = time.perf_counter()
    planner_alone = teacher_alone(planner_cfg, episodes, planner)
    planner.close()
    teacher = local_source(cfg, setup.bank, setup.adapter)
    try:
        alone = teacher_alone(cfg, episodes, teacher)
        visited = {"planner": list(planner.visits.values()), "teacher": list(teacher.visits.values())}
        correct = planner_module(cfg.env.family).correct_option
        figures = {}
        for name, visits in visited.items():
            chosen = visits[:max_states] if max_states > 0 else visits
            rows = [(q, n, teacher.advise(q)) for q, n in chosen]
            figures[name] = score_states(rows, correct)
            figures[name]["capped_at"] = max_states if 0 < max_states < len(visits) else None
            figures[name]["states"] = [state_row(q, n, a, correct) for q, n, a in rows]
        lm = teacher.stats()
    finally:
        teacher.close()
    lm["ms_per_call"] = 1000.0 * lm["backend_s"] / lm["llm_calls"] if lm["llm_calls"] else float("nan")
    return {"distributions": figures, "teacher_alone": alone, "planner_alone": planner_alone, "lm": lm,
            "wall_s": time.perf_counter() - t0}


def resolve(config: str, checkpoint: str | None, overrides: list[str]) -> Any:
    """CONFIG's teacher; with CHECKPOINT, answering with that run's prompt bank and adapter (everything the
    checkpoint's teacher carries besides its config comes along, see ``teacher_state.TeacherSetup``)."""
    from llmrl.training.teacher_state import teacher_of_checkpoint, teacher_of_config

    if checkpoint is None:
        return teacher_of_config(config, overrides)
    cfg = load_config(config, overrides)
    of_run = teacher_of_checkpoint(checkpoint)
    if of_run.cfg.env.name != cfg.env.name:
        raise ConfigError(f"env.name: the checkpoint's run trained on {of_run.cfg.env.name}, the config is "
                          f"{cfg.env.name}")
    return dataclasses.replace(of_run, cfg=cfg, origin=f"config {config} with the prompt bank of {of_run.origin}")


def _teacher_name(cfg: Config) -> str:
    backend = cfg.teacher.backend
    model = {"hf": cfg.teacher.hf.model, "vllm": cfg.teacher.vllm.model, "openai": cfg.teacher.openai.model}
    detail = model.get(backend) or (f"error_rate {cfg.teacher.error_rate}" if backend == "scripted" else "")
    return f"{backend} ({detail})" if detail else backend


def table(report: dict[str, Any]) -> str:
    agreement = "sub-goal agreement" if report["family"] == "crafter" else "top-1 accuracy"
    rows = []
    for name in DISTRIBUTIONS:
        f = report["distributions"][name]
        rows.append([name, f["distinct_states"], f["states_with_choice"], f["visits_with_choice"],
                     f["top1_accuracy"], f["top1_accuracy_per_visit"], f["correct_mass"],
                     f["correct_mass_per_visit"], f["entropy_nats"], f["normalized_entropy"], f["no_advice_states"]])
    states = markdown_table(
        ["states visited by", "distinct", "with a choice", "visits (choice)", agreement, f"{agreement} per visit",
         "p(correct)", "p(correct) per visit", "entropy (nats)", "entropy / log K", "no advice"], rows)
    lm, alone, planner = report["lm"], report["teacher_alone"], report["planner_alone"]
    summary = markdown_table(
        ["teacher", "success alone", "planner alone", "episodes", "LM calls", "ms per call", "unadvised steps"],
        [[report["teacher"], alone["success"], planner["success"], alone["episodes"], int(lm["llm_calls"]),
          lm["ms_per_call"], alone["unadvised_steps"]]])
    return states + "\n\n" + summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench teacher-quality",
                                description="Plan accuracy, entropy, success alone and LM cost of a teacher.")
    p.add_argument("args", nargs="+", metavar="CONFIG [CHECKPOINT] [key=value ...]")
    p.add_argument("--episodes", type=int, default=20, help="seeded episodes per state distribution")
    p.add_argument("--max-states", type=int, default=0, help="score at most this many distinct states (0: all)")
    p.add_argument("--via-service", action="store_true",
                   help="also measure the success alone through the Ray teacher service (llmrl eval --teacher)")
    p.add_argument("--out", default="", help="JSON file to write")
    args = p.parse_args(argv)
    paths = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    if not 1 <= len(paths) <= 2:
        raise ConfigError(f"expected CONFIG [CHECKPOINT] then key=value overrides, got {' '.join(paths)}")
    if args.episodes <= 0:
        raise ConfigError(f"--episodes: must be > 0, got {args.episodes}")
    setup = resolve(paths[0], paths[1] if len(paths) == 2 else None, overrides)
    load_before = load_average()
    result = measure(setup, args.episodes, args.max_states)
    report = {
        "date": today(), "machine": machine(), "load_average_before": load_before, "load_average_after": "",
        "command": "llmrl bench teacher-quality " + " ".join(argv if argv is not None else sys.argv[1:]),
        "env": setup.cfg.env.name, "family": setup.cfg.env.family, "teacher": _teacher_name(setup.cfg),
        "teacher_of": setup.origin, "bank_version": setup.bank.version, "adapter_version": setup.adapter_version,
        "bank_exemplars": len(setup.bank.exemplars), "bank_feedback_lines": len(setup.bank.feedback_lines),
        **result,
    }
    if args.via_service:
        from llmrl.training.evaluate import evaluate_teacher

        report["teacher_alone_via_service"] = evaluate_teacher(setup.cfg, args.episodes, setup.bank, setup.adapter)
    report["load_average_after"] = load_average()
    print(table(report))
    if args.via_service:
        print(f"success alone via the Ray service: {report['teacher_alone_via_service']['success']:.3g}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.out}")
    return 0
