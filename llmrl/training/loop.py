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
from llmrl.envs.registry import family_spec
from llmrl.messages import ADAPTER_TRAINER_COUNTERS
from llmrl.training.checkpoint import load_checkpoint, save_checkpoint
from llmrl.training.metrics import MetricsWriter
from llmrl.training.restarts import RestartCounter
from llmrl.training.stopping import GracefulStop

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
    family_state: dict[str, Any] = field(default_factory=dict)  # running totals of the family's metrics (JSON)
    actor_restarts: dict[str, int] = field(default_factory=dict)  # Ray restarts per watched actor (restarts.py)


class TeacherMonitor:
    """Sums the counters of every teacher replica across Ray restarts (a restarted replica starts at zero)."""

    COUNTERS = ("requests", "llm_calls", "cache_hits", "batches", "batched_prompts", "no_advice", "invalid_outputs",
                "deduplicated", "latency_s_sum", "rescored", "adapter_loads", "adapter_load_failures",
                "analyst_calls", "analyses", "analyses_empty", "analyst_failures")
    ANALYST = ("analyst_calls", "analyses", "analyses_empty", "analyst_failures")  # rows: teacher_<name>

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

    def extra_totals(self) -> dict[str, float]:
        """The replicas' extra counters (teacher log, backend), summed over their current instances."""
        totals: dict[str, float] = {}
        for stats in self._last.values():
            for k, v in stats.extra:
                totals[k] = totals.get(k, 0.0) + v
        return totals

    def adapter_version(self) -> int:
        """The oldest adapter version a replica serves (all replicas reach the newest within a poll period)."""
        return min((s.adapter_version for s in self._last.values()), default=0)


