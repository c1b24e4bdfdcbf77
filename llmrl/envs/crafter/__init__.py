"""The Crafter family: a sub-goal-conditioned Crafter task, its text view, sub-goals, scripted planner and score.

``CrafterTask`` and ``make_task`` import crafter (and its image libraries), so they are loaded on first use: the
teacher service imports the planner from here without paying for the game.
"""

from __future__ import annotations

from typing import Any

from llmrl.envs.crafter.score import ACHIEVEMENTS, achievement_success_rates, crafter_score
from llmrl.envs.crafter.subgoals import SUBGOALS

__all__ = ["ACHIEVEMENTS", "SUBGOALS", "CrafterTask", "achievement_success_rates", "crafter_score", "make_task"]


def __getattr__(name: str) -> Any:
    if name in ("CrafterTask", "make_task"):
        from llmrl.envs.crafter import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
