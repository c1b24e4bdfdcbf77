"""``RegisteredTask``: any registered MiniGrid/BabyAI id, with MiniGrid's historical map, generic text and plans.

The env is ``gymnasium.make(id)`` with its own view size and, unless ``env.max_steps`` is set (> 0), its own
step limit: what published baselines on these ids use. The student's map takes its size from the grid.

The whole-mission plan is carried out by minigrid's ``BabyAIBot`` (it solves the BabyAI levels; MiniGrid envs
whose mission has BabyAI's form get their instructions from ``mission.parse_mission``). The bot is stateful:
it is created the first time the plan is asked for in an episode and then told every action taken
(``replan(action)``), as BabyAI's DAgger-style use intends, so it stays right when the student deviates. If it
gives up (it raises when a box it relied on was opened, asserts on a few bonus levels, and is cut off after
``MAX_BOT_SEARCHES_PER_STEP`` searches in one step, where it would otherwise loop forever) the plan has no
action for the rest of the episode (``bot_failures`` counts it). Other plans use the map-based skills.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.core.verifier import Instr
from minigrid.utils.baby_ai_bot import BabyAIBot

from llmrl.config import ConfigError, EnvConfig
from llmrl.envs.minigrid.adapter import MiniGridTask
from llmrl.envs.registered import planner, skills, text
from llmrl.envs.registered.mission import MISSION_LENGTH, MISSION_VOCAB, mission_tokens, parse_mission

logger = logging.getLogger(__name__)
# BabyAIBot re-plans in a loop without bound; on a few layouts (BabyAI-UnlockToUnlock seed 4) it explores forever
# within one call. A step normally takes a handful of its searches; past this many it has given up in effect.
MAX_BOT_SEARCHES_PER_STEP = 200


class BotStuck(RuntimeError):
    """BabyAIBot spent ``MAX_BOT_SEARCHES_PER_STEP`` searches on one step."""


def bounded_bot(env: gymnasium.Env) -> BabyAIBot:
    """minigrid's ``BabyAIBot`` for ``env``, whose ``replan`` raises ``BotStuck`` past ``MAX_BOT_SEARCHES_PER_STEP``
    searches in one call instead of looping forever."""
    bot = BabyAIBot(env)
    search, replan = bot._breadth_first_search, bot.replan
    searches = 0

    def bounded_search(*args: Any, **kwargs: Any) -> Any:
        nonlocal searches
        searches += 1
        if searches > MAX_BOT_SEARCHES_PER_STEP:
            raise BotStuck(f"more than {MAX_BOT_SEARCHES_PER_STEP} searches in one step")
        return search(*args, **kwargs)

    def bounded_replan(action_taken: int | None = None) -> int:
        nonlocal searches
        searches = 0
        return replan(action_taken)

    bot._breadth_first_search, bot.replan = bounded_search, bounded_replan
    return bot


def cannot_build(name: str, exc: Exception) -> ConfigError:
    """The one-line error for an id that minigrid itself cannot build or reset here: the WFC mazes, whose pattern
    images minigrid's wheel lacks, fail at their first reset. Training meets it in the driver's probe env."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return ConfigError(f"env.name: minigrid cannot build {name} in this install ({type(exc).__name__}: {first})")


