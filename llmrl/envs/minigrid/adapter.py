"""``MiniGridTask``: a MiniGrid task as a gymnasium env with the student's observation, plus ``Guidable``.

The student sees ``{"grid": uint8 (S, S, 4)}``: LLM4Teach's historical map (what it has seen so far,
``knowledge.Knowledge``), S being the grid side (``room_max`` for LLM4Teach's tasks, the env's width for
stock ones). The teacher side reads ``state_text()`` and ``options()`` (recomputed only when knowledge
changes) and asks ``option_action(plan)`` for the scripted skills' action (memoised until the agent moves
or learns something).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from llmrl.config import EnvConfig
from llmrl.envs.minigrid.knowledge import Knowledge
from llmrl.envs.minigrid.planner import admissible_options
from llmrl.envs.minigrid.plans import Step, parse_plan
from llmrl.envs.minigrid.skills import first_unfinished_action, progress
from llmrl.envs.minigrid.tasks import build_env
from llmrl.envs.minigrid.text import render_state_text, task_description

NUM_ACTIONS = 7  # MiniGrid: left, right, forward, pickup, drop, toggle, done


@lru_cache(maxsize=1024)
def _plan(option: str) -> tuple[Step, ...] | None:
    # Options repeat endlessly (a few per state), so each string is parsed once per process.
    return parse_plan(option)


class MiniGridTask(gymnasium.Env):
    """One MiniGrid task for the student (historical-map observation) and the teacher (``Guidable``)."""

    family = "minigrid"
    num_actions = NUM_ACTIONS

    def __init__(self, cfg: EnvConfig, seed: int | None = None):
        env, self.task_spec = build_env(cfg)
        self._attach(cfg, env, self.task_spec.colours, seed)

    def _attach(self, cfg: EnvConfig, env: gymnasium.Env, colours: str, seed: int | None) -> None:
        """Wrap ``env`` (any MiniGrid env, not yet reset); ``colours`` as in ``tasks.TaskSpec``."""
        self.task_name = cfg.name
        self._env = env
        self.raw = self._env.unwrapped  # the MiniGridEnv: grid, agent pose, carried object
        side = max(self.raw.width, self.raw.height)
        self._egocentric = cfg.egocentric
        obs_side = 2 * side - 1 if self._egocentric else side
        self.observation_space = spaces.Dict({"grid": spaces.Box(0, 255, (obs_side, obs_side, 4), np.uint8)})
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.knowledge = Knowledge(
            self.raw.width, self.raw.height, side, self.raw.agent_view_size, colours
        )
        self._pending_seed = seed  # used by the first reset that is not given a seed
        self._success = False

    # ---- gymnasium ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        super().reset(seed=seed)
        obs, info = self._env.reset(seed=seed, options=options)
        self.knowledge.reset()
        self.knowledge.observe(self.raw, obs["image"])
        self._success = False
        return self._student_obs(), info

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self._env.step(action)
        self.knowledge.observe(self.raw, obs["image"])
        # Every task pays a positive reward only on success (door opened / goal or ball reached).
        if reward > 0:
            self._success = True
        info = dict(info)
        info["success"] = self._success
        return self._student_obs(), float(reward), terminated, truncated, info

    def _student_obs(self) -> dict[str, np.ndarray]:
        if self._egocentric:
            return {"grid": self.knowledge.egocentric_obs()}
        return {"grid": self.knowledge.student_obs()}

    def close(self) -> None:
        self._env.close()

    # ---- Guidable -------------------------------------------------------------------------------------

    def task_description(self, style: str = "plain") -> str:
        return task_description(self.task_name, style)

    def state_text(self) -> str:
        memo = self.knowledge.memo
        if "text" not in memo:
            memo["text"] = render_state_text(self.knowledge.facts())
        return memo["text"]

    def options(self) -> tuple[str, ...]:
        memo = self.knowledge.memo
        if "options" not in memo:
            memo["options"] = admissible_options(self.knowledge.facts())
        return memo["options"]

    def option_action(self, option: str) -> int | None:
        memo = self.knowledge.pose_memo
        key = ("action", option)
        if key not in memo:
            steps = _plan(option)
            memo[key] = None if steps is None else first_unfinished_action(steps, self.knowledge)
        return memo[key]

    def option_progress(self, option: str) -> tuple[int, int]:
        memo = self.knowledge.pose_memo
        key = ("progress", option)
        if key not in memo:
            steps = _plan(option)
            memo[key] = (0, 0) if steps is None else progress(steps, self.knowledge)
        return memo[key]

    def begin_option(self, option: str) -> None:
        """MiniGrid skills keep no per-option state: each action is recomputed from the current map."""

    def success(self) -> bool:
        return self._success


def make_task(cfg: EnvConfig, seed: int | None = None) -> MiniGridTask:
    """Entry point for ``llmrl.envs.registry.make_task``."""
    return MiniGridTask(cfg, seed)
