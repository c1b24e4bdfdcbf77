"""``llmrl bench faults``: a seeded fault-injection suite; does a run survive losing each of its parts?

Each of K trials is one short real training run (SimpleDoorKey, scripted teacher) in which one part is killed at
a seeded random moment (a delay after the first iteration's metrics row):

* ``teacher``, ``feedback``, ``adapter_trainer``, ``env_runner``: the actor's process gets SIGKILL and Ray
  restarts it (an adapter-trainer trial runs with the online adapter on, its teacher the tiny local LM;
  ``--adapter-everywhere`` gives every trial the adapter);
* ``driver_sigint`` (to the process group, as a terminal's Ctrl-C) and ``driver_sigterm``: the ``llmrl train``
  process is signalled, then the run is resumed from its final checkpoint (``run.resume``) to the same budget;
* ``none``: no fault, the baseline for the bookkeeping (summaries still in flight at the end, for instance).

Per kind it reports: trials survived (the run reached its budget), env steps lost (steps of the metrics that a
later row no longer builds on: a resume from an older state), feedback summaries lost (sent by the runners
but not in the final prompt bank), and whether the lambda schedule, the bank version (read from the per-iteration
checkpoints) and the adapter version (when the metrics have one) continued.

    llmrl bench faults --trials 14 --seed 0 --steps 4096 --out runs/bench-faults
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.config import Config, load_config

DEFAULT_CONFIG = "configs/minigrid/simple_doorkey.yaml"
TRIAL_OVERRIDES = [
    "ppo.train_batch_size=512", "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
    "resources.num_envs_per_env_runner=2", "feedback.publish_every=2", "feedback.flush_every=1",
    "teacher.bank_refresh_s=0", "teacher.retry_after_s=0.5",
    "run.checkpoint_every=1",  # a checkpoint per iteration: the bank version's history is read from them
]


def _pid_of_named(name: str) -> Callable[[Any], int | None]:
    def find(ray: Any) -> int | None:
        try:
            handle = ray.get_actor(name)
        except ValueError:  # no such actor in this run
            return None
        return ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=30)

    return find


def _pid_of_env_runner(ray: Any) -> int | None:
    # Env runners are not named; the GCS actor table (no dashboard needed) lists them with their processes.
    from ray._private import state

    alive = [a for a in state.actors().values()
             if a.get("ActorClassName") == "SingleAgentEnvRunner" and a.get("State") == "ALIVE" and a.get("Pid")]
    return int(alive[0]["Pid"]) if alive else None


def adapter_overrides(out: Path) -> list[str]:
    """An hf teacher on the tiny local LM (built once into ``out``) with the online adapter on, tuned to train a
    version within a 4k-step trial: the suite checks what survives a fault, not how good the teacher gets, so the
    tiny LM is the right model (SmolLM2 would make each trial minutes longer)."""
    from llmrl.teacher.tiny_lm import build_tiny_lm

    model = out / "tiny-lm"
    if not (model / "config.json").is_file():
        build_tiny_lm(model)
    return [
        "teacher.backend=hf", f"teacher.hf.model={model}", "adapter.enabled=true",
        # Plan credit: a barely trained student on a random LM's advice completes plans long before it solves the task.
        "feedback.credit=plan", "adapter.min_new_pairs=2", "adapter.train_every_episodes=4", "adapter.poll_s=0.2",
        "adapter.r=4", "adapter.alpha=8", "adapter.lr=5e-2", "adapter.epochs=3", "adapter.batch_size=4",
        "adapter.heldout_frac=0.3",
    ]


@dataclass(frozen=True)
class Fault:
    """One kind of fault: an actor whose process is SIGKILLed (``find_pid``) or a signal to the driver.
    ``needs`` gives the overrides a run must have for the fault to exist (an adapter trainer, say)."""

    kind: str
    find_pid: Callable[[Config], Callable[[Any], int | None]] | None = None
    driver_signal: signal.Signals | None = None
    to_group: bool = False
    needs: Callable[[Path], list[str]] | None = None


# One line per fault kind. An actor joins the suite with its name (or a finder of its process).
FAULTS: dict[str, Fault] = {f.kind: f for f in (
    Fault("none"),
    Fault("teacher", find_pid=lambda cfg: _pid_of_named(cfg.teacher.actor_name)),
    Fault("feedback", find_pid=lambda cfg: _pid_of_named(cfg.feedback.actor_name)),
    Fault("adapter_trainer", find_pid=lambda cfg: _pid_of_named(cfg.adapter.actor_name), needs=adapter_overrides),
    Fault("env_runner", find_pid=lambda cfg: _pid_of_env_runner),
    Fault("driver_sigint", driver_signal=signal.SIGINT, to_group=True),
    Fault("driver_sigterm", driver_signal=signal.SIGTERM),
)}


@dataclass
class Trial:
    index: int
    kind: str
    delay_s: float
    injected: bool = False
    skipped: str = ""  # why the fault could not be injected (no adapter trainer in this run, ...)
    survived: bool = False
    env_steps: int = 0
    env_steps_lost: int = 0
    summaries_sent: float = 0.0
    summaries_recorded: int = 0
    summaries_lost: float = 0.0
    lambda_continued: bool = False
    bank_version_continued: bool = False
    adapter_version_continued: bool | None = None  # None: the run has no adapter version
    restarts: dict[str, float] = field(default_factory=dict)
    error: str = ""


# -- bookkeeping (pure: read back from a run folder) ---------------------------------------------------------------


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def steps_lost(rows: list[dict[str, Any]]) -> int:
    """Env steps that later rows no longer build on: a row starting below the previous row's count was trained
    from an older state (a resume from an earlier checkpoint), and the difference was lost."""
    lost, previous = 0, 0
    for r in rows:
        start = int(r["env_steps"]) - int(r["iter_env_steps"])
        lost += max(0, previous - start)
        previous = int(r["env_steps"])
    return lost


def lambda_continued(rows: list[dict[str, Any]], cfg: Config) -> bool:
    """The i-th (0-based) row with a learner update was trained with lambda after i updates, as one uninterrupted
    run would be. A row that sampled nothing (its env runner was being restarted) had no update and has no lambda."""
    from llmrl.schedule import distill_coef

    updates = [r for r in rows if int(r["iter_env_steps"]) > 0]
    return bool(updates) and all(abs(float(r["distill_coef"]) - distill_coef(i, cfg.distill)) < 1e-6
                                 for i, r in enumerate(updates))


def non_decreasing(values: list[float]) -> bool:
    return all(b >= a for a, b in zip(values, values[1:]))


def bank_versions(run_dir: Path) -> list[int]:
    """The feedback actor's own bank version at every checkpoint, in order."""
    out = []
    for ckpt in sorted((run_dir / "checkpoints").glob("iter_*")):
        bank = ckpt / "prompt_bank.json"
        if bank.is_file():
            out.append(int(json.loads(bank.read_text())["published"]["version"]))
    return out


