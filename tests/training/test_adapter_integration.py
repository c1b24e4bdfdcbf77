"""The online adapter end to end: real Ray actors, real RLlib, the hf teacher on the tiny local LM.

One run trains a LoRA on the student's completed plans, the teacher service hot-loads it, and the adapter
trainer is killed mid-run (Ray restarts it; it continues from the version on disk). A second run resumes from
the first one's checkpoint with its adapter. Budgets are tiny: these check wiring, versions and faults; whether
the adapter makes a better teacher is the teacher-learns benchmark's question.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from llmrl.adapter.versions import latest_adapter

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

from test_integration import run, rows  # noqa: E402 - shared tiny-budget runner

ADAPTER = [
    "teacher.backend=hf",
    # As the LM-teacher configs run: evaluation after the iteration and the learner on one thread. The SimpleDoorKey
    # config's parallel evaluation and two learner threads leave the adapter trainer less of the two cores, and a
    # run of two iterations then ended before its first adapter version was served (one fresh-venv run, 2026-12-07).
    "run.parallel_eval=false",
    "resources.learner_torch_threads=1",
    "adapter.enabled=true",
    # Plan credit: a random student on a random LM's advice completes plans long before it solves the task.
    "feedback.credit=plan",
    "adapter.min_new_pairs=2",
    "adapter.train_every_episodes=4",
    "adapter.poll_s=0.2",
    "adapter.r=4",
    "adapter.alpha=8",
    "adapter.lr=5e-2",
    "adapter.epochs=3",
    "adapter.batch_size=4",
    "adapter.heldout_frac=0.3",
]


def kill_trainer_after_first_version(killed: threading.Event, versions_before_kill: list[int]) -> None:
    import ray

    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        if not ray.is_initialized():  # any Ray call before train() started Ray would start a second one
            time.sleep(0.2)
            continue
        try:
            handle = ray.get_actor("llmrl_adapter", namespace="llmrl")
            stats = ray.get(handle.stats.remote(), timeout=5)
            if stats.accepted >= 1:
                versions_before_kill.append(stats.version)
                ray.kill(handle, no_restart=False)  # Ray restarts it (adapter.max_restarts)
                killed.set()
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory, ray_module):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    tmp = tmp_path_factory.mktemp("adapter")
    model = build_tiny_lm(tmp / "tiny-lm")
    killed, before = threading.Event(), []
    thread = threading.Thread(target=kill_trainer_after_first_version, args=(killed, before), daemon=True)
    thread.start()
    summary = run(tmp, f"teacher.hf.model={model}", *ADAPTER, "run.max_env_steps=4096", "run.name=adapter")
    thread.join(timeout=5)
    return summary, str(model), killed.is_set(), before


def test_a_lora_is_trained_in_the_run_and_the_teacher_serves_it(adapter_run):
    s, _, _, _ = adapter_run
    run_dir = Path(s["run_dir"])
    version = latest_adapter(run_dir)
    assert version is not None and s["adapter_version"] >= 1 and s["adapter_accepted"] >= 1
    assert (run_dir / "adapters" / "v1" / "adapter_model.safetensors").is_file()
    metrics = rows(s["run_dir"])
    assert max(r["teacher_adapter_version"] for r in metrics) >= 1  # hot-loaded without a restart
    assert s["teacher_restarts"] == 0 and s["teacher_adapter_load_failures"] == 0
    assert latest_adapter(s["checkpoint"]) is not None  # the checkpoint holds the adapter in service


def test_the_served_adapter_moves_advice_toward_the_plans_the_student_completed(adapter_run):
    import asyncio

    from llmrl.config import HFConfig
    from llmrl.feedback.actor import PAIRS_KEY
    from llmrl.feedback.bank import _snapshot_from_dict
    from llmrl.feedback.pairs import PairLog
    from llmrl.teacher.backends.hf import HFBackend

    s, model, _, _ = adapter_run
    state = json.loads((Path(s["checkpoint"]) / "prompt_bank.json").read_text())
    pairs = PairLog(10_000, "plan")
    pairs.load_state_dict(state[PAIRS_KEY])
    bank = _snapshot_from_dict(state["published"], state["task_description"])
    queries = [p.query for p in pairs.pairs()]
    assert queries

    async def probs(adapter):
        backend = HFBackend(HFConfig(model=model))
        if adapter is not None:
            await backend.prepare_adapter(adapter)
            await backend.activate_adapter(adapter)
        out = await backend.advise(queries, bank)
        await backend.close()
        return [a.probs[a.options.index(p.plan)] for a, p in zip(out, pairs.pairs())]

    base = asyncio.run(probs(None))
    tuned = asyncio.run(probs(latest_adapter(s["run_dir"])))
    gain = sum(t - b for t, b in zip(tuned, base)) / len(base)
    assert gain > 0, (base, tuned)


def test_a_killed_trainer_is_restarted_counted_and_continues_from_its_version(adapter_run):
    s, _, killed, before = adapter_run
    assert killed and s["adapter_trainer_restarts"] >= 1
    metrics = rows(s["run_dir"])
    assert metrics[-1]["adapter_version"] >= before[0]  # the new instance started from the version on disk
    assert s["env_steps"] >= 4096  # training went on


def test_resume_restores_the_adapter(adapter_run, tmp_path):
    first, model, _, _ = adapter_run
    saved = latest_adapter(first["checkpoint"])
    resumed = run(tmp_path, f"teacher.hf.model={model}", *ADAPTER, "run.max_env_steps=5120",
                  f"run.resume={first['checkpoint']}")
    assert resumed["run_dir"] == first["run_dir"]
    metrics = rows(resumed["run_dir"])[first["iterations"]:]
    assert metrics and max(r["teacher_adapter_version"] for r in metrics) >= saved.version
    assert latest_adapter(resumed["checkpoint"]).version >= saved.version
