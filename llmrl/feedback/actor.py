"""The feedback actor: one ``PromptBank`` behind a named Ray actor that env runners and the teacher share.

``FeedbackService`` is a plain class (the local mode uses it directly, implementing ``llmrl.core.FeedbackSink``);
``start_feedback_actor`` turns it into a named Ray actor. The actor is stateful: when Ray restarts it after a
crash it starts with an empty bank, and the training loop re-seeds it from the last checkpoint through
``load_state_dict``.

With the adapter on (``max_pairs`` > 0) the actor also keeps the adapter's training pairs (``pairs.PairLog``):
the trainer fetches them with ``pairs_since``, and they are checkpointed with the bank.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from llmrl.config import FeedbackConfig
from llmrl.feedback.bank import PromptBank
from llmrl.feedback.embedders import make_embedder
from llmrl.feedback.pairs import PairLog
from llmrl.messages import EpisodeSummary, PairBatch, PromptBankSnapshot

logger = logging.getLogger(__name__)

PAIRS_KEY = "training_pairs"  # the adapter's pairs inside the checkpointed bank state

def _was_reconstructed() -> bool:
    """True inside a Ray actor that Ray has restarted; False in plain local use."""
    ray = sys.modules.get("ray")
    # Not imported means not inside a Ray worker: avoid importing ray (slow) just to find that out.
    if ray is None or not ray.is_initialized():
        return False
    ctx = ray.get_runtime_context()
    if ctx.get_actor_id() is None:
        return False
    # Ray 2.60's own property reads its deprecated ``actor_id`` internally and warns; the API itself is current.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(ctx.was_current_actor_reconstructed)


class FeedbackService:
    """A ``PromptBank`` plus call counters; every method is cheap and never blocks on anything else."""

    def __init__(self, cfg: FeedbackConfig, task_description: str, max_pairs: int = 0) -> None:
        self.cfg = cfg
        self._embed = make_embedder(cfg)  # None = the default bag of words; a bad one fails here, in one line
        self.bank = PromptBank(cfg, task_description, self._embed)
        self.pairs = PairLog(max_pairs, cfg.credit) if max_pairs > 0 else None
        self._record_calls = 0
        self._snapshot_calls = 0
        self._polls = 0
        self._polls_answered = 0
        self._loads = 0
        self._reconstructed = _was_reconstructed()
        if self._reconstructed:
            logger.warning(
                "feedback actor %r was restarted by Ray and starts with an empty prompt bank until it is "
                "re-seeded from a checkpoint (load_state_dict)", cfg.actor_name
            )

    def record(self, summaries: Sequence[EpisodeSummary]) -> int:
        self._record_calls += 1
        added = self.bank.record(summaries)  # validates the batch first
        if self.pairs is not None:
            self.pairs.record(list(summaries))
        return added

    def pairs_since(self, cursor: int) -> PairBatch:
        """Adapter training pairs first seen after ``cursor`` (empty when the adapter is off)."""
        if self.pairs is None:
            return PairBatch(pairs=(), cursor=0, episodes=self.bank.episodes, total_pairs=0)
        return self.pairs.since(cursor)

    def snapshot(self) -> PromptBankSnapshot:
        self._snapshot_calls += 1
        return self.bank.snapshot()

    def snapshot_if_newer(self, version: int) -> PromptBankSnapshot | None:
        """The snapshot if its version is greater than ``version``, else None (a cheap poll for the teacher).

        Strictly greater: after a restart or a re-seed from an older checkpoint the teacher keeps the richer
        snapshot it holds until the bank publishes past it, and a version number never names two contents for
        the same caller.
        """
        self._polls += 1
        if self.bank.version > version:
            self._polls_answered += 1
            return self.bank.snapshot()
        return None

    def stats(self) -> dict[str, float]:
        bank = self.bank
        out = {
            "episodes": float(bank.episodes),
            "successes": float(bank.successes),
            "success_rate": bank.successes / bank.episodes if bank.episodes else 0.0,
            "recent_success_rate": bank.recent_success_rate,
            "version": float(bank.version),
            "tracked_pairs": float(bank.tracked_pairs),
            "ignored_outcomes": float(bank.ignored_outcomes),
            "exemplars": float(len(bank.snapshot().exemplars)),
            "feedback_lines": float(len(bank.snapshot().feedback_lines)),
            "record_calls": float(self._record_calls),
            "snapshot_calls": float(self._snapshot_calls),
            "polls": float(self._polls),
            "polls_answered": float(self._polls_answered),
            "loads": float(self._loads),
            "reconstructed": float(self._reconstructed),
        }
        if bank.comprehension is not None:
            out["comprehension"] = bank.comprehension
        if self.pairs is not None:
            out["training_pairs"] = float(len(self.pairs))
        return out

    def state_dict(self) -> dict[str, Any]:
        d = self.bank.state_dict()
        if self.pairs is not None:
            d[PAIRS_KEY] = self.pairs.state_dict()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> int:
        """Replace the bank (and the training pairs, when saved) with checkpointed ones; returns its version."""
        self.bank = PromptBank.from_state_dict(self.cfg, d, self._embed)
        if self.pairs is not None and PAIRS_KEY in d:
            self.pairs.load_state_dict(d[PAIRS_KEY])
        self._loads += 1
        return self.bank.version


def start_feedback_actor(cfg: FeedbackConfig, task_description: str, namespace: str | None = None,
                         max_pairs: int = 0) -> Any:
    """Create the named feedback actor, or get it if it already exists; returns its handle.

    num_cpus=0: the actor does little work and a 2-core machine is already saturated by the env runner and
    the learner, so reserving a CPU would block them from being scheduled. The actor is owned by the caller
    (not detached), so it goes away with the driver. Tasks are not retried across a restart (recording a batch
    twice would double-count it), so callers see ``ActorUnavailableError`` for calls made while Ray restarts it.
    """
    import ray

    remote_cls = ray.remote(FeedbackService)
    return remote_cls.options(
        name=cfg.actor_name,
        namespace=namespace,
        get_if_exists=True,
        num_cpus=0,
        max_restarts=cfg.max_restarts,
    ).remote(cfg, task_description, max_pairs)
