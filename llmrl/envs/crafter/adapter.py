"""Crafter as a gymnasium env that a teacher can guide (``llmrl.core.Guidable``), conditioned on a sub-goal.

Observation: ``{"image": uint8 (S, S, 3), "inventory": float32 (16,) = counts and vital stats / 9,
"subgoal": int64 (1,) = 1-based index into SUBGOALS of the current sub-goal, 0 = none}``.

The current sub-goal is state of the task, set by ``begin_option``; the teacher wrapper calls it and then reads
``current_obs()`` so the student sees the sub-goal it is now asked to pursue. Death terminates an episode; the
step limit (``EnvConfig.max_steps``) truncates it.

An episode counts as a *success* when it unlocks ``make_wood_pickaxe``: the first tool ends the first stage of
the tech tree (collect wood -> place table -> make wood pickaxe), which a random agent almost never reaches and a
trained PPO agent usually does. Unlocking any achievement would be too easy a bar (a random agent collects a
sapling or wood in most episodes). The main metric stays the Crafter score (``llmrl.envs.crafter.score``).
"""

from __future__ import annotations

from typing import Any

import crafter
import gymnasium as gym
import numpy as np
from crafter import constants as crafter_constants

from llmrl.config import EnvConfig
from llmrl.envs.crafter.score import ACHIEVEMENTS
from llmrl.envs.crafter.skills import Explorer, skill_action
from llmrl.envs.crafter.subgoals import (
    ACHIEVEMENT_OF,
    ITEM_MAX,
    ITEMS,
    SUBGOAL_INDEX,
    SUBGOALS,
    admissible_subgoals,
    achievement_phrase,
)
from llmrl.envs.crafter.text import NEAR_MAX_STEPS, TEXT_KINDS, render_state_text
from llmrl.envs.crafter.world import LocalWindow

SUCCESS_ACHIEVEMENT = "make_wood_pickaxe"
WORLD_AREA = (64, 64)  # crafter's world size; the benchmark always uses the default
VIEW = (9, 9)  # crafter's view grid: a 9x7 local view above 2 rows of inventory (the benchmark default)


def task_description() -> str:
    """The task prompt (AdaRefiner-like): the game, the goal, the rules that matter, the allowed sub-goals."""
    return (
        "You are helping a player in Crafter, a 2D open-world survival game seen from above. The player sees a "
        "9x7 area around itself and has an inventory. The goal is to unlock as many of the 22 achievements as "
        "possible in one life: collect wood, place table, make wood pickaxe, make wood sword, collect stone, "
        "place stone, make stone pickaxe, make stone sword, place furnace, collect coal, collect iron, make iron "
        "pickaxe, make iron sword, collect diamond, collect sapling, place plant, eat plant, drink water, eat "
        "cow, defeat zombie, defeat skeleton, wake up. Tools follow a tech tree: a table needs wood; wood tools "
        "are made next to a table; stone and coal need a wood pickaxe; stone tools need a table; iron needs a "
        "stone pickaxe; iron tools need a table and a furnace (made of stone) nearby, plus wood, coal and iron; "
        "diamond needs an iron pickaxe. Health, food, drink and energy (0-9) fall over time: eat, drink water "
        "and sleep to keep them up, and beware of zombies (more at night) and skeletons in caves. Lava kills. "
        "Every 100 steps, or when a sub-goal is done, choose the next sub-goal from: "
        + ", ".join(SUBGOALS)
        + "."
    )


