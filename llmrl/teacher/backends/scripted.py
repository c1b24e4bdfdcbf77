"""A teacher without an LM: the environment family's scripted planner, with controllable mistakes.

It stands in for an LLM in experiments that need a teacher of known quality (and in fast tests): with
probability ``teacher.error_rate`` a query gets a plausible wrong option (e.g. "go to door" before the key
is held), otherwise the correct one, always as a one-hot distribution. Because the teacher service caches
answers per state, a wrong answer sticks to its state the way a mistaken LLM answer would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmrl.config import TeacherConfig
from llmrl.envs.registry import planner_module
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery


class ScriptedBackend:
    """``PlanBackend`` answering from ``planner_module(query.family)``."""

    def __init__(self, cfg: TeacherConfig, seed: int = 0):
        self.name = "scripted"
        self._error_rate = float(cfg.error_rate)
        # (cfg.seed, seed): reproducible per run, yet different per replica.
        self._rng = np.random.default_rng([int(cfg.seed), int(seed)])
        self._stats = {"queries": 0, "wrong": 0, "no_plan": 0}

    def _one(self, query: TeacherQuery, version: int) -> Advice:
        self._stats["queries"] += 1
        # Draw for every query, so whether query k errs does not depend on earlier queries' outcomes.
        err = self._rng.random() < self._error_rate
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
                choice = wrong[int(self._rng.integers(len(wrong)))]
                self._stats["wrong"] += 1
        probs = tuple(1.0 if o == choice else 0.0 for o in query.options)
        return Advice(options=query.options, probs=probs, bank_version=version, source=self.name)

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        return [self._one(q, bank.version) for q in queries]

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def close(self) -> None:
        return None
