"""End-to-end runs through real Ray actors and real RLlib, with tiny budgets (MiniGrid SimpleDoorKey).

Each ``train`` call starts its own small local Ray and shuts it down. Budgets are a few hundred env steps per
iteration: these tests check wiring, outputs, faults and resume, not learning (that is the benchmarks' job).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.schedule import distill_coef
from llmrl.training.loop import train

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"
TINY = [
    "ppo.train_batch_size=512",
    "ppo.minibatch_size=128",
    "ppo.num_epochs=1",
    "run.eval_episodes=2",
    "run.checkpoint_every=1",
    "resources.num_envs_per_env_runner=2",
    "feedback.publish_every=2",
    "feedback.flush_every=1",
    # Runs last seconds: poll the prompt-bank version on every request rather than every 2 s, so that new bank
    # versions reach the teacher within the run whatever the machine's speed.
    "teacher.bank_refresh_s=0",
]
SUMMARY_KEYS = {
    "env", "teacher_backend", "env_steps", "wall_s", "env_steps_per_s", "eval_success", "eval_return",
    "teacher_requests", "teacher_llm_calls", "teacher_cache_hit_rate", "teacher_mean_batch_size", "steps_to_success",
}


def run(tmp: Path, *overrides: str) -> dict:
    cfg = load_config(CONFIG, [*TINY, f"run.out_dir={tmp}", *overrides])
    return train(cfg, stream=None)


def rows(run_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory, ray_module):
    tmp = tmp_path_factory.mktemp("scripted")
    return run(tmp, "run.max_env_steps=1024", "run.name=scripted")


def test_scripted_run_writes_every_output(scripted_run):
    s = scripted_run
    assert SUMMARY_KEYS <= set(s)
    assert s["env"] == "SimpleDoorKey" and s["teacher_backend"] == "scripted"
    assert s["env_steps"] >= 1024
    assert s["teacher_requests"] > 0 and s["teacher_llm_calls"] > 0
    assert 0.0 <= s["teacher_cache_hit_rate"] <= 1.0
    assert s["eval_success"] is not None
    run_dir = Path(s["run_dir"])
    assert (run_dir / "config.yaml").is_file() and (run_dir / "summary.json").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    metrics = rows(s["run_dir"])
    assert len(metrics) == s["iterations"]
    assert all(r["advised_frac"] > 0 for r in metrics)  # advice reached the learner's loss
    assert Path(s["checkpoint"], "prompt_bank.json").is_file()
    # The feedback actor's new bank versions reached the teacher, although repeated states never leave the
    # runner's cache (the runner polls the version).
    assert s["bank_version"] >= 1
    # Hot-path counters: every advised step is counted, those guided by a superseded bank version among them.
    assert s["teacher_advised_steps"] > 0 and 0 <= s["teacher_stale_steps"] <= s["teacher_advised_steps"]
    assert all({"teacher_stale_steps", "teacher_stale_served", "teacher_rescored"} <= set(r) for r in metrics)


def test_resume_continues_steps_lambda_and_bank(scripted_run, tmp_path):
    first = scripted_run
    bank_before = json.loads(Path(first["checkpoint"], "prompt_bank.json").read_text())
    resumed = run(tmp_path, "run.max_env_steps=2048", f"run.resume={first['checkpoint']}")
    assert resumed["run_dir"] == first["run_dir"]  # same run folder, metrics appended
    assert resumed["env_steps"] >= 2048 and resumed["iterations"] > first["iterations"]
    metrics = rows(resumed["run_dir"])
    assert [r["iteration"] for r in metrics] == list(range(1, resumed["iterations"] + 1))
    cfg = load_config(CONFIG)
    # lambda continues from the learner's saved update count instead of restarting at coef_start.
    n = first["iterations"]
    assert metrics[n]["distill_coef"] == pytest.approx(distill_coef(n, cfg.distill))
    bank_after = json.loads(Path(resumed["checkpoint"], "prompt_bank.json").read_text())
    assert bank_after["episodes"] >= bank_before["episodes"] > 0


def test_final_eval_scores_the_last_policy_when_eval_every_skips_it(tmp_path):
    # eval_every larger than the run's iterations: only run.final_eval evaluates, in the last iteration.
    s = run(tmp_path, "run.max_env_steps=1024", "run.eval_every=100", "run.final_eval=true", "run.name=final")
    metrics = rows(s["run_dir"])
    assert len(metrics) >= 2
    assert all(r["eval_success"] != r["eval_success"] for r in metrics[:-1])  # NaN: not evaluated
    assert 0.0 <= metrics[-1]["eval_success"] <= 1.0 and s["eval_success"] == metrics[-1]["eval_success"]


def test_cli_eval_student_and_bad_config(scripted_run):
    out = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "eval", scripted_run["checkpoint"], "--episodes", "2"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["episodes"] == 2 and 0.0 <= result["success"] <= 1.0
    bad = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "train", str(CONFIG), "teacher.nope=1"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "teacher.nope" in bad.stderr


def test_cli_eval_teacher_alone(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "eval", "--teacher", str(CONFIG), "--episodes", "3"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["actor"] == "teacher" and result["success"] == 1.0  # the scripted planner is exact


def test_cli_eval_teacher_of_a_checkpoint_uses_its_prompt_bank(scripted_run):
    # A run folder means its newest checkpoint. The resume test may have appended checkpoints to this run folder
    # (it continues the same run), so the newest is looked up rather than taken from the first run's summary.
    newest = sorted(Path(scripted_run["run_dir"], "checkpoints").glob("iter_*"))[-1]
    bank = json.loads((newest / "prompt_bank.json").read_text())
    out = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "eval", "--teacher", scripted_run["run_dir"], "--episodes", "2"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["teacher_of"] == f"checkpoint {newest.resolve()}"
    assert result["bank_version"] == bank["published"]["version"] >= 1
    assert result["success"] == 1.0


def test_hf_backend_trains_with_a_tiny_local_lm(tmp_path):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "tiny-lm")
    s = run(tmp_path, "teacher.backend=hf", f"teacher.hf.model={model}", "run.max_env_steps=512")
    assert s["teacher_backend"] == "hf"
    assert s["teacher_llm_calls"] > 0 and s["teacher_requests"] >= s["teacher_llm_calls"]
    assert s["env_steps"] >= 512


def test_teacher_killed_mid_training_is_restarted_and_counted(tmp_path):
    import ray

    killed = threading.Event()

    def killer():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            # Any Ray call before train() has started Ray would start a second Ray (auto-init) and race it;
            # is_initialized() does not.
            if not ray.is_initialized():
                time.sleep(0.2)
                continue
            try:
                handle = ray.get_actor("llmrl_teacher", namespace="llmrl")
                if ray.get(handle.stats.remote(), timeout=5).requests > 5:
                    ray.kill(handle, no_restart=False)  # Ray restarts it (teacher.max_restarts)
                    killed.set()
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    # A one-entry client cache makes every new text state go to the service, so the outage is visible.
    s = run(tmp_path, "run.max_env_steps=3072", "teacher.client_cache_size=1", "teacher.retry_after_s=0.5")
    thread.join(timeout=5)
    assert killed.is_set()
    assert s["teacher_restarts"] >= 1
    assert s["teacher_fallbacks"] >= 1
    metrics = rows(s["run_dir"])
    assert metrics[-1]["advised_frac"] > 0  # advice resumed after the restart
    assert s["env_steps"] >= 3072  # training went on


def test_two_teacher_replicas_share_the_load(tmp_path):
    # One-entry client caches keep requests flowing to the service; least-pending routing spreads them.
    s = run(tmp_path, "run.max_env_steps=1024", "teacher.num_replicas=2", "teacher.routing=least_pending",
            "teacher.client_cache_size=1", "run.name=replicas")
    assert s["teacher_llm_calls"] > 0
    assert rows(s["run_dir"])[-1]["teacher_replicas_serving"] == 2
