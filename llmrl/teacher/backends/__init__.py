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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmrl.config import TeacherConfig
    from llmrl.core import PlanBackend


class BackendError(RuntimeError):
    """A backend cannot be built (model missing, optional dependency absent, bad setting). One-line message."""


def one_line(err: BaseException) -> str:
    """An exception as one line (loader errors span many), for ``BackendError`` messages and warnings."""
    return " ".join(str(err).split()) or type(err).__name__


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


__all__ = ["BackendError", "make_backend", "one_line"]
