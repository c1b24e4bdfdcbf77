"""The teacher log: one JSON line per answer a teacher backend gave, so a run's advice can be inspected and replayed.

Layout in the run folder (``docs/teacher_log.md``):

    teacher_log.jsonl              replica 0, the file being written
    teacher_log.1.jsonl, .2, ...   replica 0, rotated when the file passed ``teacher.log_max_mb`` (oldest = 1)
    teacher_log.replica1.jsonl     replica 1 (each replica writes its own files: no two processes share a file)

A replica that Ray restarts appends to its own file again. A line cut short by a crash is closed with a newline
before the first new record, and readers skip (and count) lines that do not parse.

Writes never block a batch: ``TeacherLog.record`` puts the batch on a bounded queue (a full queue drops it and
counts the records) and a daemon thread builds the records (prompt hashes included), writes them, and flushes
and fsyncs every ``teacher.log_flush_s``; a crash loses at most that last interval.

The prompt hash is the sha256 of the canonical ``prompting.build_prompt(query, bank)`` text, not of what a
backend renders from it (a chat template, tokens): a replay run recomputes it from the query and its prompt bank
alone, without the model or its tokenizer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.identity import BackendIdentity, backend_identity
from llmrl.teacher.prompting import build_prompt

logger = logging.getLogger(__name__)

LOG_FORMAT = 1  # bump when a record field changes meaning; readers refuse newer formats
LOG_NAME = "teacher_log"
_FILE_RE = re.compile(rf"^{LOG_NAME}(?:\.replica(\d+))?(?:\.(\d+))?\.jsonl$")


def prompt_hash(query: TeacherQuery, bank: PromptBankSnapshot) -> str:
    """The replay key's prompt part: sha256 of the canonical prompt text."""
    return hashlib.sha256(build_prompt(query, bank).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TeacherLogRecord:
    """One answer of one teacher replica (the backend's distribution, before ``teacher.reweight_by_success``)."""

    time: float  # unix time the backend answered
    replica: int  # teacher replica index
    instance_id: str  # changes when Ray restarts the replica
    backend: str  # scripted | hf | vllm | openai | replay
    model_id: str  # model name or path ("" for the scripted planner)
    weights_hash: str  # "sha256:<hex>" of the weight files, "meta:..." of their headers, "name:..." of a served name
    adapter: str  # LoRA adapter name the query asked for ("" = base model)
    adapter_version: int  # Advice.adapter_version (0 = base model)
    bank_version: int  # prompt-bank version the prompt was built from
    prompt_hash: str  # sha256 of build_prompt(query, bank): the replay key, with ``adapter``
    family: str
    task: str
    state_text: str
    context: str
    options: tuple[str, ...]
    probs: tuple[float, ...]  # aligned with options; empty = no advice
    reason: str  # why there is no advice ("unparseable", "no_plan", "replay_miss", ...)
    invalid_outputs: int
    source: str  # Advice.source: the backend name, or for a replay run "replay" (a hit) or the fallback's name
    decoding: tuple[tuple[str, Any], ...]  # decoding settings (selection, temperature, num_samples, ...)
    latency_s: float  # backend time of the batch this answer came in
    batch_size: int  # queries in that batch
    analysis: str = ""  # the analyst's analysis the teacher read (adapter.role=analyst; absent in older logs)
    format: int = LOG_FORMAT

    @property
    def has_advice(self) -> bool:
        return len(self.probs) > 0

    def top_option(self) -> str | None:
        if not self.probs:
            return None
        return self.options[max(range(len(self.probs)), key=self.probs.__getitem__)]

    def state_key(self) -> tuple:
        """What identifies the question asked, whatever the prompt bank (as ``TeacherQuery.key``)."""
        return (self.family, self.task, self.state_text, self.context, self.adapter, *self.options)

    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in _RECORD_FIELDS}
        d["options"] = list(self.options)
        d["probs"] = list(self.probs)
        d["decoding"] = dict(self.decoding)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherLogRecord:
        """Raises ValueError for a record of a newer format or with fields missing; ignores unknown fields."""
        fmt = int(d.get("format", 0))
        if fmt > LOG_FORMAT:
            raise ValueError(f"teacher log format {fmt} is newer than this llmrl reads ({LOG_FORMAT})")
        missing = [n for n in _RECORD_FIELDS if n not in d and n not in _OPTIONAL_FIELDS]
        if missing:
            raise ValueError(f"teacher log record lacks {', '.join(missing)}")
        kwargs = {n: d[n] for n in _RECORD_FIELDS if n in d}
        kwargs["options"] = tuple(str(o) for o in d["options"])
        kwargs["probs"] = tuple(float(p) for p in d["probs"])
        kwargs["decoding"] = tuple(sorted(dict(d["decoding"]).items()))
        return cls(**kwargs)


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(TeacherLogRecord))  # once: fields() is slow per record
# Fields with a default: a log written before they existed still reads.
_OPTIONAL_FIELDS = frozenset(f.name for f in dataclasses.fields(TeacherLogRecord)
                             if f.default is not dataclasses.MISSING)


