import os
import signal
import subprocess
import sys
import time

import pytest

from llmrl.config import FeedbackConfig
from llmrl.feedback.actor import FeedbackService, start_feedback_actor
from llmrl.messages import AdviceOutcome, EpisodeSummary

TASK = "Open the locked door."
STATE = "Agent sees <key>, <door>, holds <nothing>."
PLAN = "go to key, pick up key"


def summaries(n: int, success: bool = True) -> list[EpisodeSummary]:
    out = AdviceOutcome(state_text=STATE, option=PLAN, steps_completed=2 if success else 0, steps_total=2)
    return [EpisodeSummary(family="minigrid", task="SimpleDoorKey", success=success, episode_return=1.0, length=9,
                           outcomes=(out,)) for _ in range(n)]


def test_importing_feedback_does_not_import_ray():
    code = "import sys, llmrl.feedback, llmrl.feedback.actor, llmrl.feedback.bank; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_service_polls_stats_and_reseeding():
    cfg = FeedbackConfig(publish_every=2, min_trials=1)
    svc = FeedbackService(cfg, TASK)
    assert svc.snapshot_if_newer(-1).version == 0
    assert svc.snapshot_if_newer(0) is None
    assert svc.record(summaries(3)) == 3
    snap = svc.snapshot_if_newer(0)
    assert snap is not None and snap.version == 1
    assert svc.snapshot_if_newer(1) is None
    svc.record(summaries(1, success=False))
    stats = svc.stats()
    assert stats["episodes"] == 4 and stats["version"] == 2 and stats["tracked_pairs"] == 1
    assert stats["recent_success_rate"] == pytest.approx(0.5)  # window = publish_every episodes
    assert stats["success_rate"] == pytest.approx(0.75)
    assert stats["reconstructed"] == 0.0
    fresh = FeedbackService(cfg, TASK)  # as after a crash: empty until re-seeded
    assert fresh.load_state_dict(svc.state_dict()) == 2
    assert fresh.snapshot() == svc.snapshot()


def _stats_after_restart(ray, handle, attempts: int = 100) -> dict[str, float]:
    # ray.kill returns before the actor dies, and calls made while Ray restarts it fail with
    # ActorUnavailableError (no task retries by design): poll until the restarted instance answers.
    for _ in range(attempts):
        try:
            stats = ray.get(handle.stats.remote(), timeout=10)
            if stats["reconstructed"]:
                return stats
        except ray.exceptions.ActorUnavailableError:
            pass
        time.sleep(0.1)
    raise AssertionError("feedback actor did not come back")


@pytest.mark.integration
def test_named_actor_records_and_serves_snapshots(ray_local):
    ray = ray_local
    cfg = FeedbackConfig(actor_name="llmrl_feedback_test", publish_every=4, min_trials=2)
    handle = start_feedback_actor(cfg, TASK)
    assert ray.get(handle.record.remote(summaries(5))) == 5
    # Anyone in the namespace finds the same actor by name, and a second start gets it instead of a new one.
    same = start_feedback_actor(cfg, TASK)
    assert ray.get(same.stats.remote())["episodes"] == 5
    by_name = ray.get_actor(cfg.actor_name)
    snap = ray.get(by_name.snapshot.remote())
    assert snap.version == 1 and snap.task_description == TASK
    assert snap.success_lookup()[(STATE, PLAN)].trials == 4
    assert snap.feedback_lines == (f"In state '{STATE}', plan '{PLAN}' succeeded 4/4 times.",)
    assert ray.get(by_name.snapshot_if_newer.remote(1)) is None
    assert ray.get(by_name.stats.remote())["reconstructed"] == 0.0
    # A crash restarts the actor empty (flagged in stats and logged); the driver re-seeds it from a checkpoint.
    saved = ray.get(by_name.state_dict.remote())
    ray.kill(by_name, no_restart=False)
    assert _stats_after_restart(ray, by_name)["episodes"] == 0
    assert ray.get(by_name.load_state_dict.remote(saved)) == 1
    assert ray.get(by_name.snapshot.remote()) == snap
    ray.kill(by_name, no_restart=True)  # named actors outlive their handles: end it for the next test


@pytest.mark.integration
def test_sigkilled_actor_recovers_its_bank_to_within_one_flush(ray_local, tmp_path):
    ray = ray_local
    # A flush interval far longer than the test: only what record() writes itself (a new bank version) is on disk.
    cfg = FeedbackConfig(actor_name="llmrl_feedback_persist", publish_every=4, min_trials=2, flush_s=3600.0)
    handle = start_feedback_actor(cfg, TASK, persist_dir=str(tmp_path / "feedback"))
    ray.get(handle.record.remote(summaries(4)))  # publishes version 1: written at once
    ray.get(handle.record.remote(summaries(2, success=False)))  # within the flush interval: buffered
    before = ray.get(handle.snapshot.remote())
    first_id = ray.get(handle.instance_id.remote())
    pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    stats = _stats_after_restart(ray, handle)
    assert ray.get(handle.instance_id.remote()) != first_id  # what the training loop counts as a restart
    assert stats["recovered_episodes"] == 4 and stats["episodes"] == 4  # lost: the one unflushed batch
    assert ray.get(handle.snapshot.remote()) == before  # same version, same content
    # The recovered bank goes on from there: versions keep counting up.
    ray.get(handle.record.remote(summaries(4)))
    assert ray.get(handle.snapshot.remote()).version == 2
    ray.kill(handle, no_restart=True)
