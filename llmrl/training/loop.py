"""The training loop shared by ``llmrl train`` (local) and ``python -m llmrl.job`` (cluster).

Each iteration: RLlib samples and updates (PPO + distillation) and evaluates; the loop reads the teacher and
feedback actors' counters, writes a metrics row, prints progress, and checkpoints. A resumed run continues
the same run folder, env-step count, lambda schedule (learner state) and prompt bank.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from llmrl.config import Config
from llmrl.training.checkpoint import load_checkpoint, save_checkpoint
from llmrl.training.metrics import MetricsWriter

logger = logging.getLogger(__name__)

SUCCESS_KEY = "llmrl/success"


@dataclass
class LoopState:
    """What the loop itself must carry across a resume (RLlib and the bank carry the rest)."""

    iteration: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    steps_to_success: int | None = None
    best_eval_success: float = 0.0
    teacher_totals: dict[str, float] = field(default_factory=dict)  # counters of replicas that were restarted
    teacher_restarts: int = 0
    client_totals: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, Any] = field(default_factory=dict)
    train_episodes: int = 0  # Crafter: training episodes so far ...
    train_achievements: dict[str, float] = field(default_factory=dict)  # ... and in how many each was unlocked
    adapter_trainer_restarts: int = 0  # Ray restarts of the adapter trainer seen (its counters persist by themselves)


class TeacherMonitor:
    """Sums the counters of every teacher replica across Ray restarts (a restarted replica starts at zero)."""

    COUNTERS = ("requests", "llm_calls", "cache_hits", "batches", "batched_prompts", "no_advice", "invalid_outputs",
                "deduplicated", "latency_s_sum", "adapter_loads", "adapter_load_failures")

    def __init__(self, handles: list[Any], state: LoopState):
        self.handles = handles
        self.state = state
        self._last: dict[int, Any] = {}
        self.unreachable_polls = 0

    def poll(self) -> dict[str, float]:
        import ray

        totals = dict.fromkeys(self.COUNTERS, 0.0)
        for i, handle in enumerate(self.handles):
            try:
                stats = ray.get(handle.stats.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - a restarting replica is reported, not fatal
                self.unreachable_polls += 1
                stats = None
            last = self._last.get(i)
            if stats is not None and last is not None and stats.instance_id != last.instance_id:
                self.state.teacher_restarts += 1
                for k in self.COUNTERS:
                    self.state.teacher_totals[k] = self.state.teacher_totals.get(k, 0.0) + getattr(last, k)
            if stats is not None:
                self._last[i] = stats
            current = self._last.get(i)
            if current is not None:
                for k in self.COUNTERS:
                    totals[k] += getattr(current, k)
        for k in self.COUNTERS:
            totals[k] += self.state.teacher_totals.get(k, 0.0)
        totals["replicas_serving"] = float(sum(1 for s in self._last.values() if s.requests > 0))
        return totals

    def bank_version(self) -> int:
        return max((s.bank_version for s in self._last.values()), default=0)

    def adapter_version(self) -> int:
        """The oldest adapter version a replica serves (all replicas reach the newest within a poll period)."""
        return min((s.adapter_version for s in self._last.values()), default=0)


class AdapterMonitor:
    """The adapter trainer's counters for the metrics row (the trainer keeps them across its restarts) and its
    restarts, counted by instance id."""

    COUNTERS = ("attempts", "accepted", "rejected", "diverged", "out_of_memory", "failed", "no_pairs", "train_s")

    def __init__(self, handle: Any, state: LoopState):
        self.handle = handle
        self.state = state
        self._last: Any = None

    def poll(self) -> dict[str, float]:
        import ray

        try:
            stats = ray.get(self.handle.stats.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a restarting trainer is reported by its instance id later
            stats = None
        last = self._last
        if stats is not None and last is not None and stats.instance_id != last.instance_id:
            self.state.adapter_trainer_restarts += 1
        if stats is not None:
            self._last = stats
        row: dict[str, float] = {"adapter_trainer_restarts": float(self.state.adapter_trainer_restarts)}
        current = self._last
        for k in self.COUNTERS:
            row[f"adapter_{k}"] = float(getattr(current, k)) if current else 0.0
        row["adapter_version"] = float(current.version if current else 0)
        row["adapter_pairs"] = float(current.pairs if current else 0)
        row["adapter_heldout_loss"] = current.heldout_loss if current else math.nan
        return row


def make_run_dir(cfg: Config) -> Path:
    if cfg.run.resume:
        # Resuming continues the run the checkpoint belongs to: <run>/checkpoints/<ckpt>.
        return Path(cfg.run.resume).resolve().parent.parent
    name = cfg.run.name or f"{cfg.env.name}-{cfg.teacher.backend}-s{cfg.run.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.run.out_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _get(d: dict[str, Any], *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def metrics_row(result: dict[str, Any], state: LoopState, teacher: dict[str, float], iter_steps: int,
                iter_s: float, bank_version: int) -> dict[str, Any]:
    runners = result.get("env_runners", {})
    learner = _get(result, "learners", "default_policy", default={})
    client = state.client_totals
    requests = client.get("teacher_client/requests", 0.0)
    llm_calls = teacher.get("llm_calls", 0.0)
    evaluation = _get(result, "evaluation", "env_runners", default=None)
    if evaluation:
        state.last_eval = {
            "eval_success": float(evaluation.get(SUCCESS_KEY, math.nan)),
            "eval_return": float(evaluation.get("episode_return_mean", math.nan)),
            "eval_achievements": {k.split("/")[-1]: float(v) for k, v in evaluation.items() if k.startswith("llmrl/ach/")},
        }
    row = {
        "iteration": state.iteration,
        "env_steps": state.env_steps,
        "wall_s": state.wall_s,
        "env_steps_per_s": iter_steps / iter_s if iter_s > 0 else 0.0,
        "iter_env_steps": iter_steps,
        "iter_s": iter_s,
        # RLlib's phase timers (sampling / learning / evaluation). RLlib reports them as exponential moving averages
        # (coefficient 0.01), not this iteration's times: bench.scaling undoes the average, bench.overhead times
        # sampling itself.
        "sample_s": float(_get(result, "timers", "env_runner_sampling_timer", default=math.nan)),
        "learn_s": float(_get(result, "timers", "learner_update_timer", default=math.nan)),
        "eval_s": float(_get(result, "timers", "evaluation_iteration", default=0.0)),
        "episode_return_mean": float(runners.get("episode_return_mean", math.nan)),
        "episode_len_mean": float(runners.get("episode_len_mean", math.nan)),
        "train_success": float(runners.get(SUCCESS_KEY, math.nan)),
        "eval_success": state.last_eval.get("eval_success", math.nan),
        "eval_return": state.last_eval.get("eval_return", math.nan),
        "distill_coef": float(learner.get("distill_coef", math.nan)),
        "distill_ce": float(learner.get("distill_ce", math.nan)),
        "advised_frac": float(learner.get("advised_frac", math.nan)),
        "policy_loss": float(learner.get("policy_loss", math.nan)),
        "teacher_requests": requests,
        "teacher_llm_calls": llm_calls,
        "teacher_llm_calls_per_s": teacher.get("_llm_calls_delta", 0.0) / iter_s if iter_s > 0 else 0.0,
        "teacher_cache_hit_rate": (1.0 - llm_calls / requests) if requests else 0.0,
        "teacher_service_requests": teacher.get("requests", 0.0),
        "teacher_mean_batch_size": (teacher["batched_prompts"] / teacher["batches"]) if teacher.get("batches") else 0.0,
        "teacher_invalid_outputs": teacher.get("invalid_outputs", 0.0),
        "teacher_no_advice": teacher.get("no_advice", 0.0),
        "teacher_restarts": state.teacher_restarts,
        "teacher_replicas_serving": teacher.get("replicas_serving", 0.0),
        # Requests answered "no advice" because of teacher trouble: a failed or timed-out call, an unavailable
        # backend, or skipped while backing off after one of those.
        "teacher_fallbacks": sum(client.get(f"teacher_client/{k}", 0.0)
                                 for k in ("failures", "timeouts", "unavailable", "skipped_backoff")),
        "teacher_client_failures": client.get("teacher_client/failures", 0.0),
        "teacher_client_timeouts": client.get("teacher_client/timeouts", 0.0),
        "teacher_wait_s": client.get("teacher_client/wait_s", 0.0),
        "feedback_sent": client.get("feedback/sent", 0.0),
        "bank_version": bank_version,
    }
    for name, rate in state.last_eval.get("eval_achievements", {}).items():
        row[f"eval_ach/{name}"] = rate
    return row


def _percent(counts: dict[str, float], episodes: int) -> dict[str, float]:
    from llmrl.envs.crafter.score import ACHIEVEMENTS

    return {name: 100.0 * counts.get(name, 0.0) / episodes if episodes else 0.0 for name in ACHIEVEMENTS}


def crafter_metrics(result: dict[str, Any], state: LoopState) -> dict[str, Any]:
    """Crafter scores (percent) for the metrics row: ``crafter_score`` from the last evaluation (as the summary),
    ``train_crafter_score`` from every training episode so far, which is how the Crafter benchmark scores an
    agent (success rates over all episodes within the step budget), per-achievement training rates, and the
    return of Crafter's own reward (``episode_return_mean`` includes the intrinsic bonus)."""
    from llmrl.envs.crafter.score import crafter_score
    from llmrl.rl.callbacks import ACHIEVEMENT_COUNT_PREFIX, ACHIEVEMENT_EPISODES, ENV_RETURN

    runners = result.get("env_runners", {})
    state.train_episodes += int(runners.get(ACHIEVEMENT_EPISODES, 0))
    for key, value in runners.items():
        if key.startswith(ACHIEVEMENT_COUNT_PREFIX):
            name = key[len(ACHIEVEMENT_COUNT_PREFIX):]
            state.train_achievements[name] = state.train_achievements.get(name, 0.0) + float(value)
    evaluated = state.last_eval.get("eval_achievements", {})
    train_rates = _percent(state.train_achievements, state.train_episodes)
    row: dict[str, Any] = {
        "crafter_score": crafter_score({n: 100.0 * r for n, r in evaluated.items()}) if evaluated else math.nan,
        "train_crafter_score": crafter_score(train_rates) if state.train_episodes else math.nan,
        "train_episodes": state.train_episodes,
        "env_return_mean": float(runners.get(ENV_RETURN, math.nan)),
    }
    row.update({f"train_ach/{name}": rate / 100.0 for name, rate in train_rates.items()})
    return row


