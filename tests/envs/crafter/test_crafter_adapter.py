"""The gymnasium adapter: spaces, sub-goal state, episode ends, Guidable, and the scripted teacher alone."""

import crafter.constants
import numpy as np

from llmrl.config import EnvConfig
from llmrl.core import Guidable
from llmrl.envs.crafter.planner import correct_option
from llmrl.envs.crafter.subgoals import SUBGOAL_INDEX, SUBGOALS
from llmrl.envs.registry import make_task, planner_module

ACTIONS = list(crafter.constants.actions)


def test_registry_and_protocol(seeded_task):
    task = make_task(EnvConfig(name="Crafter"), seed=1)
    assert type(task).__name__ == "CrafterTask"
    assert isinstance(seeded_task, Guidable)
    assert seeded_task.family == "crafter" and seeded_task.task_name == "Crafter" and seeded_task.num_actions == 17
    assert seeded_task.action_space.n == 17
    assert planner_module("crafter").correct_option is correct_option
    description = seeded_task.task_description()
    assert "Crafter" in description and all(s in description for s in SUBGOALS)


def test_observations_inside_space(task):
    space = task.observation_space
    assert space["subgoal"].high[0] == len(SUBGOALS)
    obs = task.current_obs()
    assert space.contains(obs)
    rng = np.random.default_rng(0)
    for i in range(30):
        if i == 10:
            task.begin_option(SUBGOALS[-1])
        obs, reward, terminated, truncated, info = task.step(int(rng.integers(17)))
        assert space.contains(obs), i
        assert isinstance(info["achievements"], list) and "inventory" in info and "semantic" in info
    assert obs["subgoal"][0] == len(SUBGOALS)


def test_subgoal_state(task):
    assert task.current_obs()["subgoal"][0] == 0
    task.begin_option("collect wood")
    assert task.current_obs()["subgoal"][0] == SUBGOAL_INDEX["collect wood"] == 1
    assert task.current_subgoal == "collect wood"
    task.begin_option(None)
    assert task.current_obs()["subgoal"][0] == 0
    try:
        task.begin_option("fly to the moon")
    except ValueError:
        pass
    else:
        raise AssertionError("unknown sub-goal accepted")


def test_death_terminates(task):
    task._env._player.health = 0
    _, _, terminated, truncated, info = task.step(ACTIONS.index("noop"))
    assert terminated and not truncated and info["discount"] == 0.0


def test_time_limit_truncates_and_reset_seed_reproduces(seeded_task, seed):
    task = make_task(EnvConfig(name="Crafter", max_steps=5), seed=123)
    obs, info = task.reset(seed=seed)
    assert np.array_equal(obs["image"], seeded_task.current_obs()["image"])
    assert task.state_text() == seeded_task.state_text()
    assert info["achievements"] == []
    for i in range(5):
        _, _, terminated, truncated, _ = task.step(ACTIONS.index("noop"))
        assert not terminated
        assert truncated == (i == 4)


def test_scripted_teacher_alone(task):
    """Re-plan every 100 steps or on completion, as the teacher wrapper does; act with the option's skill."""
    current, since, unlocked = None, 0, []
    for _ in range(300):
        if current is None or since >= 100 or task.option_progress(current) == (1, 1):
            current = correct_option(task.state_text(), task.options())
            task.begin_option(current)
            since = 0
        action = task.option_action(current)
        if action is None:
            action = task.option_action("explore")
        _, _, terminated, truncated, info = task.step(ACTIONS.index("noop") if action is None else action)
        unlocked += info["achievements"]
        since += 1
        if terminated or truncated:
            break
    assert unlocked == list(task.episode_achievements())
    print("scripted teacher alone unlocked:", unlocked)
    assert {"collect_wood", "place_table"} <= set(unlocked)


def test_text_options_and_skills_agree_along_a_rollout(task):
    from llmrl.envs.crafter.planner import wrong_options
    from llmrl.envs.crafter.subgoals import admissible_subgoals
    from llmrl.envs.crafter.text import parse_state_text, render_state_text

    rng = np.random.default_rng(1)
    moves = {ACTIONS.index(a): d for a, d in
             (("move_left", (-1, 0)), ("move_right", (1, 0)), ("move_up", (0, -1)), ("move_down", (0, 1)))}
    for i in range(120):
        text, options = task.state_text(), task.options()
        view = parse_state_text(text)
        assert render_state_text(view) == text
        assert admissible_subgoals(view) == options  # the options are a function of the text alone
        correct = correct_option(text, options)
        wrong = wrong_options(text, options, correct)
        assert correct in options and correct not in wrong and set(wrong) <= set(options)
        assert bool(wrong) == (len(options) >= 2)
        for option in options:
            action = task.option_action(option)
            assert action is None or 0 <= action < 17
            if action in moves:
                x, y = task._env._player.pos + np.array(moves[action])
                assert task._env._world[(x, y)][0] != "lava"
        action = task.option_action(correct) if i % 3 else int(rng.integers(17))
        _, _, terminated, truncated, _ = task.step(ACTIONS.index("noop") if action is None else action)
        if terminated or truncated:
            break
