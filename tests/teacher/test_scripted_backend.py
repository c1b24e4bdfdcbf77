"""ScriptedBackend tests.

The real planners (``llmrl.envs.minigrid.planner``, ``llmrl.envs.crafter.planner``) are written separately;
here ``planner_module`` is monkeypatched with a small fake planner module so these tests only exercise the
backend's own logic (error draws, one-hot answers, bank version, seeding).
"""

from __future__ import annotations

import asyncio
import types

import pytest

from llmrl.config import TeacherConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, make_backend
from llmrl.teacher.backends import scripted as scripted_mod
from llmrl.teacher.backends.scripted import ScriptedBackend

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door", "drop key")


def _fake_planner() -> types.ModuleType:
    """Fake planner: "key" in the state -> get the key; "door" -> open it; "nothing" -> no plan."""
    mod = types.ModuleType("fake_planner")

    def correct_option(state_text, options):
        if "nothing" in state_text:
            return None
        return "go to key, pick up key" if "key" in state_text else "go to door, open door"

    def wrong_options(state_text, options, correct):
        return [o for o in ("go to door, open door", "drop key") if o != correct]

    mod.correct_option = correct_option
    mod.wrong_options = wrong_options
    return mod


@pytest.fixture(autouse=True)
def fake_planner(monkeypatch):
    fake = _fake_planner()
    monkeypatch.setattr(scripted_mod, "planner_module", lambda family: fake)
    return fake


BANK = PromptBankSnapshot(version=5, task_description="t")


def _run(backend, queries):
    return asyncio.run(backend.advise(queries, BANK))


def test_correct_one_hot_without_errors():
    backend = ScriptedBackend(TeacherConfig(error_rate=0.0), seed=0)
    assert backend.name == "scripted"
    out = _run(backend, [TeacherQuery("minigrid", "SimpleDoorKey", "sees key", OPTIONS),
                         TeacherQuery("minigrid", "SimpleDoorKey", "sees door", OPTIONS)])
    assert out[0].probs == (0.0, 1.0, 0.0, 0.0) and out[0].source == "scripted" and out[0].bank_version == 5
    assert out[1].best() == "go to door, open door"


def test_no_plan_is_no_advice():
    query = TeacherQuery("minigrid", "SimpleDoorKey", "sees nothing", OPTIONS)
    out = _run(ScriptedBackend(TeacherConfig(), 0), [query])
    assert not out[0].has_advice and out[0].reason == "no_plan"


def test_error_rate_statistics():
    backend = ScriptedBackend(TeacherConfig(error_rate=0.3, seed=1), seed=0)
    queries = [TeacherQuery("minigrid", "SimpleDoorKey", f"sees key {i}", OPTIONS) for i in range(2000)]
    out = _run(backend, queries)
    wrong = [a.best() for a in out if a.best() != "go to key, pick up key"]
    assert abs(len(wrong) / 2000 - 0.3) < 0.05
    # Wrong answers are plausible wrong options, never arbitrary ones.
    assert set(wrong) <= {"go to door, open door", "drop key"} and len(set(wrong)) == 2
    assert all(sum(a.probs) == 1.0 and max(a.probs) == 1.0 for a in out)
    assert backend.stats()["wrong"] == len(wrong)


def test_errors_are_a_fixed_function_of_seed_and_state():
    queries = [TeacherQuery("minigrid", "SimpleDoorKey", f"sees key {i}", OPTIONS) for i in range(200)]
    cfg = TeacherConfig(error_rate=0.5, seed=3)
    a = [x.best() for x in _run(ScriptedBackend(cfg, 0), queries)]
    # Same teacher on every replica and in any arrival order; another teacher.seed is another teacher.
    replica = [x.best() for x in _run(ScriptedBackend(cfg, 1), queries)]
    shuffled = [x.best() for x in _run(ScriptedBackend(cfg, 0), queries[::-1])][::-1]
    other = [x.best() for x in _run(ScriptedBackend(TeacherConfig(error_rate=0.5, seed=4), 0), queries)]
    assert a == replica == shuffled and a != other


def test_make_backend_dispatch():
    assert isinstance(make_backend(TeacherConfig(backend="scripted")), ScriptedBackend)
    with pytest.raises(BackendError, match="teacher.backend"):
        make_backend(TeacherConfig(backend="off"))


def test_import_llmrl_teacher_is_light():
    import subprocess
    import sys

    code = ("import sys, llmrl.teacher, llmrl.teacher.backends, llmrl.teacher.prompting, llmrl.teacher.plan_choice; "
            "print(sorted(m for m in ('torch', 'vllm', 'httpx', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
