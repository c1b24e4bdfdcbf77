"""A teacher that answers from an earlier run's teacher log: the run's advice without its LLM.

``teacher.backend=replay teacher.replay.log=PATH`` loads every record of the log at start-up (all replicas and
rotated files) and answers a query with the newest record of the same prompt hash and adapter (the prompt hash
is ``teacher_log.prompt_hash``: the canonical prompt, prompt bank included), exactly: the same options, the same
distribution, the same no-advice reason. Records of outages (the backend was unreachable) are not replayed: an
outage is not an answer.

A query the log does not hold is a miss: counted (``stats()``, the run's ``summary.json``), warned about once,
and answered by ``teacher.replay.fallback``: a backend built from this same teacher config, or ``none`` (no
advice, reason ``replay_miss``). When prompts match is explained in ``docs/teacher_log.md``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, make_backend, one_line
from llmrl.teacher.teacher_log import TeacherLogRecord, prompt_hash, read_log

logger = logging.getLogger(__name__)

# No-advice reasons that mean "the teacher could not answer then", not "this is its answer" (as the client's).
OUTAGE_REASONS = frozenset({"teacher_unavailable", "backend_error", "engine_error"})
MISS_REASON = "replay_miss"


def replay_key(prompt: str, adapter: str) -> tuple[str, str]:
    return (prompt, adapter)


def load_replay_index(path: str) -> dict[tuple[str, str], TeacherLogRecord]:
    """(prompt hash, adapter) -> the newest answer in the log. Raises a one-line BackendError."""
    try:
        contents = read_log(path)
    except (OSError, ValueError) as exc:
        raise BackendError(f"teacher.replay.log: cannot read '{path}': {one_line(exc)}") from None
    index: dict[tuple[str, str], TeacherLogRecord] = {}
    for record in contents.records:  # oldest first, so the newest answer wins
        if record.reason not in OUTAGE_REASONS:
            index[replay_key(record.prompt_hash, record.adapter)] = record
    if not index:
        raise BackendError(f"teacher.replay.log: '{path}' holds no teacher answers")
    if contents.corrupt_lines:
        logger.warning("teacher.replay.log: skipped %d unreadable lines in %s", contents.corrupt_lines, path)
    return index


class ReplayBackend:
    """``PlanBackend`` answering from a teacher log by prompt hash."""

    def __init__(self, cfg: TeacherConfig, seed: int = 0):
        self.name = "replay"
        self._path = cfg.replay.log
        self._index = load_replay_index(cfg.replay.log)
        self._fallback = None
        if cfg.replay.fallback != "none":
            self._fallback = make_backend(dataclasses.replace(cfg, backend=cfg.replay.fallback), seed)
        self._stats = {"replay_records": len(self._index), "replay_hits": 0, "replay_misses": 0, "replay_fallbacks": 0}

    def _lookup(self, query: TeacherQuery, bank: PromptBankSnapshot) -> Advice | None:
        record = self._index.get(replay_key(prompt_hash(query, bank), query.adapter))
        if record is None or record.options != query.options:
            return None
        return Advice(options=record.options, probs=record.probs, bank_version=bank.version, source=self.name,
                      reason=record.reason, invalid_outputs=record.invalid_outputs,
                      adapter_version=record.adapter_version)

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        answers: list[Advice | None] = [self._lookup(q, bank) for q in queries]
        missed = [i for i, a in enumerate(answers) if a is None]
        self._stats["replay_hits"] += len(queries) - len(missed)
        if missed:
            if not self._stats["replay_misses"]:
                logger.warning("teacher replay: a query is not in %s (bank version %d); answering with fallback %s",
                               self._path, bank.version, self._fallback.name if self._fallback else "none")
            self._stats["replay_misses"] += len(missed)
            if self._fallback is not None:
                name = self._fallback.name
                fallback = [a if a.source else dataclasses.replace(a, source=name)  # a log then tells it from a hit
                            for a in await self._fallback.advise([queries[i] for i in missed], bank)]
                self._stats["replay_fallbacks"] += len(missed)
            else:
                fallback = [Advice.none(queries[i].options, reason=MISS_REASON, bank_version=bank.version)
                            for i in missed]
            for i, a in zip(missed, fallback):
                answers[i] = a
        return [a for a in answers if a is not None]

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()
