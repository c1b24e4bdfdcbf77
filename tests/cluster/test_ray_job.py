"""``ray job submit`` for real: a CLI-started Ray head, the job server, and a tiny ``python -m llmrl.job`` run.

The head is started with ``ray start --head --block`` in its own session, so teardown can end exactly the
processes this test started (its process group; Ray gives the raylet's children kill-on-parent-death) rather
than calling ``ray stop``, which would also stop any other Ray instance on the machine. Every port is picked
at runtime, and the head keeps its state under its own short temp dir, so ``ray.init()`` elsewhere on the
machine never auto-connects to it. Token authentication (on by default in new Ray clusters) gets a
test-only token through the environment, so ``~/.ray`` is neither read nor written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAD_START_TIMEOUT_S = 90.0
JOB_TIMEOUT_S = 150.0
CLI_TIMEOUT_S = 60.0
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    # The venv's own ``ray``, so the head and the job's driver run the interpreter the tests run.
    path = Path(sys.executable).with_name("ray")
    # ray[default] is a dependency: a missing CLI is a broken install, which this test must report.
    assert path.exists(), f"no ray CLI next to {sys.executable}"
    return str(path)


def _require_job_server() -> None:
    try:
        import aiohttp  # noqa: F401 - the dashboard's job server needs ray[default]
    except ImportError:
        raise AssertionError("the Ray job server needs ray[default], a dependency of llmrl: reinstall llmrl") from None


class Head:
    """One ``ray start --head --block`` process group; ``stop`` ends it whatever state it is in."""

    def __init__(self, ray_cli: str, temp_dir: str, env: dict[str, str], log_path: Path):
        self.dashboard_port = _free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        cmd = [
            ray_cli, "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0",
            f"--port={_free_port()}", f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
            "--object-store-memory=200000000", "--disable-usage-stats", f"--temp-dir={temp_dir}",
        ]
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, token: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(f"{self.address}/api/version", headers={"Authorization": f"Bearer {token}"})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(request, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"Ray dashboard not up after {timeout_s:.0f}s")

    def stop(self) -> None:
        # SIGTERM lets gcs/raylet exit cleanly; `ray start --block` itself ignores it, hence the SIGKILL.
        for sig, grace_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def _cli(ray_cli: str, args: list[str], env: dict[str, str], timeout_s: float = CLI_TIMEOUT_S):
    return subprocess.run([ray_cli, *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout_s)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# `ray job status` prints terminal states as sentences and the others as "Status for job 'ID': STATE".
_FINAL_WORDS = {"succeeded": "SUCCEEDED", "failed": "FAILED", "was stopped": "STOPPED"}


def parse_job_status(text: str, job_id: str) -> str:
    text = _ANSI.sub("", text)
    quoted = re.escape(f"'{job_id}'")
    final = re.search(rf"Job {quoted} (succeeded|failed|was stopped)", text)
    if final:
        return _FINAL_WORDS[final.group(1)]
    other = re.search(rf"Status for job {quoted}: (?:JobStatus\.)?(\w+)", text)
    return other.group(1).upper() if other else "UNKNOWN"


def _job_status(ray_cli: str, address: str, job_id: str, env: dict[str, str]) -> str:
    out = _cli(ray_cli, ["job", "status", "--address", address, job_id], env)
    return parse_job_status(out.stdout + out.stderr, job_id)


def test_parse_job_status():
    assert parse_job_status("---\nJob 'j1' succeeded\n---", "j1") == "SUCCEEDED"
    assert parse_job_status("\x1b[31mJob 'j1' failed\x1b[0m\nStatus message: boom", "j1") == "FAILED"
    assert parse_job_status("Job 'j1' was stopped", "j1") == "STOPPED"
    assert parse_job_status("Status for job 'j1': RUNNING", "j1") == "RUNNING"
    assert parse_job_status("Status for job 'j1': JobStatus.PENDING", "j1") == "PENDING"
    assert parse_job_status("Job 'j2' succeeded", "j1") == "UNKNOWN"


@pytest.mark.integration
def test_ray_job_submit_runs_a_tiny_training(tmp_path):
    ray_cli = _ray_cli()
    _require_job_server()
    # Short path: Ray's unix sockets live under the temp dir and socket paths are limited to ~107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="llmrl-rj-", dir="/tmp")
    out_dir = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        PYTHONUNBUFFERED="1",
    )
    head = Head(ray_cli, temp_dir, env, tmp_path / "head.log")
    job_id = f"llmrl-test-{secrets.token_hex(4)}"
    submitted = False
    try:
        head.wait_ready(env["RAY_AUTH_TOKEN"], HEAD_START_TIMEOUT_S)
        submit = _cli(ray_cli, [
            "job", "submit", "--address", head.address, "--working-dir", str(ROOT),
            "--runtime-env", "cluster/runtime_env.yaml", "--submission-id", job_id, "--no-wait", "--",
            "python", "-m", "llmrl.job", "configs/minigrid/simple_doorkey.yaml", "run.max_env_steps=1024",
            "ppo.train_batch_size=512", "run.eval_episodes=2", f"run.out_dir={out_dir}", "run.name=job",
        ], env)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        submitted = True
        deadline = time.monotonic() + JOB_TIMEOUT_S
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            status = _job_status(ray_cli, head.address, job_id, env)
            if status in TERMINAL:
                break
            time.sleep(2.0)
        logs = _cli(ray_cli, ["job", "logs", "--address", head.address, job_id], env)
        assert status == "SUCCEEDED", f"job ended {status}; logs:\n{logs.stdout[-4000:]}{logs.stderr[-2000:]}"
        assert re.search(r"^iter=\d+ steps=\d+", logs.stdout, re.MULTILINE), logs.stdout[-4000:]
        summary = json.loads((out_dir / "job" / "summary.json").read_text())
        assert summary["env_steps"] >= 1024
        assert summary["teacher_backend"] == "scripted"
    finally:
        if submitted:
            _cli(ray_cli, ["job", "stop", "--address", head.address, job_id], env)
        head.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
