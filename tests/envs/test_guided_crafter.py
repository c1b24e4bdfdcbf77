"""TeacherGuidedEnv's Crafter ask policy with a hand-written sub-goal task (no crafter world, no Ray): ask every K
steps or when the current sub-goal completes, condition the observation on the sub-goal, pay the intrinsic
bonus once per completed suggestion, report the episode's achievements."""

import gymnasium as gym
import numpy as np

from llmrl.config import Config
from llmrl.envs.guided import TEACHER_PROBS, TeacherGuidedEnv
from llmrl.messages import Advice

SUBGOALS = ("collect wood", "explore")


class WoodTask(gym.Env):
    """Action 1 collects one wood; "collect wood" is done once wood rose since ``begin_option``."""

    family, task_name, num_actions = "crafter", "Crafter", 3
    action_names = ("noop", "do", "move_left")
    observation_space = gym.spaces.Dict({"subgoal": gym.spaces.Box(0, 2, (1,), np.int64)})
    action_space = gym.spaces.Discrete(3)

    def __init__(self, max_steps=50):
        self.max_steps = max_steps

    def reset(self, *, seed=None, options=None):
        self.wood, self.t, self.subgoal, self.base = 0, 0, None, 0
        return self.current_obs(), {}

    def current_obs(self):
        return {"subgoal": np.array([SUBGOALS.index(self.subgoal) + 1 if self.subgoal else 0], np.int64)}

    def step(self, a):
        self.t += 1
        self.wood += int(a == 1)
        return self.current_obs(), 0.0, False, self.t >= self.max_steps, {}

    def task_description(self):
        return "collect wood"

    def state_text(self):
        return f"wood {self.wood}"

    def options(self):
        return SUBGOALS

    def option_action(self, option):
        return 1 if option == "collect wood" else 2

    def begin_option(self, option):
        self.subgoal, self.base = option, self.wood

    def option_progress(self, option):
        return (int(option == "collect wood" and self.wood > self.base), 1)

    def success(self):
        return self.wood > 0

    def episode_achievements(self):
        return ("collect_wood",) if self.wood else ()


class WoodTeacher:
    def __init__(self):
        self.queries = []

    def request(self, query):
        self.queries.append(query)
        return Advice(query.options, (1.0, 0.0))

    def note_advised_step(self, advice):
        pass

    def stats(self):
        return {}


def make_env(k=5, on_done=True, bonus=0.5, max_steps=50):
    cfg = Config()
    cfg.env.name, cfg.env.ask_every_k, cfg.env.ask_on_subgoal_done, cfg.env.intrinsic_reward = (
        "Crafter", k, on_done, bonus)
    teacher = WoodTeacher()
    return TeacherGuidedEnv(WoodTask(max_steps), cfg, teacher, None), teacher


def test_asks_every_k_steps_while_the_subgoal_is_not_done():
    env, teacher = make_env(k=5)
    obs, info = env.reset()
    assert obs["subgoal"].tolist() == [1]  # conditioned on "collect wood" from the first step
    assert np.allclose(info[TEACHER_PROBS], [0.0, 1.0, 0.0])  # the skill action of the suggested sub-goal
    for _ in range(12):
        env.step(0)  # never collects: the sub-goal stays open
    assert len(teacher.queries) == 3  # at reset, after 5 and after 10 steps


def test_completed_subgoal_triggers_a_new_question_and_one_bonus():
    env, teacher = make_env(k=100)
    env.reset()
    rewards = [env.step(1)[1] for _ in range(3)]
    # Each step completes the current suggestion; each completion is paid once and the teacher is re-asked.
    assert rewards == [0.5, 0.5, 0.5]
    assert len(teacher.queries) == 4
    env, teacher = make_env(k=100, on_done=False)
    env.reset()
    rewards = [env.step(1)[1] for _ in range(3)]
    assert rewards == [0.5, 0.0, 0.0]  # no re-ask: the same suggestion is not paid twice
    assert len(teacher.queries) == 1


def test_bonus_on_the_last_step_and_achievements_at_episode_end():
    env, _ = make_env(k=100, max_steps=2)
    env.reset()
    _, r, _, truncated, info = env.step(0)
    assert r == 0.0 and "episode_achievements" not in info
    _, r, _, truncated, info = env.step(1)
    assert truncated and r == 0.5
    assert info["episode_achievements"] == ("collect_wood",) and info["success"]
    assert info["episode_env_return"] == 0.0  # the task's own reward, without the bonus
