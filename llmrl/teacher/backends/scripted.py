"""A teacher without an LM: the environment family's scripted planner, with controllable mistakes.

It stands in for an LLM in experiments that need a teacher of known quality (and in fast tests): a fraction
``teacher.error_rate`` of states get a plausible wrong option (e.g. "go to door" before the key is held), the
rest the correct one, always as a one-hot distribution. Whether a state errs (and which wrong option it gets)
is a stable hash of (teacher.seed, state, options), not a draw in arrival order: the teacher is then one fixed
imperfect policy everywhere (every replica, after a restart, during training and when evaluated alone), like
an LLM whose cached answer for a state is wrong, and "the teacher's own success" is well defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmrl.config import TeacherConfig
from llmrl.envs.registry import planner_module
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.router import stable_hash


class ScriptedBackend:
    """``PlanBackend`` answering from ``planner_module(query.family)``."""

    def __init__(self, cfg: TeacherConfig, seed: int = 0):
        self.name = "scripted"
        self._error_rate = float(cfg.error_rate)
        # Only cfg.seed (not the replica seed): all replicas must be the same teacher.
        self._seed = int(cfg.seed)
        self._stats = {"queries": 0, "wrong": 0, "no_plan": 0}

    def _one(self, query: TeacherQuery, version: int) -> Advice:
        self._stats["queries"] += 1
        rng = np.random.default_rng(stable_hash((self._seed, query.family, query.state_text, *query.options)))
        err = rng.random() < self._error_rate
        if not query.options:
            return Advice.none(query.options, reason="no_options", bank_version=version)
        planner = planner_module(query.family)
        correct = planner.correct_option(query.state_text, query.options)
        if correct is None or correct not in query.options:
            self._stats["no_plan"] += 1
            return Advice.none(query.options, reason="no_plan", bank_version=version)
        choice = correct
        if err:
            wrong = [o for o in planner.wrong_options(query.state_text, query.options, correct) if o in query.options
                     and o != correct]
            if wrong:
                choice = wrong[int(rng.integers(len(wrong)))]
                self._stats["wrong"] += 1
        probs = tuple(1.0 if o == choice else 0.0 for o in query.options)
        return Advice(options=query.options, probs=probs, bank_version=version, source=self.name)

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        return [self._one(q, bank.version) for q in queries]

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def close(self) -> None:
        return None