def assess(trial: Trial, run_dir: Path, cfg: Config) -> Trial:
    rows = read_rows(run_dir)
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    trial.env_steps = int(summary.get("env_steps", rows[-1]["env_steps"] if rows else 0))
    trial.survived = summary.get("stopped_by") is None and trial.env_steps >= cfg.run.max_env_steps and not trial.error
    trial.env_steps_lost = steps_lost(rows)
    trial.lambda_continued = lambda_continued(rows, cfg)
    versions = bank_versions(run_dir)
    trial.bank_version_continued = bool(versions) and non_decreasing(versions)
    adapter = [float(r["adapter_version"]) for r in rows if "adapter_version" in r]
    trial.adapter_version_continued = non_decreasing(adapter) if adapter else None
    if summary.get("checkpoint"):
        bank_file = Path(summary["checkpoint"]) / "prompt_bank.json"
        trial.summaries_recorded = int(json.loads(bank_file.read_text())["episodes"]) if bank_file.is_file() else 0
    trial.summaries_sent = float(rows[-1].get("feedback_sent", 0.0)) if rows else 0.0
    trial.summaries_lost = trial.summaries_sent - trial.summaries_recorded
    trial.restarts = {k: v for k, v in summary.items() if k.endswith("_restarts")}
    return trial


# -- injection ------------------------------------------------------------------------------------------------------


def wait_for_first_row(run_dir: Path, alive: Callable[[], bool], limit_s: float = 600) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and alive():
        if read_rows(run_dir):
            return True
        time.sleep(0.2)
    return False


def actor_trial(trial: Trial, fault: Fault, cfg: Config) -> Trial:
    """Train in this process while a thread SIGKILLs the fault's actor at the trial's moment."""
    import ray

    from llmrl.training.loop import train

    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    done = threading.Event()

    def inject() -> None:
        if not wait_for_first_row(run_dir, lambda: not done.is_set()):
            return
        if done.wait(trial.delay_s):
            trial.skipped = "the run ended before the moment came"
            return
        try:
            pid = fault.find_pid(cfg)(ray)
        except Exception as exc:  # noqa: BLE001 - reported in the trial, not fatal to the suite
            trial.skipped = f"could not find the {fault.kind} process: {exc}"
            return
        if pid is None:
            trial.skipped = f"no {fault.kind} in this run"
            return
        os.kill(pid, signal.SIGKILL)
        trial.injected = True

    thread = threading.Thread(target=inject, daemon=True)
    if fault.find_pid is not None:
        thread.start()
    try:
        train(cfg, stream=None)
    except Exception as exc:  # noqa: BLE001 - a run that dies is a trial that did not survive
        trial.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        done.set()
        if thread.is_alive():
            thread.join(timeout=30)
    return assess(trial, run_dir, cfg)