class AdapterMonitor:
    """The adapter trainer's counters for the metrics row (the trainer keeps them across its restarts; its
    restarts are counted with the other actors', ``training.restarts``)."""

    COUNTERS = (*ADAPTER_TRAINER_COUNTERS, "train_s")

    def __init__(self, handle: Any):
        self.handle = handle
        self._last: Any = None

    def poll(self) -> dict[str, float]:
        import ray

        try:
            self._last = ray.get(self.handle.stats.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a restarting trainer: its last counters stand until it answers again
            pass
        row: dict[str, float] = {}
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


def sampled_steps(result: dict[str, Any]) -> int:
    """Env steps the iteration sampled. An iteration whose only env runner died mid-sample (RLlib restarts it,
    ``restart_failed_env_runners``) returned no samples, and RLlib reports the count as NaN: that is 0 steps."""
    steps = _get(result, "env_runners", "num_env_steps_sampled", default=0)
    return int(steps) if steps == steps else 0


def add_client_counters(totals: dict[str, float], result: dict[str, Any]) -> None:
    """Add the iteration's teacher-client and feedback counters (summed over env runners) to the run's totals.
    Evaluation may keep its teacher (FamilySpec.eval_with_teacher), so its client's counters count too. An
    iteration whose env runner died reports NaN for what it lost: that adds nothing, rather than making every
    later total NaN."""
    evaluation = _get(result, "evaluation", "env_runners", default={})
    for key, value in [*result.get("env_runners", {}).items(), *evaluation.items()]:
        if key.startswith(("llmrl/teacher_client/", "llmrl/feedback/")) and math.isfinite(float(value)):
            short = key[len("llmrl/"):]
            totals[short] = totals.get(short, 0.0) + float(value)


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


def hot_path_metrics(result: dict[str, Any], state: LoopState, teacher: dict[str, float]) -> dict[str, Any]:
    """How well the teacher kept off the env runners' hot path when the prompt bank moved on (cumulative counts):
    env steps guided by advice from a bank version already superseded, of all advised steps, and this iteration's
    fraction of them; requests answered with such advice (``stale_served``); answers the service re-scored in the
    background for a new bank before runners asked; the seconds the backend spent answering, all replicas summed
    (with ``wall_s``: how busy the LM was)."""
    client = state.client_totals
    runners = result.get("env_runners", {})
    iter_advised = float(runners.get("llmrl/teacher_client/advised_steps", 0.0))
    iter_stale = float(runners.get("llmrl/teacher_client/stale_steps", 0.0))
    return {
        "teacher_advised_steps": client.get("teacher_client/advised_steps", 0.0),
        "teacher_stale_steps": client.get("teacher_client/stale_steps", 0.0),
        "teacher_iter_stale_step_frac": iter_stale / iter_advised if iter_advised else 0.0,
        "teacher_stale_served": client.get("teacher_client/stale_served", 0.0),
        "teacher_rescored": teacher.get("rescored", 0.0),
        "teacher_backend_busy_s": teacher.get("latency_s_sum", 0.0),
    }


def hot_path_summary(row: dict[str, Any]) -> dict[str, Any]:
    advised = row.get("teacher_advised_steps", 0.0)
    return {
        "teacher_wait_s": row.get("teacher_wait_s", 0.0),
        "teacher_advised_steps": advised,
        "teacher_stale_steps": row.get("teacher_stale_steps", 0.0),
        "teacher_stale_step_frac": row.get("teacher_stale_steps", 0.0) / advised if advised else 0.0,
        "teacher_stale_served": row.get("teacher_stale_served", 0.0),
        "teacher_rescored": row.get("teacher_rescored", 0.0),
        "teacher_backend_busy_s": row.get("teacher_backend_busy_s", 0.0),
    }


def train(cfg: Config, stream: TextIO | None = sys.stdout) -> dict[str, Any]:
    """Run (or resume) one training run; returns the summary that is also written to ``summary.json``."""
    from llmrl.training.graph import build_graph, init_ray

    spec = family_spec(cfg.env.name)
    run_dir = make_run_dir(cfg)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    started_ray = init_ray(cfg)
    graph = None
    writer = MetricsWriter(run_dir, stream=stream)
    stop = GracefulStop()
    try:
        stop.install()
        graph = build_graph(cfg, run_dir)
        state = LoopState()
        if cfg.run.resume:
            state = load_checkpoint(Path(cfg.run.resume), graph, LoopState)
            if stream is not None:
                print(f"resumed from {cfg.run.resume} at {state.env_steps} env steps", file=stream, flush=True)
        monitor = TeacherMonitor(graph.teachers, state)
        restarts = RestartCounter(graph.restartable_actors(), state.actor_restarts)
        restarts.poll()
        adapters = AdapterMonitor(graph.adapter_trainer) if graph.adapter_trainer is not None else None
        last_llm_calls = monitor.poll()["llm_calls"] if graph.teachers else 0.0
        last_ckpt = None
        row: dict[str, Any] = {}
        while state.env_steps < cfg.run.max_env_steps and not stop.requested:
            t0 = time.perf_counter()
            result = graph.algo.train()
            iter_steps = sampled_steps(result)
            if (cfg.run.final_eval and state.env_steps + iter_steps >= cfg.run.max_env_steps
                    and not _get(result, "evaluation", "env_runners")):
                # The run ends with this iteration, which did not evaluate: score the final policy, so the summary's
                # eval fields describe it. RLlib's evaluate() returns what train() puts under "evaluation".
                result["evaluation"] = graph.algo.evaluate()
            iter_s = time.perf_counter() - t0
            state.iteration += 1
            state.env_steps += iter_steps
            state.wall_s += iter_s
            add_client_counters(state.client_totals, result)
            teacher = monitor.poll() if graph.teachers else {}
            if teacher:
                teacher["_llm_calls_delta"] = teacher["llm_calls"] - last_llm_calls
                last_llm_calls = teacher["llm_calls"]
            row = metrics_row(result, state, teacher, iter_steps, iter_s, monitor.bank_version())
            if spec.metrics is not None:
                row.update(spec.metrics(result, state))
            row.update(restarts.poll())
            row.update(hot_path_metrics(result, state, teacher))
            if adapters is not None:
                row.update(adapters.poll())
                row["teacher_adapter_version"] = monitor.adapter_version()
                row["teacher_adapter_loads"] = teacher.get("adapter_loads", 0.0)
                row["teacher_adapter_load_failures"] = teacher.get("adapter_load_failures", 0.0)
                if cfg.adapter.role == "analyst":
                    row.update({f"teacher_{k}": teacher.get(k, 0.0) for k in TeacherMonitor.ANALYST})
            success = row["eval_success"]
            if not math.isnan(success):
                state.best_eval_success = max(state.best_eval_success, success)
                if state.steps_to_success is None and success >= cfg.run.success_threshold:
                    # A parallel evaluation (run.parallel_eval) scored the policy this iteration started from.
                    # With ppo.overlap_sampling one more batch (the size of this one) was being sampled while that
                    # policy was trained, and it counts: success is dated at every env step taken before the policy
                    # existed (for the initial policy, which no batch preceded, that counts one batch too many).
                    in_flight = iter_steps if cfg.ppo.overlap_sampling else 0
                    state.steps_to_success = state.env_steps - (iter_steps if cfg.run.parallel_eval else 0) + in_flight
            writer.write(row)
            if state.iteration % cfg.run.checkpoint_every == 0:
                last_ckpt = save_checkpoint(run_dir, graph, state)
            if cfg.run.stop_on_success and state.steps_to_success is not None:
                break
        last_ckpt = save_checkpoint(run_dir, graph, state)
        summary = build_summary(cfg, state, row, last_ckpt, run_dir)
        summary.update(teacher_log_summary(cfg, run_dir, monitor.extra_totals()))
        summary["stopped_by"] = stop.signal_name
        summary.update(restarts.fields())
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        if stream is not None:
            print(f"run folder: {run_dir}", file=stream, flush=True)
        return summary
    finally:
        writer.close()
        stop.restore()
        if graph is not None:
            graph.stop()
        if started_ray:
            import ray

            ray.shutdown()
        from llmrl.rl.callbacks import forget_process_counters

        forget_process_counters()


def teacher_log_summary(cfg: Config, run_dir: Path, extra: dict[str, float]) -> dict[str, Any]:
    """Where the teacher log is (null without one), answers it dropped, and a replay run's hits and misses."""
    from llmrl.teacher.teacher_log import replica_log_path

    logging_on = cfg.teacher.backend != "off" and cfg.teacher.log
    out: dict[str, Any] = {
        "teacher_log": str(replica_log_path(run_dir, 0)) if logging_on else None,
        "teacher_log_dropped": extra.get("log/dropped", 0.0),
    }
    if cfg.teacher.backend == "replay":
        out["teacher_replay_log"] = cfg.teacher.replay.log
        for k in ("hits", "misses", "fallbacks"):
            out[f"teacher_replay_{k}"] = extra.get(f"backend/replay_{k}", 0.0)
    return out


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
    summary.update(hot_path_summary(row))
    spec = family_spec(cfg.env.name)
    if spec.summary is not None:
        summary.update(spec.summary(state))
    if cfg.adapter.enabled:
        for key in ("adapter_version", "teacher_adapter_version", *(f"adapter_{k}" for k in ADAPTER_TRAINER_COUNTERS),
                    "adapter_pairs", "teacher_adapter_loads", "teacher_adapter_load_failures"):
            summary[key] = row.get(key, 0)
        if cfg.adapter.role == "analyst":
            summary.update({f"teacher_{k}": row.get(f"teacher_{k}", 0) for k in TeacherMonitor.ANALYST})
        summary["adapter_heldout_loss"] = finite(row.get("adapter_heldout_loss", math.nan))
    return summary