# -- files ---------------------------------------------------------------------------------------------------


def replica_log_path(log_dir: str | Path, replica: int) -> Path:
    name = f"{LOG_NAME}.jsonl" if replica == 0 else f"{LOG_NAME}.replica{replica}.jsonl"
    return Path(log_dir) / name


def log_files(path: str | Path) -> list[Path]:
    """Every file of the log that ``path`` (a teacher_log.jsonl or its run folder) names: all replicas, all
    rotations, oldest first within each replica. A file under another name (a log sent by someone) is read
    alone. Raises FileNotFoundError if there is none."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not p.is_dir() and not p.is_file():
        raise FileNotFoundError(f"teacher log '{p}' does not exist")
    if p.is_file() and not _FILE_RE.match(p.name):
        return [p]
    found = []
    for f in folder.iterdir() if folder.is_dir() else ():
        m = _FILE_RE.match(f.name)
        if m and f.is_file():
            replica = int(m.group(1) or 0)
            rotation = int(m.group(2)) if m.group(2) else 1 << 30  # the active file is the newest
            found.append(((replica, rotation), f))
    if not found:
        raise FileNotFoundError(f"no {LOG_NAME}*.jsonl in '{folder}'")
    return [f for _, f in sorted(found)]


@dataclass
class LogContents:
    records: list[TeacherLogRecord]  # sorted by time (stable: file order breaks ties)
    files: list[Path]
    corrupt_lines: int = 0  # lines that did not parse (e.g. cut short by a crash)


def read_log(path: str | Path) -> LogContents:
    """All records of a log, oldest first. Raises FileNotFoundError, or ValueError for a newer format."""
    files = log_files(path)
    records: list[TeacherLogRecord] = []
    corrupt = 0
    for f in files:
        with f.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    corrupt += 1
                    continue
                try:
                    records.append(TeacherLogRecord.from_dict(data))
                except (TypeError, KeyError, AttributeError) as exc:
                    logger.debug("skipping a malformed teacher log line: %s", exc)
                    corrupt += 1
                except ValueError as exc:
                    if "newer" in str(exc):
                        raise ValueError(f"{f}: {exc}") from None
                    corrupt += 1
    records.sort(key=lambda r: r.time)
    return LogContents(records=records, files=files, corrupt_lines=corrupt)


# -- writing -------------------------------------------------------------------------------------------------

_STOP = object()


class LogWriter:
    """Appends records to one replica's file on a daemon thread; rotates by size; flushes on a timer."""

    def __init__(self, path: Path, flush_s: float, max_bytes: int, queue_size: int,
                 build: Any = None):
        self.path = path
        self._flush_s = flush_s
        self._max_bytes = max_bytes
        self._build = build  # item -> list of records (runs on the writer thread)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.written = 0
        self.dropped = 0
        self.rotations = 0
        self.write_errors = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="teacher-log", daemon=True)
        self._thread.start()

    def put(self, item: Any, n_records: int) -> None:
        """Never blocks: a full queue drops the item and counts its records."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            if not self.dropped:
                logger.warning("teacher log queue full: dropping records (counted in teacher stats)")
            self.dropped += n_records

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is on disk. False if that took longer than ``timeout_s``."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                return
            self._thread.join(timeout_s)

    def _open(self):
        fh = self.path.open("a", encoding="utf-8")
        if fh.tell() > 0:
            with self.path.open("rb") as rb:
                rb.seek(-1, os.SEEK_END)
                if rb.read(1) != b"\n":
                    fh.write("\n")  # close a line a crash cut short, so the next record parses
        return fh

    def _rotate(self, fh):
        """teacher_log.jsonl -> teacher_log.<N>.jsonl, N one past the highest rotation so far (none is deleted)."""
        fh.close()
        stem = self.path.name[: -len(".jsonl")]
        rotated = re.compile(rf"^{re.escape(stem)}\.(\d+)\.jsonl$")
        taken = [int(m.group(1)) for f in self.path.parent.iterdir() if (m := rotated.match(f.name))]
        self.path.rename(self.path.with_name(f"{stem}.{max(taken, default=0) + 1}.jsonl"))
        self.rotations += 1
        return self._open()

    def _run(self) -> None:
        fh = None
        flush_at: float | None = None  # monotonic deadline of the oldest unflushed write
        while True:
            timeout = None if flush_at is None else max(0.0, flush_at - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            try:
                if item is _STOP or isinstance(item, threading.Event):
                    if fh is not None:
                        _sync(fh)
                        flush_at = None
                    if item is _STOP:
                        if fh is not None:
                            fh.close()
                        return
                    item.set()
                    continue
                if item is not None:
                    if fh is None:
                        fh = self._open()
                    for record in self._build(item) if self._build else item:
                        fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                        self.written += 1
                    if flush_at is None:
                        flush_at = time.monotonic() + self._flush_s
                    if fh.tell() >= self._max_bytes:
                        _sync(fh)
                        fh = self._rotate(fh)
                        flush_at = None
                if fh is not None and flush_at is not None and time.monotonic() >= flush_at:
                    _sync(fh)
                    flush_at = None
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the teacher; count and go on
                self.write_errors += 1
                if self.write_errors == 1:
                    logger.warning("teacher log %s: write failed (%s); records are being lost", self.path, exc)
                if isinstance(item, threading.Event):
                    item.set()


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


class TeacherLog:
    """What the teacher service calls: ``record`` after each backend answer (cheap: it only enqueues)."""

    def __init__(self, log_dir: str | Path, replica: int, instance_id: str, identity: BackendIdentity,
                 flush_s: float, max_mb: float, queue_size: int):
        self.identity = identity
        self.replica = replica
        self.instance_id = instance_id
        self.writer = LogWriter(replica_log_path(log_dir, replica), flush_s, int(max_mb * 1024 * 1024), queue_size,
                                build=self._records)

    @property
    def path(self) -> Path:
        return self.writer.path

    def record(self, queries: Sequence[TeacherQuery], answers: Sequence[Advice], bank: PromptBankSnapshot,
               latency_s: float) -> None:
        self.writer.put((time.time(), tuple(queries), tuple(answers), bank, latency_s), len(queries))

    def _records(self, item: tuple) -> Iterator[TeacherLogRecord]:
        t, queries, answers, bank, latency_s = item
        ident = self.identity
        for q, a in zip(queries, answers):
            yield TeacherLogRecord(
                time=t, replica=self.replica, instance_id=self.instance_id, backend=ident.backend,
                model_id=ident.model_id, weights_hash=ident.weights_hash, adapter=q.adapter,
                adapter_version=a.adapter_version, bank_version=bank.version, prompt_hash=prompt_hash(q, bank),
                family=q.family, task=q.task, state_text=q.state_text, context=q.context, options=tuple(q.options),
                probs=tuple(float(p) for p in a.probs), reason=a.reason, invalid_outputs=a.invalid_outputs,
                source=a.source or ident.backend, decoding=ident.decoding, latency_s=latency_s,
                batch_size=len(queries), analysis=q.analysis,
            )

    def stats(self) -> dict[str, float]:
        w = self.writer
        return {"log/written": float(w.written), "log/dropped": float(w.dropped), "log/rotations": float(w.rotations),
                "log/write_errors": float(w.write_errors)}

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self.writer.flush(timeout_s)

    def close(self) -> None:
        self.writer.close()


def open_teacher_log(cfg: TeacherConfig, log_dir: str | Path, replica: int, instance_id: str) -> TeacherLog | None:
    """The teacher log of one replica, or None when ``teacher.log=false`` or there is no run folder."""
    if not cfg.log or not log_dir:
        return None
    log = TeacherLog(log_dir, replica, instance_id, backend_identity(cfg), cfg.log_flush_s, cfg.log_max_mb,
                     cfg.log_queue_size)
    logger.info("teacher log: %s", log.path)
    return log
