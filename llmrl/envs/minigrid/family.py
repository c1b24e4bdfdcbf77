"""The MiniGrid family's spec: what llmrl decides for MiniGrid outside this folder (``llmrl.core.FamilySpec``).

Light on purpose: config validation, the teacher service and prompts import it; MiniGrid itself is imported only
when a task is built.
"""

from __future__ import annotations

from typing import Any

from llmrl.core import ASK_ON_TEXT_CHANGE, FamilySpec, gym_stepper

# LLM4Teach's tasks, built here (tasks.py); TwoDoor's room is fixed (side 20), the others draw it from room_min..max.
LLM4TEACH_TASKS = ("SimpleDoorKey", "LavaDoorKey", "ColoredDoorKey", "TwoDoor")
_ROOM_FROM_CONFIG = LLM4TEACH_TASKS[:3]
MINIGRID_TASKS = (*LLM4TEACH_TASKS, "DoorKey-5x5", "DoorKey-8x8", "GoToRedBallNoDists")
NUM_ACTIONS = 7  # MiniGrid: left, right, forward, pickup, drop, toggle, done


def _names() -> tuple[str, ...]:
    return MINIGRID_TASKS


def _make_task(cfg: Any, seed: int | None) -> Any:
    from llmrl.envs.minigrid.adapter import make_task

    return make_task(cfg, seed)


def _validate(cfg: Any) -> None:
    from llmrl.config import ConfigError

    if cfg.name in _ROOM_FROM_CONFIG and cfg.room_min < 5:
        # A smaller room cannot hold the wall door, the key and the agent with room to move.
        raise ConfigError(f"env.room_min: must be >= 5 for {cfg.name}, got {cfg.room_min}")


def _sample_states(seed: int) -> Any:
    from llmrl.envs.minigrid.samples import state_stream

    return state_stream(seed)


def _raw_stepper(cfg: Any, seed: int) -> tuple[Any, Any, int]:
    from llmrl.envs.minigrid.tasks import build_env

    env, _ = build_env(cfg)
    return gym_stepper(env, seed)


SPEC = FamilySpec(
    name="minigrid",
    num_actions=NUM_ACTIONS,
    encoder="grid",
    names=_names,
    make_task=_make_task,
    planner="llmrl.envs.minigrid.planner",
    ask=ASK_ON_TEXT_CHANGE,
    # Success is measured on the student alone, acting greedily.
    eval_explore=False,
    eval_with_teacher=False,
    option_word=("plan", "plans"),
    hindsight_explore="explore",  # a new text without a finished plan: something new came into view
    prompt_styles=("plain", "llm4teach"),
    validate=_validate,
    sample_states=_sample_states,
    raw_stepper=_raw_stepper,
)
