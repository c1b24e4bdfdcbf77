"""MiniGrid family: LLM4Teach's door-and-key tasks plus stock DoorKey and BabyAI, with scripted skills.

Modules: ``tasks`` (the envs), ``knowledge`` (historical map, student observation), ``text`` (state text,
task prompts), ``plans`` (plan parsing), ``skills`` (plan -> primitive action), ``planner`` (admissible
options, rule-based teacher), ``adapter`` (``MiniGridTask``, ``make_task``).

``MiniGridTask`` and ``make_task`` are loaded on first use: the planner and plan parser are pure Python, and
the teacher service that imports them should not pay for importing MiniGrid and pygame.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MiniGridTask", "make_task"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from llmrl.envs.minigrid import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
