"""TeacherGuidedEnv with a hand-written Guidable task and an in-process advice source (fakes: the real
envs and the Ray teacher are tested elsewhere; this checks the wrapper's own logic)."""

import gymnasium as gym
import numpy as np

from llmrl.config import Config
from llmrl.envs.guided import TEACHER_PROBS, TeacherGuidedEnv
from llmrl.messages import Advice


class Corridor(gym.Env):
    """Walk right 3 cells; the text changes at every cell."""

    family, task_name, num_actions = "minigrid", "Corridor", 3
    observation_space = gym.spaces.Dict({"grid": gym.spaces.Box(0, 255, (1, 4, 4), np.uint8)})
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        self.pos = 0
        return self._obs(), {}

    def _obs(self):
        return {"grid": np.zeros((1, 4, 4), np.uint8)}

    def step(self, a):
        self.pos += 1 if a == 1 else 0
        done = self.pos >= 3
        return self._obs(), float(done), done, False, {}

    def task_description(self):
        return "walk right"

    def state_text(self):
        return f"at {self.pos}"

    def options(self):
        return ("go right", "wait")

    def option_action(self, option):
        return 1 if option == "go right" else 0

    def option_progress(self, option):
        return (1, 1) if self.pos >= 3 else (0, 1)

    def begin_option(self, option):
        pass

    def success(self):
        return self.pos >= 3


class FakeSource:
    def __init__(self, probs=(0.75, 0.25)):
        self.queries = []
        self.advised_steps = []
        self.probs = probs

    def request(self, query):
        self.queries.append(query)
        return Advice(query.options, self.probs)

    def note_advised_step(self, advice):
        self.advised_steps.append(advice)

    def stats(self):
        return {}


class FakeSink:
    def __init__(self):
        self.summaries = []

    def send(self, s):
        self.summaries.append(s)


def test_soft_mode_mixes_skill_actions_and_asks_only_on_new_text():
    src, sink = FakeSource(), FakeSink()
    env = TeacherGuidedEnv(Corridor(), Config(), src, sink)
    _, info = env.reset()
    assert np.allclose(info[TEACHER_PROBS], [0.25, 0.75, 0.0])
    env.step(0)  # no move: same text, no new query
    assert len(src.queries) == 1
    for _ in range(3):
        _, _, term, _, info = env.step(1)
    assert term and info["success"]
    assert len(src.queries) == 3  # positions 0, 1, 2 (none after termination)
    (summary,) = sink.summaries
    assert summary.success and summary.length == 4
    assert [o.option for o in summary.outcomes] == ["go right"] * 3
    assert summary.outcomes[-1].steps_completed == 1


def test_hard_mode_is_one_hot_and_off_is_zeros():
    cfg = Config()
    cfg.teacher.mode = "hard"
    env = TeacherGuidedEnv(Corridor(), cfg, FakeSource(), None, seed=1)
    _, info = env.reset()
    p = info[TEACHER_PROBS]
    assert p.sum() == 1.0 and p.max() == 1.0
    off = TeacherGuidedEnv(Corridor(), Config(), None, None)
    _, info = off.reset()
    assert not info[TEACHER_PROBS].any()


def test_no_advice_means_zero_probs():
    class Silent(FakeSource):
        def request(self, query):
            self.queries.append(query)
            return None

    env = TeacherGuidedEnv(Corridor(), Config(), Silent(), None)
    _, info = env.reset()
    assert not info[TEACHER_PROBS].any()


def test_every_advised_step_is_noted_with_the_advice_in_force():
    # The client counts steps guided by a superseded prompt bank from these notes.
    src = FakeSource()
    env = TeacherGuidedEnv(Corridor(), Config(), src, None)
    env.reset()
    env.step(0)  # same text: the advice from reset still guides this step
    env.step(1)
    assert len(src.advised_steps) == 3 and all(a.options == ("go right", "wait") for a in src.advised_steps)
    env.step(1)
    env.step(1)  # terminal step: no advice for a next state
    assert len(src.advised_steps) == 4

    silent = FakeSource()
    silent.request = lambda query: None
    env = TeacherGuidedEnv(Corridor(), Config(), silent, None)
    env.reset()
    env.step(0)
    assert silent.advised_steps == []  # no advice, nothing guided