def train(cfg: Config, stream: TextIO | None = sys.stdout) -> dict[str, Any]:
    """Run (or resume) one training run; returns the summary that is also written to ``summary.json``."""
    from llmrl.training.graph import build_graph, init_ray

    run_dir = make_run_dir(cfg)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    started_ray = init_ray(cfg)
    graph = None
    writer = MetricsWriter(run_dir, stream=stream)
    try:
        graph = build_graph(cfg, run_dir)
        state = LoopState()
        if cfg.run.resume:
            state = load_checkpoint(Path(cfg.run.resume), graph, LoopState)
            if stream is not None:
                print(f"resumed from {cfg.run.resume} at {state.env_steps} env steps", file=stream, flush=True)
        monitor = TeacherMonitor(graph.teachers, state)
        adapters = AdapterMonitor(graph.adapter_trainer, state) if graph.adapter_trainer is not None else None
        last_llm_calls = monitor.poll()["llm_calls"] if graph.teachers else 0.0
        last_ckpt = None
        while state.env_steps < cfg.run.max_env_steps:
            t0 = time.perf_counter()
            result = graph.algo.train()
            iter_s = time.perf_counter() - t0
            state.iteration += 1
            iter_steps = int(_get(result, "env_runners", "num_env_steps_sampled", default=0))
            state.env_steps += iter_steps
            state.wall_s += iter_s
            # Crafter evaluation keeps its teacher, so its client's counters count too.
            evaluation = _get(result, "evaluation", "env_runners", default={})
            for key, value in [*result.get("env_runners", {}).items(), *evaluation.items()]:
                if key.startswith(("llmrl/teacher_client/", "llmrl/feedback/")):
                    short = key[len("llmrl/"):]
                    state.client_totals[short] = state.client_totals.get(short, 0.0) + float(value)
            teacher = monitor.poll() if graph.teachers else {}
            if teacher:
                teacher["_llm_calls_delta"] = teacher["llm_calls"] - last_llm_calls
                last_llm_calls = teacher["llm_calls"]
            row = metrics_row(result, state, teacher, iter_steps, iter_s, monitor.bank_version())
            if cfg.env.family == "crafter":
                row.update(crafter_metrics(result, state))
            if adapters is not None:
                row.update(adapters.poll())
                row["teacher_adapter_version"] = monitor.adapter_version()
                row["teacher_adapter_loads"] = teacher.get("adapter_loads", 0.0)
                row["teacher_adapter_load_failures"] = teacher.get("adapter_load_failures", 0.0)
            success = row["eval_success"]
            if not math.isnan(success):
                state.best_eval_success = max(state.best_eval_success, success)
                if state.steps_to_success is None and success >= cfg.run.success_threshold:
                    state.steps_to_success = state.env_steps
            writer.write(row)
            if state.iteration % cfg.run.checkpoint_every == 0:
                last_ckpt = save_checkpoint(run_dir, graph, state)
            if cfg.run.stop_on_success and state.steps_to_success is not None:
                break
        last_ckpt = save_checkpoint(run_dir, graph, state)
        summary = build_summary(cfg, state, row if state.iteration else {}, last_ckpt, run_dir)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        if stream is not None:
            print(f"run folder: {run_dir}", file=stream, flush=True)
        return summary
    finally:
        writer.close()
        if graph is not None:
            graph.stop()
        if started_ray:
            import ray

            ray.shutdown()
        from llmrl.rl.callbacks import forget_process_counters

        forget_process_counters()


