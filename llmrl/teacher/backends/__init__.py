"""Teacher backends behind one factory; each backend module is imported only when it is chosen.

| backend  | module                  | needs                                   |
| -------- | ----------------------- | --------------------------------------- |
| scripted | ``scripted``            | the env family's scripted planner       |
| hf       | ``hf``                  | torch + transformers (CPU or GPU)       |
| vllm     | ``vllm_backend``        | ``pip install 'llmrl[vllm]'`` (CUDA)    |
| openai   | ``openai_backend``      | ``httpx`` and a running server          |
| replay   | ``replay``              | a teacher log of an earlier run         |
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmrl.config import TeacherConfig
    from llmrl.core import PlanBackend


class BackendError(RuntimeError):
    """A backend cannot be built (model missing, optional dependency absent, bad setting). One-line message."""


def one_line(err: BaseException) -> str:
    """An exception as one line (loader errors span many), for ``BackendError`` messages and warnings."""
    return " ".join(str(err).split()) or type(err).__name__


def _looks_local(name: str) -> bool:
    """A filesystem path rather than a hub id ("org/model"), so a missing one fails without a network call."""
    return name.startswith(("/", "./", "../", "~")) or os.path.exists(name)


def local_model(name: str, key: str) -> str:
    """What a backend loads for the config value ``name`` of ``key`` (e.g. ``teacher.hf.model``).

    A known short name (``llmrl models list``) becomes its cached folder, fetched on first use; a local folder
    is checked for a config and weights; a hub id is returned as it is. Every failure is one ``BackendError``.
    """
    from llmrl.models import ModelError, resolve_model
    from llmrl.models.local import folder_problem

    try:
        resolved = resolve_model(name)
    except ModelError as e:
        raise BackendError(f"{key}: cannot fetch '{name}': {e}") from None
    if _looks_local(resolved):
        problem = folder_problem(resolved)
        if problem is not None:
            raise BackendError(f"{key}: cannot load '{name}': {problem}")
    return resolved


def make_backend(cfg: TeacherConfig, seed: int = 0) -> PlanBackend:
    """The backend ``cfg.backend`` names, built from its config section.

    ``seed`` distinguishes replicas: the scripted backend draws its errors from (``cfg.seed``, ``seed``).
    """
    if cfg.backend == "scripted":
        from llmrl.teacher.backends.scripted import ScriptedBackend

        return ScriptedBackend(cfg, seed)
    if cfg.backend == "hf":
        from llmrl.teacher.backends.hf import HFBackend

        return HFBackend(cfg.hf)
    if cfg.backend == "vllm":
        from llmrl.teacher.backends.vllm_backend import VLLMBackend

        return VLLMBackend(cfg.vllm)
    if cfg.backend == "openai":
        from llmrl.teacher.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg.openai)
    if cfg.backend == "replay":
        from llmrl.teacher.backends.replay import ReplayBackend

        return ReplayBackend(cfg, seed)
    raise BackendError(f"teacher.backend: {cfg.backend!r} has no plan backend (\"off\" runs without a teacher)")


__all__ = ["BackendError", "local_model", "make_backend", "one_line"]
