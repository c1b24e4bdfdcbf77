"""``RestartCounter`` against a real Ray actor that Ray restarts (the loop's count of feedback and adapter-trainer
restarts)."""

from __future__ import annotations

import time
import uuid

from llmrl.training.restarts import RestartCounter


def _restarted(ray, handle, old_id: str, limit_s: float = 60.0) -> None:
    """Wait until the restarted instance answers (ray.kill is asynchronous: the old one may answer first)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if ray.get(handle.instance_id.remote(), timeout=5) != old_id:
                return
        except Exception:  # noqa: BLE001 - restarting
            pass
        time.sleep(0.2)
    raise TimeoutError("the actor was not restarted")


def test_a_ray_restart_is_counted_once_and_a_missing_actor_not_at_all(ray_local):
    class Singleton:  # defined here so that Ray ships it by value (workers cannot import test modules)
        def __init__(self) -> None:
            self._id = uuid.uuid4().hex

        def instance_id(self) -> str:
            return self._id

    handle = ray_local.remote(max_restarts=2, max_task_retries=0, num_cpus=0)(Singleton).remote()
    counts = {"feedback": 3}  # restored from a checkpoint: counting goes on from there
    counter = RestartCounter({"feedback": handle, "adapter_trainer": None}, counts)
    assert counter.poll() == {"feedback_restarts": 3}  # no trainer in this run: no field for it
    assert counter.poll() == {"feedback_restarts": 3}
    old_id = ray_local.get(handle.instance_id.remote())
    ray_local.kill(handle, no_restart=False)
    _restarted(ray_local, handle, old_id)
    assert counter.poll() == {"feedback_restarts": 4} and counts["feedback"] == 4
    assert counter.poll() == {"feedback_restarts": 4}