class CrafterTask(gym.Env):
    """One Crafter world with sub-goal state; implements ``llmrl.core.Guidable``."""

    metadata = {"render_modes": []}
    family = "crafter"
    task_name = "Crafter"
    num_actions = len(crafter_constants.actions)
    action_names: tuple[str, ...] = tuple(crafter_constants.actions)

    def __init__(self, cfg: EnvConfig, seed: int | None = None):
        size = int(cfg.crafter_size)
        self._env = crafter.Env(area=WORLD_AREA, view=VIEW, size=(size, size), length=cfg.max_steps, seed=seed)
        self._grid = tuple(int(v) for v in self._env._local_view._grid)
        self._action_index = {name: i for i, name in enumerate(self.action_names)}
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "inventory": gym.spaces.Box(0.0, 1.0, (len(ITEMS),), np.float32),
                "subgoal": gym.spaces.Box(0, len(SUBGOALS), (1,), np.int64),
            }
        )
        self.action_space = gym.spaces.Discrete(self.num_actions)
        self._rng = np.random.default_rng(seed)
        self._image: np.ndarray | None = None
        self._steps = 0
        self._subgoal: str | None = None
        self._unlocked: list[str] = []
        self._window: LocalWindow | None = None
        self._explorer = Explorer(self._rng)
        self._baseline: dict[str, Any] = {}

    # -- gymnasium API ---------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None:
            # crafter seeds each world with hash((seed, episode)): restart its episode count for a reproducible world.
            self._env._seed = int(seed)
            self._env._episode = 0
            self._rng = np.random.default_rng(seed)
        self._image = self._env.reset()
        self._steps = 0
        self._unlocked = []
        self._window = None
        self._explorer = Explorer(self._rng)
        self._subgoal = None
        self._baseline = self._snapshot()
        player = self._env._player
        info = {
            "inventory": dict(player.inventory),
            "achievements": [],
            "achievement_counts": dict(player.achievements),
            "player_pos": player.pos,
        }
        return self.current_obs(), info

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        self._image, reward, done, info = self._env.step(int(action))
        self._steps += 1
        self._window = None
        counts = info["achievements"]
        new = [a for a in ACHIEVEMENTS if counts[a] > 0 and a not in self._unlocked]
        self._unlocked.extend(new)
        dead = self._env._player.health <= 0
        info["achievement_counts"] = counts
        info["achievements"] = new  # unlocked for the first time this episode, at this step
        return self.current_obs(), float(reward), bool(dead), bool(done and not dead), info

    def current_obs(self) -> dict[str, np.ndarray]:
        inv = self._env._player.inventory
        return {
            "image": self._image,
            "inventory": np.array([inv[i] for i in ITEMS], dtype=np.float32) / ITEM_MAX,
            "subgoal": np.array([SUBGOAL_INDEX.get(self._subgoal, 0)], dtype=np.int64),
        }

    # -- Guidable ---------------------------------------------------------------------------------------------

    def task_description(self, style: str = "plain") -> str:
        if style != "plain":  # config validation refuses other styles for Crafter; this guards direct callers
            raise ValueError(f"Crafter has no {style!r} task prompt, only plain")
        return task_description()

    def state_text(self) -> str:
        return render_state_text(self._view_window().state_view(self._unlocked_phrases()))

    def options(self) -> tuple[str, ...]:
        return admissible_subgoals(self._view_window().state_view(self._unlocked_phrases()))

    def option_action(self, option: str) -> int | None:
        name = skill_action(self._view_window(), option, self._explorer, self._steps)
        return None if name is None else self._action_index[name]

    def begin_option(self, option: str | None) -> None:
        """Make ``option`` the current sub-goal (None clears it) and measure its completion from now on."""
        if option is not None and option not in SUBGOAL_INDEX:
            raise ValueError(f"unknown Crafter sub-goal {option!r}")
        self._subgoal = option
        self._baseline = self._snapshot()

    def option_progress(self, option: str) -> tuple[int, int]:
        """(1, 1) once ``option`` is done since the last ``begin_option``, else (0, 1).

        Achievement sub-goals are done when their crafter counter rose; "sleep" when energy rose or the player
        woke up rested; "avoid zombie" when no zombie is within NEAR_MAX_STEPS; "explore" when a kind of thing
        not in view at the start is in view now.
        """
        base = self._baseline
        player = self._env._player
        if option in ACHIEVEMENT_OF:
            done = player.achievements[ACHIEVEMENT_OF[option]] > base["counts"][ACHIEVEMENT_OF[option]]
        elif option == "sleep":
            done = (player.inventory["energy"] > base["energy"]
                    or player.achievements["wake_up"] > base["counts"]["wake_up"])
        elif option == "avoid zombie":
            nearest = self._view_window().distance_to_nearest("zombie")
            done = nearest is None or nearest > NEAR_MAX_STEPS
        elif option == "explore":
            done = bool(self._visible_text_kinds() - base["kinds"])
        else:
            raise ValueError(f"unknown Crafter sub-goal {option!r}")
        return (1 if done else 0, 1)

    def success(self) -> bool:
        return SUCCESS_ACHIEVEMENT in self._unlocked

    # -- extras the teacher wrapper and the metrics use --------------------------------------------------------

    @property
    def current_subgoal(self) -> str | None:
        return self._subgoal

    def episode_achievements(self) -> tuple[str, ...]:
        """Achievements unlocked this episode (crafter names), in the order they were unlocked."""
        return tuple(self._unlocked)

    # -- internals -----------------------------------------------------------------------------------------------

    def _view_window(self) -> LocalWindow:
        if self._window is None:
            self._window = LocalWindow(self._env._world, self._env._player, self._grid)
        return self._window

    def _unlocked_phrases(self) -> tuple[str, ...]:
        return tuple(achievement_phrase(a) for a in self._unlocked)

    def _visible_text_kinds(self) -> frozenset[str]:
        return self._view_window().visible_kinds() & frozenset(TEXT_KINDS)

    def _snapshot(self) -> dict[str, Any]:
        player = self._env._player
        return {
            "counts": dict(player.achievements),
            "energy": player.inventory["energy"],
            "kinds": self._visible_text_kinds(),
        }


def make_task(cfg: EnvConfig, seed: int | None = None) -> CrafterTask:
    return CrafterTask(cfg, seed)
