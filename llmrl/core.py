"""The small interfaces every llmrl component is written against (after Acme's ``core.py``).

The local mode and the Ray job build the same graph out of these parts (see ``llmrl.training.graph``); only
where each part runs changes. Keep this module free of heavy imports: it is imported by ``import llmrl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from llmrl.messages import Advice, EpisodeSummary, PromptBankSnapshot, TeacherQuery, TeacherStats


@runtime_checkable
class Guidable(Protocol):
    """What an environment adapter exposes so that a teacher can guide it.

    Implemented by ``llmrl.envs.minigrid.MiniGridTask`` and ``llmrl.envs.crafter.CrafterTask``; the teacher
    wrapper (``llmrl.envs.guided.TeacherGuidedEnv``) only talks to this.
    """

    family: str  # "minigrid" | "crafter"
    task_name: str
    num_actions: int

    def task_description(self) -> str:
        """The task prompt an LLM gets before any state (LLM4Teach's task_info)."""

    def state_text(self) -> str:
        """What the agent knows now, in words. Equal strings must mean equal advice."""

    def options(self) -> tuple[str, ...]:
        """Admissible plans / sub-goals in the current state, in a stable order."""

    def option_action(self, option: str) -> int | None:
        """The primitive action the scripted skills take now to make progress on ``option``; None if none."""

    def option_progress(self, option: str) -> tuple[int, int]:
        """(steps of ``option`` already done in the current state, total steps)."""

    def begin_option(self, option: str) -> None:
        """``option`` becomes the one being followed (Crafter: baseline for completion, sub-goal in the obs)."""

    def success(self) -> bool:
        """Whether the episode so far counts as a success (MiniGrid: task solved)."""


class PlanBackend(Protocol):
    """A teacher backend: turns a batch of queries into option distributions.

    ``advise`` is async and batched so that the same interface fits a continuous-batching LLM engine (vLLM),
    a remote OpenAI-compatible server, a CPU transformers model and the scripted planner. A backend never
    raises for a bad LM output; it answers ``Advice.none(..., reason=...)`` and counts ``invalid_outputs``.
    """

    name: str

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]: ...

    async def close(self) -> None: ...


class AdviceSource(Protocol):
    """How an env runner asks for advice (implemented by ``llmrl.teacher.client.TeacherClient``)."""

    def request(self, query: TeacherQuery) -> Advice | None:
        """Advice if available within the configured wait; None means "no advice for now" (never raises)."""

    def note_advised_step(self, advice: Advice) -> None:
        """One env step was guided by ``advice`` (for the count of steps guided by a superseded bank version)."""

    def stats(self) -> dict[str, float]: ...


class FeedbackSink(Protocol):
    """Where episode summaries go (implemented by the feedback actor)."""

    def record(self, summaries: Sequence[EpisodeSummary]) -> int: ...

    def snapshot(self) -> PromptBankSnapshot: ...


class TeacherServiceAPI(Protocol):
    """Methods of the teacher service actor that callers may use."""

    async def advise(self, queries: Sequence[TeacherQuery]) -> list[Advice]: ...

    def stats(self) -> TeacherStats: ...


def teacher_action_distribution(
    advice: Advice, option_actions: dict[str, int | None], num_actions: int, mode: str, rng: np.random.Generator
) -> np.ndarray | None:
    """LLM4Teach's mediator: turn an option distribution into a distribution over primitive actions.

    soft: pi_T = sum_k p_k * onehot(a_k);  hard: sample one option k ~ p, pi_T = onehot(a_k).
    Options whose skill yields no action are dropped and the rest renormalised; None if nothing is left.
    """
    if not advice.has_advice:
        return None
    probs = np.zeros(num_actions, dtype=np.float32)
    if mode == "hard":
        p = np.asarray(advice.probs, dtype=np.float64)
        usable = np.array([option_actions.get(o) is not None for o in advice.options])
        p = p * usable
        if p.sum() <= 0:
            return None
        k = int(rng.choice(len(p), p=p / p.sum()))
        probs[option_actions[advice.options[k]]] = 1.0
        return probs
    for option, p in zip(advice.options, advice.probs):
        action = option_actions.get(option)
        if action is not None and p > 0:
            probs[action] += p
    total = probs.sum()
    if total <= 0:
        return None
    return probs / total
