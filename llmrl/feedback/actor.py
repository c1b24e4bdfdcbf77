"""The feedback actor: one ``PromptBank`` behind a named Ray actor that env runners and the teacher share.

``FeedbackService`` is a plain class (the local mode uses it directly, implementing ``llmrl.core.FeedbackSink``);
``start_feedback_actor`` turns it into a named Ray actor. The actor is stateful. With a ``persist_dir``
(``feedback.persist``, the run folder's ``feedback/``) it keeps its bank there continuously (``journal``), and
when Ray restarts it after a crash it rebuilds the bank from there, losing at most the last
``feedback.flush_s`` seconds of summaries; without one a restarted actor starts empty. A resumed run re-seeds
the bank from its checkpoint through ``load_state_dict``. ``instance_id`` changes with every restart, which is
how the training loop counts them.

With the adapter on (``max_pairs`` > 0) the actor also keeps the adapter's training pairs (``pairs.PairLog``):
the trainer fetches them with ``pairs_since``, and they are checkpointed with the bank.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

from llmrl.config import FeedbackConfig
from llmrl.feedback.bank import PromptBank
from llmrl.feedback.journal import BankJournal
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

    def __init__(self, cfg: FeedbackConfig, task_description: str, persist_dir: str = "",
                 recover: bool | None = None, max_pairs: int = 0, pair_role: str = "teacher",
                 pair_label: str = "advised", min_label_votes: int = 1) -> None:
        """``recover``: rebuild the bank from ``persist_dir``; None (the default) = when Ray restarted this actor
        (a fresh run or a resume starts its journal over: a resume re-seeds the bank from its checkpoint).
        ``max_pairs`` > 0 keeps the adapter's training pairs (the adapter is on); ``pair_role`` is ``adapter.role``
        (``"analyst"``: the pairs carry the analyses that preceded completed sub-goals), ``pair_label`` and
        ``min_label_votes`` are ``adapter.pair_label`` and ``adapter.min_label_votes``."""
        self.cfg = cfg
        self._embed = make_embedder(cfg)  # None = the default bag of words; a bad one fails here, in one line
        self.bank = PromptBank(cfg, task_description, self._embed)
        self.pairs = PairLog(max_pairs, cfg.credit, pair_role, pair_label, min_label_votes) if max_pairs > 0 else None
        self._record_calls = 0
        self._snapshot_calls = 0
        self._polls = 0
        self._polls_answered = 0
        self._loads = 0
        self._journal_errors = 0
        self._recovered_episodes = 0
        self._torn_lines = 0
        self._instance_id = uuid.uuid4().hex
        self._reconstructed = _was_reconstructed()
        # Calls run one at a time on the actor's thread; the lock only keeps the flusher thread out of them.
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._journal = BankJournal(persist_dir, cfg) if persist_dir else None
        if self._reconstructed if recover is None else recover:
            self._recover(task_description)
        if self._journal is not None and cfg.flush_s > 0:
            threading.Thread(target=self._flush_periodically, name="feedback-journal", daemon=True).start()

    def _recover(self, task_description: str) -> None:
        if self._journal is None:
            logger.warning("feedback actor %r was restarted by Ray and starts with an empty prompt bank "
                           "(feedback.persist=false)", self.cfg.actor_name)
            return
        try:
            found = self._journal.recover(self.cfg, task_description)
        except (OSError, ValueError, KeyError) as exc:
            self._journal_errors += 1
            logger.error("feedback actor %r was restarted by Ray and could not read its journal in %s (%s); it "
                         "starts with an empty prompt bank", self.cfg.actor_name, self._journal.dir, exc)
            return
        if found.bank is not None:
            self.bank = found.bank
        self._recovered_episodes = self.bank.episodes
        self._torn_lines = found.torn_lines
        logger.warning("feedback actor %r was restarted by Ray and recovered its prompt bank from %s: %d episodes, "
                       "version %d", self.cfg.actor_name, self._journal.dir, self.bank.episodes, self.bank.version)

    def _flush(self) -> None:
        """Write the journal's buffer (the caller holds the lock); a failing disk is counted, never fatal."""
        if self._journal is None:
            return
        try:
            self._journal.flush(self.bank.state_dict)
        except OSError as exc:
            self._journal_errors += 1
            logger.warning("feedback journal %s: write failed (%s); summaries are kept in memory and retried",
                           self._journal.dir, exc)

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self.cfg.flush_s):
            with self._lock:
                if self._journal is not None and self._journal.due():
                    self._flush()

    def close(self) -> None:
        """Write what is buffered and stop the flusher (the actor is about to go)."""
        self._closed.set()
        with self._lock:
            self._flush()

    def instance_id(self) -> str:
        """Random per construction: a new value means Ray restarted the actor (the loop counts restarts)."""
        return self._instance_id

    def record(self, summaries: Sequence[EpisodeSummary]) -> int:
        with self._lock:
            self._record_calls += 1
            version = self.bank.version
            added = self.bank.record(summaries)  # validates the batch first
            if self.pairs is not None:
                self.pairs.record(list(summaries))
            if self._journal is not None:
                self._journal.append(summaries)
                # A new version is on disk before anyone can be served it, so a recovered bank never reuses a
                # version number for other content; flush_s=0 writes every batch through.
                if self.bank.version != version or self.cfg.flush_s == 0 or self._journal.needs_compaction():
                    self._flush()
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
            "recovered_episodes": float(self._recovered_episodes),
            "journal_torn_lines": float(self._torn_lines),
            "journal_errors": float(self._journal_errors),
            "journal_flushes": float(self._journal.flushes if self._journal else 0),
            "journal_compactions": float(self._journal.compactions if self._journal else 0),
        }
        if bank.comprehension is not None:
            out["comprehension"] = bank.comprehension
        if self.pairs is not None:
            out["training_pairs"] = float(len(self.pairs))
        return out

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            self._flush()  # a checkpoint is a moment the journal should match too
            d = self.bank.state_dict()
        if self.pairs is not None:
            d[PAIRS_KEY] = self.pairs.state_dict()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> int:
        """Replace the bank (and the training pairs, when saved) with checkpointed ones, and restart the journal
        from it; returns its version."""
        with self._lock:
            self.bank = PromptBank.from_state_dict(self.cfg, d, self._embed)
            if self.pairs is not None and PAIRS_KEY in d:
                self.pairs.load_state_dict(d[PAIRS_KEY])
            self._loads += 1
            if self._journal is not None:
                try:
                    self._journal.compact(self.bank.state_dict())
                except OSError as exc:
                    self._journal_errors += 1
                    logger.warning("feedback journal %s: write failed (%s)", self._journal.dir, exc)
            return self.bank.version


def start_feedback_actor(cfg: FeedbackConfig, task_description: str, namespace: str | None = None,
                         persist_dir: str = "", max_pairs: int = 0, pair_role: str = "teacher",
                         pair_label: str = "advised", min_label_votes: int = 1) -> Any:
    """Create the named feedback actor, or get it if it already exists; returns its handle.

    ``persist_dir`` (empty: not persisted) must be reachable from the node the actor runs on: on a cluster, a
    run folder on shared storage.

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
    ).remote(cfg, task_description, persist_dir, max_pairs=max_pairs, pair_role=pair_role, pair_label=pair_label,
             min_label_votes=min_label_votes)