def make_env(cfg: EnvConfig) -> gymnasium.Env:
    kwargs = {"max_steps": cfg.max_steps} if cfg.max_steps > 0 else {}
    try:
        # The passive env checker only inspects the first calls; it is noise in a training loop.
        return gymnasium.make(cfg.name, disable_env_checker=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever minigrid raised, the user needs its first line and the id
        raise cannot_build(cfg.name, exc) from exc


class RegisteredTask(MiniGridTask):
    """A registered MiniGrid/BabyAI id for the student (historical map) and the teacher (``Guidable``)."""

    family = "registered"

    def __init__(self, cfg: EnvConfig, seed: int | None = None):
        self._attach(cfg, make_env(cfg), "real", seed)
        # The mission as word ids: a BabyAI level draws a new one at every reset, and a student that cannot read
        # it cannot tell "go to the red ball" from "open the blue door" (the "grid_mission" encoder reads it).
        self.observation_space = spaces.Dict({
            **self.observation_space.spaces,
            "mission": spaces.Box(0, MISSION_VOCAB - 1, (MISSION_LENGTH,), np.int64),
        })
        self._mission_ids = mission_tokens("")
        self.bot_failures = 0
        self._was_reset = False
        self._start_episode()

    def _start_episode(self) -> None:
        self._mission_plan: str | None = None
        self._bot: BabyAIBot | None = None
        self._bot_dead = False
        self._bot_action: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self._mission_ids = None  # the new episode's mission is read after the env's reset
        try:
            out = super().reset(seed=seed, options=options)
        except Exception as exc:  # noqa: BLE001 - only a first reset's failure means the id cannot be built
            if self._was_reset:
                raise
            raise cannot_build(self.task_name, exc) from exc
        self._was_reset = True
        self._start_episode()
        self._mission_plan = planner.mission_option(self.raw.mission)
        return out

    def _student_obs(self) -> dict[str, np.ndarray]:
        if self._mission_ids is None:
            self._mission_ids = mission_tokens(self.raw.mission)
        return {**super()._student_obs(), "mission": self._mission_ids}

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        out = super().step(action)
        if self._bot is not None:
            self._bot_action = self._replan(int(action))
        return out

    # ---- the whole-mission plan: BabyAIBot ------------------------------------------------------------

    def _instructions(self) -> Instr | None:
        if isinstance(self.raw, RoomGridLevel):
            return self.raw.instrs  # a BabyAI level draws its instructions at every reset
        instrs = parse_mission(self.raw.mission)
        if instrs is None:
            return None
        if not hasattr(self.raw, "room_from_pos"):
            # ObjDesc looks up the agent's room even for descriptions without a location (only those use it);
            # single-room MiniGrid envs have no rooms, and their missions name no location.
            self.raw.room_from_pos = lambda x, y: None
        instrs.reset_verifier(self.raw)
        self.raw.instrs = instrs
        return instrs

    def _replan(self, action: int | None) -> int | None:
        try:
            return int(self._bot.replan(action))
        except Exception as exc:  # noqa: BLE001 - the bot raises or asserts where it cannot plan; count it
            self.bot_failures += 1
            self._bot, self._bot_dead = None, True
            logger.debug("BabyAIBot gave up on %s: %r", self.task_name, exc)
            return None

    def _mission_action(self) -> int | None:
        if self._bot is None and not self._bot_dead:
            if self._instructions() is None:
                self._bot_dead = True
                return None
            self._bot = bounded_bot(self.raw)
            self._bot_action = self._replan(None)
        return self._bot_action

    # ---- Guidable -------------------------------------------------------------------------------------

    def task_description(self) -> str:
        return text.TASK_DESCRIPTION

    def state_text(self) -> str:
        memo = self.knowledge.memo
        if "text" not in memo:
            memo["text"] = text.render(self.raw.mission, text.facts(self.knowledge))
        return memo["text"]

    def options(self) -> tuple[str, ...]:
        memo = self.knowledge.memo
        if "options" not in memo:
            memo["options"] = planner.admissible_options(self.raw.mission, text.facts(self.knowledge))
        return memo["options"]

    def option_action(self, option: str) -> int | None:
        if option == self._mission_plan:
            return self._mission_action()
        memo = self.knowledge.pose_memo
        key = ("action", option)
        if key not in memo:
            steps = skills.parse(option)
            memo[key] = None if steps is None else skills.first_unfinished_action(steps, self.knowledge)
        return memo[key]

    def option_progress(self, option: str) -> tuple[int, int]:
        if option == self._mission_plan:
            return int(self._success), 1
        steps = skills.parse(option)
        return (0, 0) if steps is None else skills.progress(steps, self.knowledge)
