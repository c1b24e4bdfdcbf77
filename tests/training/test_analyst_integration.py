"""adapter.role=analyst end to end: real Ray actors, real RLlib, the hf teacher and the analyst both on the tiny
local LM. The analyst writes analyses into the frozen teacher's prompts, the feedback actor turns those that
preceded completed plans into pairs, the adapter trainer fine-tunes the analyst's LoRA, and the teacher service
hot-loads it into the analyst. MiniGrid rather than Crafter (whose configs use this role) because its episodes
are short and its plans complete often: a budget of seconds then yields pairs; the wiring is the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.adapter.versions import MANIFEST, latest_adapter

# In-process runs share the suite's Ray (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

from test_adapter_integration import ADAPTER  # noqa: E402 - the same tiny fine-tuning settings
from test_integration import rows, run  # noqa: E402 - shared tiny-budget runner


@pytest.fixture(scope="module")
def analyst_run(tmp_path_factory, ray_module):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    tmp = tmp_path_factory.mktemp("analyst")
    model = build_tiny_lm(tmp / "tiny-lm")
    return run(tmp, f"teacher.hf.model={model}", *ADAPTER, "adapter.role=analyst", "adapter.analysis_tokens=4",
               "run.max_env_steps=4096", "run.name=analyst")


def test_an_analyst_lora_is_trained_in_the_run_and_served_to_the_analyst(analyst_run):
    s = analyst_run
    run_dir = Path(s["run_dir"])
    version = latest_adapter(run_dir)
    counters = {k: v for k, v in s.items() if "adapter" in k or "anal" in k}
    assert version is not None and version.role == "analyst" and s["adapter_accepted"] >= 1, counters
    assert json.loads((Path(version.path) / MANIFEST).read_text())["role"] == "analyst"
    metrics = rows(s["run_dir"])
    assert max(r["teacher_adapter_version"] for r in metrics) >= 1  # hot-loaded into the analyst, no restart
    assert s["teacher_adapter_load_failures"] == 0 and s["teacher_restarts"] == 0
    assert s["teacher_analyses"] >= 1 and s["teacher_analyst_failures"] == 0
    assert s["teacher_analyst_calls"] == (s["teacher_analyses"] + s["teacher_analyses_empty"]
                                          + s["teacher_analyst_failures"])


def test_the_checkpointed_pairs_are_analyses_before_completed_plans(analyst_run):
    from llmrl.feedback.actor import PAIRS_KEY
    from llmrl.feedback.pairs import PairLog

    s = analyst_run
    state = json.loads((Path(s["checkpoint"]) / "prompt_bank.json").read_text())
    pairs = PairLog(10_000, "plan", "analyst")
    pairs.load_state_dict(state[PAIRS_KEY])
    assert pairs.pairs() and all(p.analysis for p in pairs.pairs())
    assert latest_adapter(s["checkpoint"]).role == "analyst"  # the checkpoint holds the analyst's adapter


def test_eval_teacher_of_the_run_serves_its_analyst_adapter(analyst_run):
    import subprocess
    import sys

    s = analyst_run
    out = subprocess.run(
        [sys.executable, "-m", "llmrl.cli", "eval", "--teacher", s["run_dir"], "--episodes", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["adapter_version"] == latest_adapter(s["checkpoint"]).version >= 1  # loaded onto the analyst
