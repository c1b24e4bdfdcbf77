"""Environment families by name: their ``FamilySpec`` s, their tasks and their scripted planners.

A family is one folder, ``llmrl/envs/<family>/``. Its ``family.py`` defines ``SPEC`` (an ``llmrl.core.FamilySpec``)
and imports nothing heavy; the env itself is built through ``SPEC.make_task``, which imports the rest of the folder
on first use. Adding a family is its folder plus one line in ``_FAMILIES``.

A user's own family needs no line here: ``env.name=package.module:factory`` names a callable ``factory(cfg, seed)``
(``cfg`` an ``llmrl.config.EnvConfig``) that builds a gymnasium env implementing ``llmrl.core.Guidable``, with its
spec as ``factory.family_spec`` (a class attribute when the factory is the env class). Such a family is known by
that ``env.name`` everywhere, in ``TeacherQuery.family`` too: the teacher service, in another process, finds the
planner and prompt words the same way. See ``docs/custom_env.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import os
import re
import sys
from types import ModuleType
from typing import Any

from llmrl.config import ConfigError, EnvConfig
from llmrl.core import FamilySpec

# family name -> module defining SPEC. Order matters only if two families claimed one name (the first wins).
_FAMILIES: dict[str, str] = {
    "minigrid": "llmrl.envs.minigrid.family",
    "crafter": "llmrl.envs.crafter.family",
    "registered": "llmrl.envs.registered.family",
}
_MAX_LISTED = 20  # an unknown name's error lists every known name up to this many, else only the closest
_USER_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
# What a Guidable env must have (llmrl.core.Guidable), besides gymnasium's reset/step and spaces.
_GUIDABLE = ("family", "task_name", "num_actions", "task_description", "state_text", "options", "option_action",
             "option_progress", "begin_option", "success")
_GYM = ("reset", "step", "observation_space", "action_space")


def is_user_name(name: str) -> bool:
    """Whether ``name`` has the ``package.module:factory`` form of a user's own family."""
    return ":" in name


@functools.cache
def _builtin(family: str) -> FamilySpec:
    return importlib.import_module(_FAMILIES[family]).SPEC


def builtin_specs() -> list[FamilySpec]:
    """The specs of every family shipped with llmrl (imports each family's light ``family.py``)."""
    return [_builtin(f) for f in _FAMILIES]


def _import_factory(name: str) -> Any:
    if not _USER_NAME.match(name):
        raise ConfigError(f"env.name: {name!r} is not of the form package.module:factory")
    module_name, attr = name.split(":")
    # As uvicorn and celery do for app paths: a module next to the config resolves from the current directory,
    # appended so that it never shadows an installed package.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"env.name: cannot import {module_name} ({exc})") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ConfigError(f"env.name: {module_name} has no callable {attr!r}")
    return factory


@functools.lru_cache(maxsize=32)
def _user_spec(name: str) -> FamilySpec:
    spec = getattr(_import_factory(name), "family_spec", None)
    if not isinstance(spec, FamilySpec):
        raise ConfigError(f"env.name: {name} has no family_spec (set it to an llmrl.core.FamilySpec, see "
                          f"docs/custom_env.md), got {type(spec).__name__}")
    return dataclasses.replace(spec, name=name)


def family_spec(name: str) -> FamilySpec:
    """The spec of a family by its name (``"minigrid"``), of the family owning a task (``"DoorKey-8x8"``), or of
    a user's factory (``"package.module:factory"``). Unknown names raise ``ConfigError`` naming ``env.name``."""
    if name in _FAMILIES:
        return _builtin(name)
    if is_user_name(name):
        return _user_spec(name)
    for spec in builtin_specs():
        if spec.owns_name(name):
            return spec
    listed = [n for spec in builtin_specs() for n in spec.names()]
    close = difflib.get_close_matches(name, listed, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    known = ", ".join(listed) if len(listed) <= _MAX_LISTED else f"{len(listed)} names"
    raise ConfigError(f"env.name: unknown environment {name!r}; {hint}known: {known}, "
                      "or package.module:factory for your own")


def family_of(task_name: str) -> str:
    return family_spec(task_name).name


def check_env_config(cfg: EnvConfig) -> FamilySpec:
    """Config validation: ``env.name`` resolves to a family, and the family's own rules hold."""
    spec = family_spec(cfg.name)
    if spec.validate is not None:
        spec.validate(cfg)
    return spec


def check_task(task: Any, spec: FamilySpec, name: str) -> None:
    """One-line ``ConfigError`` if ``task`` does not implement what llmrl needs (``Guidable``, matching actions)."""
    missing = [m for m in (*_GYM, *_GUIDABLE) if not hasattr(task, m)]
    if missing:
        raise ConfigError(f"env.name: {name} built a {type(task).__name__} without {', '.join(missing)} "
                          "(an llmrl.core.Guidable gymnasium env needs them)")
    n = getattr(task.action_space, "n", None)
    if n != task.num_actions or n != spec.num_actions:
        raise ConfigError(f"env.name: {name}: the action space ({task.action_space}), num_actions ({task.num_actions}) "
                          f"and family_spec.num_actions ({spec.num_actions}) must agree on one discrete size")


def make_task(cfg: EnvConfig, seed: int | None = None) -> Any:
    """A gymnasium env that also implements ``llmrl.core.Guidable`` for ``cfg.name``."""
    spec = family_spec(cfg.name)
    factory = _import_factory(cfg.name) if is_user_name(cfg.name) else spec.make_task
    if factory is None:
        raise ConfigError(f"env.name: family {spec.name} has no make_task")
    task = factory(cfg, seed)
    check_task(task, spec, cfg.name)
    return task


def planner_module(family: str) -> ModuleType:
    """The family's scripted planner: ``correct_option(state_text, options)`` and
    ``wrong_options(state_text, options, correct)``."""
    try:
        spec = family_spec(family)
    except ConfigError:
        spec = None
    if spec is None or spec.planner is None:
        raise ValueError(f"no scripted planner for environment family {family!r}")
    return importlib.import_module(spec.planner)
