"""A user's own environment family for llmrl, in one module: a corridor with a switch (``docs/custom_env.md``).

The agent stands somewhere in a corridor of ``LENGTH`` cells. The exit at the right end lets it out only once the
switch at the left end is pressed, so the task needs two sub-tasks in the right order: the kind of structure an
LLM teacher's plan helps with. Train it with ``env.name=examples.corridor:CorridorEnv`` (from the repository root,
which llmrl puts on the import path for such names).

What llmrl needs: a gymnasium env that implements ``llmrl.core.Guidable`` (the text view, the options and the
scripted skills below), and its ``FamilySpec`` as ``family_spec`` on the factory (here the class itself). This
module is also the family's scripted planner (``correct_option``/``wrong_options``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from llmrl.core import FamilySpec

LENGTH = 8  # corridor cells; the switch is at cell 0, the exit at cell LENGTH - 1
LEFT, RIGHT, PRESS = range(3)
PRESS_SWITCH, GO_TO_EXIT = "press the switch", "go to the exit"

FAMILY = FamilySpec(
    name="corridor",  # llmrl knows the family by its env.name (examples.corridor:CorridorEnv) everywhere
    num_actions=3,
    encoder="vector",  # the student reads {"vector": float (n,)} with an MLP
    names=lambda: ("Corridor",),
    planner=__name__,  # correct_option / wrong_options below, for teacher.backend=scripted
    option_word=("plan", "plans"),
)


class CorridorEnv(gym.Env):
    family, task_name, num_actions = "corridor", "Corridor", 3
    family_spec = FAMILY

    def __init__(self, cfg, seed: int | None = None):  # cfg: llmrl.config.EnvConfig
        self.max_steps = cfg.max_steps
        self.observation_space = gym.spaces.Dict({"vector": gym.spaces.Box(0.0, 1.0, (LENGTH + 1,), np.float32)})
        self.action_space = gym.spaces.Discrete(3)
        self._first_seed = seed

    def reset(self, *, seed=None, options=None):
        super().reset(seed=self._first_seed if seed is None else seed)
        self._first_seed = None
        self.pos, self.switch_on, self.t = int(self.np_random.integers(1, LENGTH - 1)), False, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        if action in (LEFT, RIGHT):
            self.pos = min(LENGTH - 1, max(0, self.pos + (1 if action == RIGHT else -1)))
        self.switch_on = self.switch_on or bool(action == PRESS and self.pos == 0)
        solved = self.success()
        reward = 1.0 - 0.9 * self.t / self.max_steps if solved else 0.0  # MiniGrid's reward shape
        return self._obs(), reward, solved, self.t >= self.max_steps and not solved, {}

    def _obs(self):
        v = np.zeros(LENGTH + 1, np.float32)
        v[self.pos], v[LENGTH] = 1.0, float(self.switch_on)
        return {"vector": v}

    # -- llmrl.core.Guidable: what the teacher reads, and the scripted skills that turn plans into actions --

    def task_description(self):
        return ("An agent is in a corridor with a switch at the left end and an exit at the right end. The exit "
                "opens only after the switch is pressed. Choose one plan: press the switch, or go to the exit.")

    def state_text(self):
        return f"The switch is {'on' if self.switch_on else 'off'}."  # the teacher is asked when this changes

    def options(self):
        return (PRESS_SWITCH, GO_TO_EXIT)

    def option_action(self, option):
        if option == PRESS_SWITCH:
            return None if self.switch_on else PRESS if self.pos == 0 else LEFT
        return RIGHT if option == GO_TO_EXIT else None

    def option_progress(self, option):
        return int(self.switch_on if option == PRESS_SWITCH else self.pos == LENGTH - 1), 1

    def begin_option(self, option):
        """The skills keep no state of their own."""

    def success(self):
        return bool(self.switch_on and self.pos == LENGTH - 1)


def correct_option(state_text: str, options: tuple[str, ...]) -> str:
    """The scripted teacher: the switch first, then the exit."""
    return PRESS_SWITCH if "off" in state_text else GO_TO_EXIT


def wrong_options(state_text: str, options: tuple[str, ...], correct: str) -> list[str]:
    """The mistake an imperfect teacher makes (``teacher.error_rate``): the other plan."""
    return [o for o in options if o != correct]
