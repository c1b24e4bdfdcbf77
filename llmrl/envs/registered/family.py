"""The registered family's spec: any ``MiniGrid-*`` / ``BabyAI-*`` id in gymnasium's registry.

Light: the names come from gymnasium's registry once ``minigrid`` is imported (which registers them; it is
imported here only when a name is looked up, not when this module is).
"""

from __future__ import annotations

import functools
from typing import Any

from llmrl.core import ASK_ON_TEXT_CHANGE, FamilySpec, gym_stepper

PREFIXES = ("MiniGrid-", "BabyAI-")
NUM_ACTIONS = 7  # MiniGrid: left, right, forward, pickup, drop, toggle, done


@functools.cache
def registered_ids() -> tuple[str, ...]:
    """Every registered MiniGrid and BabyAI id, sorted (178 with minigrid 3.0)."""
    import gymnasium
    import minigrid  # noqa: F401 - importing it registers the ids

    return tuple(sorted(i for i in gymnasium.envs.registry if i.startswith(PREFIXES)))


def _owns(name: str) -> bool:
    # The prefix test first, so that resolving "crafter" or "DoorKey-8x8" never imports minigrid.
    return name.startswith(PREFIXES) and name in registered_ids()


def _make_task(cfg: Any, seed: int | None) -> Any:
    from llmrl.envs.registered.adapter import RegisteredTask

    return RegisteredTask(cfg, seed)


def _raw_stepper(cfg: Any, seed: int) -> tuple[Any, Any, int]:
    from llmrl.envs.registered.adapter import make_env

    return gym_stepper(make_env(cfg), seed)


SPEC = FamilySpec(
    name="registered",
    num_actions=NUM_ACTIONS,
    encoder="grid_mission",
    names=registered_ids,
    owns=_owns,
    make_task=_make_task,
    planner="llmrl.envs.registered.planner",
    ask=ASK_ON_TEXT_CHANGE,
    eval_explore=False,
    eval_with_teacher=False,
    option_word=("plan", "plans"),
    hindsight_explore="explore",  # a new text without a finished plan: something new came into view
    env_step_limit=True,
    raw_stepper=_raw_stepper,
)