def build_summary(cfg: Config, state: LoopState, row: dict[str, Any], checkpoint: Path | None,
                  run_dir: Path) -> dict[str, Any]:
    def finite(x: Any) -> Any:
        return None if isinstance(x, float) and math.isnan(x) else x

    summary = {
        "env": cfg.env.name,
        "teacher_backend": cfg.teacher.backend,
        "seed": cfg.run.seed,
        "env_steps": state.env_steps,
        "iterations": state.iteration,
        "wall_s": state.wall_s,
        "env_steps_per_s": state.env_steps / state.wall_s if state.wall_s else 0.0,
        "eval_success": finite(row.get("eval_success", math.nan)),
        "eval_return": finite(row.get("eval_return", math.nan)),
        "best_eval_success": state.best_eval_success,
        "success_threshold": cfg.run.success_threshold,
        "steps_to_success": state.steps_to_success,
        "teacher_requests": row.get("teacher_requests", 0.0),
        "teacher_llm_calls": row.get("teacher_llm_calls", 0.0),
        "teacher_cache_hit_rate": row.get("teacher_cache_hit_rate", 0.0),
        "teacher_mean_batch_size": row.get("teacher_mean_batch_size", 0.0),
        "teacher_invalid_outputs": row.get("teacher_invalid_outputs", 0.0),
        "teacher_restarts": state.teacher_restarts,
        "teacher_fallbacks": row.get("teacher_fallbacks", 0.0),
        "teacher_no_advice": row.get("teacher_no_advice", 0.0),
        "distill_coef": finite(row.get("distill_coef", math.nan)),
        "bank_version": row.get("bank_version", 0),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "run_dir": str(run_dir),
    }
    if cfg.adapter.enabled:
        summary["adapter_trainer_restarts"] = state.adapter_trainer_restarts
        for key in ("adapter_version", "teacher_adapter_version", "adapter_attempts", "adapter_accepted",
                    "adapter_rejected", "adapter_diverged", "adapter_out_of_memory", "adapter_failed",
                    "adapter_no_pairs", "adapter_pairs", "teacher_adapter_loads", "teacher_adapter_load_failures"):
            summary[key] = row.get(key, 0)
        summary["adapter_heldout_loss"] = finite(row.get("adapter_heldout_loss", math.nan))
    if cfg.env.family == "crafter":
        from llmrl.envs.crafter.score import ACHIEVEMENTS, crafter_score

        rates = {name: 100.0 * state.last_eval.get("eval_achievements", {}).get(name, 0.0) for name in ACHIEVEMENTS}
        summary["achievements"] = rates
        summary["crafter_score"] = crafter_score(rates)
        train_rates = _percent(state.train_achievements, state.train_episodes)
        summary["train_episodes"] = state.train_episodes
        summary["train_achievements"] = train_rates
        summary["train_crafter_score"] = crafter_score(train_rates)
    return summary
