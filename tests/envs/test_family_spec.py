"""Family specs and the registry: what each shipped family decides, name resolution and its errors, a user's own
family (``package.module:factory``) and the one-line errors for a factory that does not fit."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from llmrl.config import ConfigError, EnvConfig, load_config
from llmrl.core import ASK_EVERY_K_OR_DONE, ASK_ON_TEXT_CHANGE, FamilySpec
from llmrl.envs import registry
from llmrl.envs.guided import TeacherGuidedEnv
from llmrl.teacher.prompting import answer_cue, template_text

ROOT = Path(__file__).resolve().parents[2]
CORRIDOR = "examples.corridor:CorridorEnv"


def test_shipped_families_decide_what_the_branches_did():
    minigrid, crafter = registry.family_spec("minigrid"), registry.family_spec("crafter")
    assert (minigrid.num_actions, minigrid.encoder, minigrid.ask) == (7, "grid", ASK_ON_TEXT_CHANGE)
    assert (crafter.num_actions, crafter.encoder, crafter.ask) == (17, "image_subgoal", ASK_EVERY_K_OR_DONE)
    assert not minigrid.eval_explore and not minigrid.eval_with_teacher
    assert crafter.eval_explore and crafter.eval_with_teacher
    assert len(crafter.achievements) == 22 and minigrid.achievements == ()
    assert crafter.metrics is not None and crafter.summary is not None and minigrid.metrics is None
    assert answer_cue("minigrid") == "Plan:" and answer_cue("crafter") == "Sub-goal:"
    assert "Allowed sub-goals:" in template_text() and "Allowed plans:" in template_text()


@pytest.mark.parametrize("name, family", [("SimpleDoorKey", "minigrid"), ("TwoDoor", "minigrid"),
                                          ("DoorKey-8x8", "minigrid"), ("Crafter", "crafter")])
def test_names_resolve_to_their_family(name, family):
    assert registry.family_spec(name).name == family == EnvConfig(name=name).family


def test_unknown_name_is_one_line_with_the_closest_names():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["env.name=DoorKey-8x9"])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("env.name:") and "did you mean DoorKey-8x8" in msg


def test_a_family_is_found_by_its_predicate():
    spec = FamilySpec(name="x", num_actions=2, encoder="vector", names=lambda: ("A",), owns=lambda n: n.startswith("X-"))
    assert spec.owns_name("X-1") and not spec.owns_name("A")
    with pytest.raises(ValueError, match="ask"):
        FamilySpec(name="x", num_actions=2, encoder="vector", names=tuple, ask="sometimes")


def test_family_rules_are_config_errors():
    with pytest.raises(ConfigError, match="env.room_min: must be >= 5 for SimpleDoorKey"):
        load_config(None, ["env.room_min=4", "env.room_max=8"])
    load_config(None, ["env.name=TwoDoor", "env.room_min=3", "env.room_max=8"])  # TwoDoor's room is fixed


def test_no_family_branch_or_concrete_family_import_outside_envs():
    offenders = []
    for path in (ROOT / "llmrl").rglob("*.py"):
        if path.is_relative_to(ROOT / "llmrl" / "envs"):
            continue
        text = path.read_text()
        for pattern in (r"family\s*==", r"(?:from|import)\s+llmrl\.envs\.(?:minigrid|crafter)\b"):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []


# -- a user's own family ------------------------------------------------------------------------------------


def test_user_family_builds_and_the_scripted_teacher_solves_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_config(ROOT / "examples" / "corridor" / "corridor.yaml")
    spec = registry.family_spec(CORRIDOR)
    # Known by its env.name everywhere, so the teacher service finds its planner and prompt words the same way.
    assert spec.name == CORRIDOR == cfg.env.family and spec.encoder == "vector"
    planner = registry.planner_module(CORRIDOR)
    env = TeacherGuidedEnv(registry.make_task(cfg.env, seed=0), cfg, None, None)
    assert env.family_spec is spec
    task = env.task
    for seed in range(10):
        task.reset(seed=seed)
        done = False
        while not done:
            option = planner.correct_option(task.state_text(), task.options())
            _, _, terminated, truncated, _ = task.step(task.option_action(option))
            done = terminated or truncated
        assert task.success()


def _user_module(tmp_path, monkeypatch, body: str) -> str:
    (tmp_path / "my_family_mod.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._user_spec.cache_clear()
    return "my_family_mod"


SPEC = """
    import gymnasium as gym
    import numpy as np
    from llmrl.core import FamilySpec

    SPEC = FamilySpec(name="mine", num_actions=2, encoder="vector", names=lambda: ())

    class NotGuidable(gym.Env):
        observation_space = gym.spaces.Dict({"vector": gym.spaces.Box(0, 1, (2,), np.float32)})
        action_space = gym.spaces.Discrete(2)
        family, task_name, num_actions = "mine", "Mine", 2
        family_spec = SPEC

        def __init__(self, cfg, seed=None):
            pass

        def state_text(self):
            return ""

    def no_spec(cfg, seed=None):
        return NotGuidable(cfg, seed)
"""


def test_factory_without_the_protocol_names_what_is_missing(tmp_path, monkeypatch):
    mod = _user_module(tmp_path, monkeypatch, SPEC)
    cfg = load_config(None, [f"env.name={mod}:NotGuidable", "teacher.backend=off"])
    with pytest.raises(ConfigError) as err:
        registry.make_task(cfg.env)
    msg = str(err.value)
    assert "\n" not in msg and "task_description, options, option_action, option_progress, begin_option, success" in msg
    with pytest.raises(ConfigError, match="has no family_spec"):
        load_config(None, [f"env.name={mod}:no_spec"])
    with pytest.raises(ConfigError, match="cannot import no_such_module"):
        load_config(None, ["env.name=no_such_module:make"])
    with pytest.raises(ConfigError, match="has no callable 'missing'"):
        load_config(None, [f"env.name={mod}:missing"])
    # Its spec names no planner, so the scripted teacher cannot serve it.
    with pytest.raises(ConfigError, match="teacher.backend: scripted needs a scripted planner"):
        load_config(None, [f"env.name={mod}:NotGuidable", "teacher.backend=scripted"])


def test_cli_exits_2_on_a_bad_factory(tmp_path, monkeypatch, capsys):
    from llmrl.cli import main

    mod = _user_module(tmp_path, monkeypatch, SPEC)
    assert main(["eval", "--teacher", str(ROOT / "configs" / "minigrid" / "simple_doorkey.yaml"),
                 f"env.name={mod}:no_spec"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmrl: config error: env.name:") and "\n" not in err
