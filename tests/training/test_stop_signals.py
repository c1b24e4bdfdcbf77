"""SIGINT (Ctrl-C) and SIGTERM end a real ``llmrl train`` subprocess cleanly, and the run resumes from there.

A terminal's Ctrl-C signals the whole foreground process group (the driver and every Ray process it started),
so the SIGINT case signals the group. A scheduler's SIGTERM usually goes to the driver alone; GNU ``timeout``
signals the driver's whole group, which must not take the local GCS and raylet with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.schedule import distill_coef
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"
TINY = ["ppo.train_batch_size=512", "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
        "resources.num_envs_per_env_runner=2", "feedback.publish_every=2", "feedback.flush_every=1",
        # Periodic checkpoints far apart: the final checkpoint must come from the stop itself.
        "run.checkpoint_every=1000"]
BUDGET = 200_000  # far more than the test lets it run: only the signal ends it


def start_run(out: Path, wrapper: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [*wrapper, sys.executable, "-m", "llmrl.cli", "train", str(CONFIG), *TINY, f"run.out_dir={out}", "run.name=run",
         f"run.max_env_steps={BUDGET}", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def wait_for_rows(run_dir: Path, proc: subprocess.Popen, n: int = 1, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("training wrote no metrics row in time")


def process_group(pgid: int) -> set[int]:
    """The pids in a process group, from /proc (field 5 of stat; the command name before it may hold spaces)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process exited while we looked
            continue
        if int(fields[2]) == pgid:
            members.add(int(stat.parent.name))
    return members


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("sig, to_group, resume", [(signal.SIGINT, True, True), (signal.SIGTERM, False, False)],
                         ids=["sigint-group-then-resume", "sigterm"])
def test_signal_stops_with_checkpoint_and_summary(tmp_path, sig, to_group, resume):
    proc = start_run(tmp_path)
    run_dir = tmp_path / "run"
    wait_for_rows(run_dir, proc)
    (os.killpg if to_group else os.kill)(proc.pid, sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    notices = [line for line in err.splitlines() if line.startswith("llmrl: ")]
    assert notices == [f"llmrl: {sig.name} received: stopping after this iteration with a final checkpoint "
                       "(send it again to quit at once)"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == sig.name
    metrics = rows(run_dir)
    # Nothing lost: the summary and the final checkpoint hold every iteration that was written.
    assert summary["iterations"] == len(metrics) and summary["env_steps"] == metrics[-1]["env_steps"]
    checkpoint = Path(summary["checkpoint"])
    saved = json.loads((checkpoint / "llmrl_state.json").read_text())
    assert saved["env_steps"] == summary["env_steps"] and (checkpoint / "prompt_bank.json").is_file()
    if not resume:  # the same stop path as SIGINT from here on; one resume is enough
        return
    target = summary["env_steps"] + 512
    cfg = load_config(CONFIG, [*TINY, f"run.resume={checkpoint}", f"run.max_env_steps={target}"])
    resumed = train(cfg, stream=None)
    assert resumed["stopped_by"] is None and resumed["env_steps"] >= target
    after = rows(run_dir)
    assert [r["iteration"] for r in after] == list(range(1, len(after) + 1))
    n = summary["iterations"]
    assert after[n]["distill_coef"] == pytest.approx(distill_coef(n, cfg.distill))  # lambda continued


def test_sigterm_through_timeout_reaches_the_driver_not_ray(tmp_path):
    """GNU ``timeout`` leads the group and, on expiry or on its own SIGTERM, signals the driver and then the whole
    group. Ray's GCS and raylet exit on SIGTERM, and a driver that has lost them is terminated by Ray before its
    final checkpoint; so they must live in a group of their own."""
    proc = start_run(tmp_path, wrapper=("timeout", "-s", "TERM", "900"))
    run_dir = tmp_path / "run"
    try:
        wait_for_rows(run_dir, proc)
        group = process_group(proc.pid)
        # Checked directly, because the outcome alone is a race: a short iteration can end before the GCS is gone.
        assert len(group - {proc.pid}) == 1, f"Ray's processes share the driver's group: {sorted(group)}"
        proc.send_signal(signal.SIGTERM)  # timeout forwards it exactly as on expiry
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # a failed check must not leave a training run behind
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["iterations"] == len(rows(run_dir))
    assert Path(summary["checkpoint"], "llmrl_state.json").is_file()


def test_second_sigint_quits_at_once(tmp_path):
    proc = start_run(tmp_path)
    run_dir = tmp_path / "run"
    wait_for_rows(run_dir, proc)
    proc.send_signal(signal.SIGINT)
    # The second press once the first has been seen (the run then still has its iteration to finish).
    for line in proc.stderr:
        if line.startswith("llmrl: SIGINT received"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT
    assert "llmrl: second SIGINT: quitting now, without a final checkpoint" in err
    assert not (run_dir / "summary.json").exists()
