"""Build environments and find scripted planners by family, importing each family lazily."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from llmrl.config import CRAFTER_TASKS, MINIGRID_TASKS, EnvConfig

# family -> (adapter module exposing make_task(cfg, seed), planner module exposing correct_option/wrong_options)
_FAMILIES: dict[str, tuple[str, str]] = {
    "minigrid": ("llmrl.envs.minigrid.adapter", "llmrl.envs.minigrid.planner"),
    "crafter": ("llmrl.envs.crafter.adapter", "llmrl.envs.crafter.planner"),
}


def family_of(task_name: str) -> str:
    if task_name in MINIGRID_TASKS:
        return "minigrid"
    if task_name in CRAFTER_TASKS:
        return "crafter"
    raise ValueError(f"env.name: unknown task {task_name!r}")


def make_task(cfg: EnvConfig, seed: int | None = None) -> Any:
    """A gymnasium env that also implements ``llmrl.core.Guidable`` for ``cfg.name``."""
    module = importlib.import_module(_FAMILIES[cfg.family][0])
    return module.make_task(cfg, seed)


def planner_module(family: str) -> ModuleType:
    """The family's scripted planner: ``correct_option(state_text, options)`` and
    ``wrong_options(state_text, options, correct)``."""
    if family not in _FAMILIES:
        raise ValueError(f"no scripted planner for environment family {family!r}")
    return importlib.import_module(_FAMILIES[family][1])