def driver_trial(trial: Trial, fault: Fault, config: str, overrides: list[str], cfg: Config) -> Trial:
    """``llmrl train`` as a subprocess, signalled at the trial's moment, then resumed to the same budget."""
    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    command = [sys.executable, "-m", "llmrl.cli", "train", "--quiet", config, *overrides]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if wait_for_first_row(run_dir, lambda: proc.poll() is None):
            time.sleep(trial.delay_s)
            if proc.poll() is None:
                (os.killpg if fault.to_group else os.kill)(proc.pid, fault.driver_signal)
                trial.injected = True
        _, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        err = "timed out"
    summary_file = run_dir / "summary.json"
    checkpoint = json.loads(summary_file.read_text()).get("checkpoint") if summary_file.is_file() else None
    if not checkpoint:
        trial.error = f"no final checkpoint after {fault.driver_signal.name}: {err.strip()[-300:]}"
        return assess(trial, run_dir, cfg)
    resumed = subprocess.run([*command, f"run.resume={checkpoint}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, timeout=900)
    if resumed.returncode != 0:
        trial.error = f"resume exited {resumed.returncode}: {resumed.stderr.strip()[-300:]}"
    return assess(trial, run_dir, cfg)


def run_trial(trial: Trial, config: str, overrides: list[str], out: Path, adapter_everywhere: bool = False) -> Trial:
    fault = FAULTS[trial.kind]
    needs = fault.needs or (adapter_overrides if adapter_everywhere else None)
    trial_overrides = [*TRIAL_OVERRIDES, *(needs(out) if needs else []), *overrides, f"run.out_dir={out}",
                       f"run.name=trial{trial.index:03d}-{trial.kind}"]
    cfg = load_config(config, trial_overrides)
    shutil.rmtree(Path(cfg.run.out_dir) / cfg.run.name, ignore_errors=True)  # a rerun must not append to an old trial
    if fault.driver_signal is not None:
        return driver_trial(trial, fault, config, trial_overrides, cfg)
    return actor_trial(trial, fault, cfg)


def schedule(kinds: list[str], trials: int, seed: int, max_delay_s: float) -> list[Trial]:
    """Every kind in turn (shuffled per round by the seed), each at a seeded random moment."""
    rng = random.Random(seed)
    order: list[str] = []
    while len(order) < trials:
        round_kinds = list(kinds)
        rng.shuffle(round_kinds)
        order += round_kinds
    return [Trial(index=i, kind=k, delay_s=round(rng.uniform(0.0, max_delay_s), 2)) for i, k in enumerate(order[:trials])]


def report(trials: list[Trial]) -> list[list[Any]]:
    rows = []
    for kind in dict.fromkeys(t.kind for t in trials):
        mine = [t for t in trials if t.kind == kind]
        ran = [t for t in mine if not t.skipped]
        adapter = [t.adapter_version_continued for t in ran if t.adapter_version_continued is not None]
        rows.append([kind, len(mine), sum(t.injected for t in mine), sum(t.survived for t in ran),
                     sum(t.env_steps_lost for t in ran), sum(t.summaries_lost for t in ran),
                     sum(t.summaries_sent for t in ran),
                     f"{sum(t.lambda_continued for t in ran)}/{len(ran)}",
                     f"{sum(t.bank_version_continued for t in ran)}/{len(ran)}",
                     f"{sum(adapter)}/{len(adapter)}" if adapter else "n/a"])
    return rows


HEADER = ["fault", "trials", "injected", "survived", "env steps lost", "summaries lost", "summaries sent",
          "lambda continued", "bank version continued", "adapter version continued"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="llmrl bench faults")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--trials", type=int, default=len(FAULTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4096, help="env-step budget of every trial")
    p.add_argument("--kinds", default=",".join(FAULTS), help="comma-separated fault kinds")
    p.add_argument("--max-delay-s", type=float, default=8.0, help="faults land up to this long after iteration 1")
    p.add_argument("--out", default="runs/bench-faults")
    p.add_argument("--adapter-everywhere", action="store_true",
                   help="every trial runs the online adapter (hf teacher on the tiny LM), so that the driver and actor "
                        "trials also show whether the adapter version continued; without it only adapter_trainer "
                        "trials do")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown or args.trials < 1:
        print(f"llmrl bench faults: unknown kind(s) {unknown}; choose from {', '.join(FAULTS)}" if unknown
              else "llmrl bench faults: --trials must be >= 1", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    overrides = [*args.overrides, f"run.max_env_steps={args.steps}"]
    started = time.time()
    trials = []
    for trial in schedule(kinds, args.trials, args.seed, args.max_delay_s):
        trials.append(run_trial(trial, args.config, overrides, out, args.adapter_everywhere))
        t = trials[-1]
        print(f"trial {t.index} {t.kind}: injected={t.injected} survived={t.survived} lost_steps={t.env_steps_lost} "
              f"lost_summaries={t.summaries_lost:g} {t.skipped or t.error}", flush=True)
    table = markdown_table(HEADER, report(trials))
    result = {"date": today(), "machine": machine(), "load_average_after": load_average(),
              "wall_s": time.time() - started, "config": args.config, "steps": args.steps, "seed": args.seed,
              "overrides": args.overrides, "adapter_everywhere": args.adapter_everywhere, "trials": [asdict(t) for t in trials]}
    (out / "faults.json").write_text(json.dumps(result, indent=2, default=str))
    print(table)
    print(f"written: {out / 'faults.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
