"""The prompt bank on disk, kept continuously, so a feedback actor that Ray restarts does not start empty.

Layout of ``<run>/feedback/``:

* ``snapshot.json``: ``{"format", "seq", "bank"}``, the bank's ``state_dict()`` after the first ``seq`` record
  batches, written to a temporary file and renamed into place (never half written);
* ``log.jsonl``: one line ``{"seq", "summaries"}`` per ``record`` batch since then, appended.

``PromptBank`` is deterministic in the order of its ``record`` calls, so the snapshot plus the batches after it
rebuild the bank exactly, versions included. Appends are buffered and written every ``feedback.flush_s``
seconds (by the owner's timer), so a crash loses at most the batches of the last interval; a batch that
publishes a new bank version is written at once, before anyone can be served that version, so a recovered
bank never names a version it has already served with other content. Every ``feedback.compact_every``
summaries the log is folded into a new snapshot and truncated, which bounds both files.

Writes go to the operating system, not to the disk (no fsync): they survive the process's death (SIGKILL, an
out-of-memory kill), which is what Ray restarts; a machine crash is what the checkpoints are for.

A torn last line (the process died mid-write) is ignored and counted; recovery then writes a fresh snapshot,
so the next append never lands after a partial line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrl.config import FeedbackConfig
from llmrl.feedback.bank import PromptBank
from llmrl.messages import AdviceOutcome, EpisodeSummary

logger = logging.getLogger(__name__)

JOURNAL_FORMAT = 1
SNAPSHOT = "snapshot.json"
LOG = "log.jsonl"


def summary_to_json(s: EpisodeSummary) -> dict[str, Any]:
    return dataclasses.asdict(s)


def summary_from_json(d: dict[str, Any]) -> EpisodeSummary:
    return EpisodeSummary(
        family=d["family"], task=d["task"], success=bool(d["success"]), episode_return=float(d["episode_return"]),
        length=int(d["length"]),
        outcomes=tuple(AdviceOutcome(**{**o, "options": tuple(o.get("options", ()))}) for o in d["outcomes"]),
        subgoals_completed=tuple(d["subgoals_completed"]), achievements=tuple(d["achievements"]),
        recent_actions=tuple(d["recent_actions"]), teacher_steps=int(d["teacher_steps"]),
    )


@dataclass(frozen=True)
class Recovery:
    """What ``BankJournal.recover`` found: the rebuilt bank (None when there was nothing to recover)."""

    bank: PromptBank | None
    snapshot_seq: int = 0  # record batches folded into the snapshot
    replayed_batches: int = 0  # batches replayed from the log after it
    torn_lines: int = 0  # unreadable log lines skipped (a torn last write)


class BankJournal:
    """Snapshot + append-only log of one feedback actor's prompt bank (not thread-safe: the owner locks)."""

    def __init__(self, directory: str | Path, cfg: FeedbackConfig) -> None:
        self.dir = Path(directory)
        self.flush_s = cfg.flush_s
        self.compact_every = cfg.compact_every
        self.seq = 0  # record batches so far (in the snapshot, the log and the buffer)
        self._buffer: list[str] = []
        self._logged_summaries = 0  # summaries in the log since the snapshot, written or buffered
        self._last_flush = time.monotonic()
        self._fresh = True  # no snapshot of this bank yet: the first write starts the journal over
        self.flushes = 0
        self.compactions = 0

    # -- recovery ------------------------------------------------------------------------------------------

    def recover(self, cfg: FeedbackConfig, task_description: str) -> Recovery:
        """Rebuild the bank from the files (snapshot, then the batches after it), then start a fresh snapshot."""
        snapshot_file, log_file = self.dir / SNAPSHOT, self.dir / LOG
        if not snapshot_file.is_file() and not log_file.is_file():
            return Recovery(bank=None)
        bank, snapshot_seq = PromptBank(cfg, task_description), 0
        if snapshot_file.is_file():
            saved = json.loads(snapshot_file.read_text())
            if saved.get("format") != JOURNAL_FORMAT:
                raise ValueError(f"feedback journal {snapshot_file}: unsupported format {saved.get('format')!r}")
            bank, snapshot_seq = PromptBank.from_state_dict(cfg, saved["bank"]), int(saved["seq"])
        replayed, torn, seq = 0, 0, snapshot_seq
        if log_file.is_file():
            for line in log_file.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    batch = [summary_from_json(d) for d in entry["summaries"]]
                    line_seq = int(entry["seq"])
                except (ValueError, KeyError, TypeError):
                    torn += 1
                    continue
                if line_seq <= seq:  # already in the snapshot (a crash between snapshot and truncation)
                    continue
                bank.record(batch)
                seq, replayed = line_seq, replayed + 1
        if torn:
            logger.warning("feedback journal %s: ignored %d unreadable line(s) (a torn last write)", log_file, torn)
        self.seq = seq
        self.compact(bank.state_dict())
        return Recovery(bank=bank, snapshot_seq=snapshot_seq, replayed_batches=replayed, torn_lines=torn)

    # -- writing -------------------------------------------------------------------------------------------

    def append(self, summaries: Sequence[EpisodeSummary]) -> None:
        """Buffer one record batch (written by the next ``flush``)."""
        self.seq += 1
        self._buffer.append(json.dumps({"seq": self.seq, "summaries": [summary_to_json(s) for s in summaries]}))
        self._logged_summaries += len(summaries)

    def due(self) -> bool:
        return bool(self._buffer) and time.monotonic() - self._last_flush >= self.flush_s

    def needs_compaction(self) -> bool:
        return self._logged_summaries >= self.compact_every

    def flush(self, bank_state: Callable[[], dict[str, Any]]) -> None:
        """Write the buffered batches, or compact (``bank_state()``: the bank after them) when that is due."""
        self._last_flush = time.monotonic()
        if self._fresh or self.needs_compaction():
            self.compact(bank_state())
            return
        if not self._buffer:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / LOG).open("a") as f:
            f.write("\n".join(self._buffer) + "\n")
        self._buffer.clear()
        self.flushes += 1

    def compact(self, bank_state: dict[str, Any]) -> None:
        """A new snapshot of ``bank_state`` (the bank after every batch so far) and an empty log."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / (SNAPSHOT + ".tmp")
        tmp.write_text(json.dumps({"format": JOURNAL_FORMAT, "seq": self.seq, "bank": bank_state}))
        os.replace(tmp, self.dir / SNAPSHOT)
        # After the rename: a crash in between leaves log lines that the snapshot already holds (seq <= its seq).
        (self.dir / LOG).write_text("")
        self._buffer.clear()
        self._logged_summaries = 0
        self._fresh = False
        self._last_flush = time.monotonic()
        self.compactions += 1
