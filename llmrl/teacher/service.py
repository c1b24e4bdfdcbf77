"""The teacher service: one long-lived async actor that every env runner calls.

It owns a backend (scripted planner, transformers LM, vLLM engine or an OpenAI-compatible server), a bounded
cache keyed by (backend, prompt-bank version, adapter version, prompt), a micro-batcher that groups concurrent
requests and removes duplicates, and the latest prompt bank, which it polls from the feedback actor. The RL->LLM
direction (reweighting options by the student's measured success) is applied here, after the cache, so it can be
switched on and off without touching any backend. With the online adapter on, it also polls the adapter
trainer and hot-loads each new LoRA version (``adapter_slot.AdapterSlot``). With ``adapter.role=analyst`` the
LoRA goes on the analyst LM instead (``llmrl.adapter.analyst``): every query the backend is asked first gets the
analyst's analysis (cached per analyst version), which goes into the frozen teacher's prompt and travels back
with the advice (``Advice.analysis``).

A new bank version would make every cached answer stale at once, and with a slow LM every runner would then wait
for fresh ones. So the service adopts a newer bank at most once per ``teacher.bank_min_interval_s`` (longer when
re-scoring would otherwise keep the LM busier than ``teacher.rescore_max_busy``), and first
re-scores the states it was asked about most recently (``teacher.rescore_recent``) under it, in the background,
in small calls that go only when no new-state query is waiting; it answers with the previous version until that
is done. Runners then find the new version's answers already computed.

``TeacherService`` is a plain class so that it can be unit-tested without Ray; ``replicas.start_teacher_service``
wraps it as named Ray actors with bounded restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from llmrl.config import AdapterConfig, TeacherConfig
from llmrl.messages import AdapterVersion, Advice, PromptBankSnapshot, TeacherQuery, TeacherStats
from llmrl.teacher.adapter_slot import AdapterSlot
from llmrl.teacher.batcher import MicroBatcher
from llmrl.teacher.cache import LRUCache
from llmrl.teacher.teacher_log import open_teacher_log

logger = logging.getLogger(__name__)


def lower_process_priority(increment: int) -> None:
    """Add ``increment`` to the niceness of every thread of this process (capped at 19). On Linux niceness is
    per thread, and a Ray actor's methods and the LM's model thread do not run on its constructor's thread;
    threads started later inherit their creator's."""
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):  # elsewhere (macOS) niceness is per process
        os.nice(increment)
        return
    for tid in map(int, os.listdir(tasks)):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def reweight_by_success(advice: Advice, state_text: str, bank: PromptBankSnapshot) -> Advice:
    """p'(o) ~ p(o) * P(success | state, o), with the bank's Laplace-smoothed estimate (0.5 when untried)."""
    if not advice.has_advice or not bank.option_stats:
        return advice
    lookup = bank.success_lookup()
    weights = []
    for option, p in zip(advice.options, advice.probs):
        stat = lookup.get((state_text, option))
        weights.append(p * (stat.success_estimate if stat is not None else 0.5))
    total = sum(weights)
    if total <= 0:
        return advice
    return dataclasses.replace(advice, probs=tuple(w / total for w in weights))


class TeacherService:
    """Batched, cached advice over a ``PlanBackend``. All public methods are safe to call concurrently."""

    def __init__(
        self,
        cfg: TeacherConfig,
        seed: int = 0,
        feedback_actor: str = "",
        namespace: str | None = None,
        backend: Any = None,
        replica: int = 0,
        log_dir: str = "",
        feedback_handle: Any = None,
        adapter_source: str = "",
        adapter_poll_s: float = 5.0,
        adapter_base_model: str = "",
        analyst: AdapterConfig | None = None,
        own_process: bool = False,
    ):
        """``analyst``: the adapter config with ``role=analyst`` (the analyst LM is ``adapter_base_model``), or None
        for no analyst (the LoRA, if any, then goes on the backend itself)."""
        self.cfg = cfg
        if own_process and cfg.cpu_nice > 0:
            # Only in a Ray actor's own worker process: niceness cannot be undone, and an in-process service
            # (benchmarks, tests) must not lower its caller's priority.
            lower_process_priority(cfg.cpu_nice)
        if backend is None:
            from llmrl.teacher.backends import make_backend

            backend = make_backend(cfg, seed)
        self.backend = backend
        self._feedback_actor_name = feedback_actor
        self._namespace = namespace
        self._feedback_handle: Any = feedback_handle  # looked up by name on first use when not given
        self.bank = PromptBankSnapshot(version=0, task_description="")
        self._bank_checked_at = 0.0
        self._bank_refresh: asyncio.Task | None = None
        self._init_rescoring()
        self.cache: LRUCache[Advice] = LRUCache(cfg.cache_size)
        self.batcher: MicroBatcher[TeacherQuery, Advice] = MicroBatcher(
            self._run_backend, TeacherQuery.key, cfg.max_batch_size, cfg.max_wait_ms / 1000.0
        )
        self.analyst: Any = None  # adapter.role=analyst: the analyst stage (its LM, its cache and counters)
        if analyst is not None:
            from llmrl.adapter.analyst import Analyst, AnalystStage

            self.analyst = AnalystStage(Analyst(adapter_base_model, analyst, cfg.hf.max_prompt_tokens,
                                                cfg.hf.torch_threads), analyst.analysis_cache_size)
        # The LoRA version in service (on the analyst LM, if any); adapter_source names the adapter trainer actor to
        # poll ("" = none).
        self.adapters = AdapterSlot(self.analyst.lm if analyst is not None else backend, adapter_source, namespace,
                                    adapter_poll_s, adapter_base_model,
                                    role="teacher" if analyst is None else "analyst")
        self.instance_id = uuid.uuid4().hex[:12]
        self._requests = 0
        self._llm_calls = 0
        self._no_advice = 0
        self._invalid = 0
        self._reweighted = 0
        self._latency = 0.0
        self._warned_backend_error = False
        self._log_if_restarted()
        self._teacher_log = open_teacher_log(cfg, log_dir, replica, self.instance_id)

    def _log_if_restarted(self) -> None:
        try:
            import ray

            if ray.is_initialized() and ray.get_runtime_context().was_current_actor_reconstructed:
                logger.warning("teacher service replica restarted by Ray (instance %s)", self.instance_id)
        except Exception:  # noqa: BLE001 - outside an actor there is nothing to report
            pass

    async def advise(self, queries: Sequence[TeacherQuery]) -> list[Advice]:
        """Advice for each query, in order. Never raises for backend trouble: answers no-advice instead."""
        self._maybe_refresh_bank()
        self.adapters.maybe_poll(time.monotonic())
        self._requests += len(queries)
        bank = self.bank
        results: list[Advice | None] = []
        waiting: list[tuple[int, asyncio.Future]] = []
        for i, q in enumerate(queries):
            self._remember(q)
            hit = self.cache.get(self._cache_key(q, bank.version, self.adapters.number))
            if hit is not None:
                results.append(dataclasses.replace(hit, source="cache", invalid_outputs=0))
            else:
                results.append(None)
                waiting.append((i, self._submit_new_state(q)))
        for i, fut in waiting:
            try:
                results[i] = await fut
            except Exception as exc:  # noqa: BLE001 - a failed batch must not fail the caller
                if not self._warned_backend_error:
                    logger.warning("teacher backend %s failed (%s); answering no-advice", self.backend.name, exc)
                    self._warned_backend_error = True
                results[i] = Advice.none(queries[i].options, reason="backend_error", bank_version=bank.version)
        out: list[Advice] = []
        for q, a in zip(queries, results):
            assert a is not None
            if not a.has_advice:
                self._no_advice += 1
            elif self.cfg.reweight_by_success:
                a = reweight_by_success(a, q.state_text, bank)
                self._reweighted += 1
            out.append(a)
        return out

    def _cache_key(self, q: TeacherQuery, bank_version: int, adapter_version: int) -> tuple:
        return (self.backend.name, bank_version, adapter_version, q.key())

    async def _run_backend(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot | None = None
                           ) -> list[Advice]:
        """Answers from the backend under ``bank`` (default: the bank in use), cached under its version."""
        bank = self.bank if bank is None else bank
        self._llm_calls += len(queries)
        t0 = time.perf_counter()
        if self.analyst is None:
            # The slot holds a switch back until this call is done, so all its answers come from one version.
            answers, adapter_version = await self.adapters.call(lambda: self.backend.advise(queries, bank))
            asked = list(queries)
        else:
            # The analyses come from one analyst version (the slot's); the frozen teacher then reads them.
            asked, adapter_version = await self.analyst.add_analyses(queries, bank, self.adapters)
            answers = await self.backend.advise(asked, bank)
        latency = time.perf_counter() - t0
        self._latency += latency
        tagged = [
            Advice(a.options, a.probs, bank.version, a.source or self.backend.name, a.reason, a.invalid_outputs,
                   adapter_version, q.analysis)
            for a, q in zip(answers, asked)
        ]
        self._log_answers(asked, tagged, bank, latency)
        for q, a in zip(queries, tagged):
            self._invalid += a.invalid_outputs
            # Only real answers are cached: a transient failure must be retried, not remembered.
            if a.has_advice or a.reason == "unparseable":
                self.cache.put(self._cache_key(q, bank.version, adapter_version), a)
        return tagged

    def _log_answers(self, queries: Sequence[TeacherQuery], answers: Sequence[Advice], bank: PromptBankSnapshot,
                     latency_s: float) -> None:
        """Every answer the backend gives goes to the teacher log (enqueued, never waited for). Cache hits are
        not logged again: they repeat an answer already logged under the same prompt-bank version."""
        if self._teacher_log is not None:
            self._teacher_log.record(queries, answers, bank, latency_s)

    def flush_log(self, timeout_s: float = 10.0) -> bool:
        """Block until every answer so far is on disk (the driver calls it before stopping the replica)."""
        return self._teacher_log.flush(timeout_s) if self._teacher_log is not None else True

    # -- prompt bank -------------------------------------------------------------------------------------

    def set_bank(self, bank: PromptBankSnapshot) -> int:
        """Install a bank snapshot (pushed by the driver, or pulled from the feedback actor); returns the version
        answers are produced with now. Called from the event loop, with states asked before and
        ``rescore_recent`` > 0, the snapshot is adopted once those states are re-scored under it (in the
        background; the current version serves meanwhile), else at once. No rate limit here: that is the poll's."""
        newest = self._next_bank if self._next_bank is not None else self.bank
        if bank.version < newest.version:
            return self.bank.version
        if self._recent is None or not len(self._recent) or not _in_event_loop():
            self._adopt(bank)
        else:
            self._next_bank = bank
            if self._rescore_task is None:
                self._rescore_task = asyncio.ensure_future(self._rescore_then_adopt())
        return self.bank.version

    def _maybe_refresh_bank(self) -> None:
        if not self._feedback_actor_name or self._bank_refresh is not None or self._next_bank is not None:
            return
        now = time.monotonic()
        if now - self._bank_checked_at < self.cfg.bank_refresh_s or not self._bank_change_allowed(now):
            return
        self._bank_checked_at = now
        # Poll in the background: a slow feedback actor must never delay advice.
        self._bank_refresh = asyncio.ensure_future(self._refresh_bank())

    async def _refresh_bank(self) -> None:
        try:
            import ray

            if self._feedback_handle is None:
                self._feedback_handle = ray.get_actor(self._feedback_actor_name, namespace=self._namespace)
            newer = await self._feedback_handle.snapshot_if_newer.remote(self.bank.version)
            if newer is not None:
                self.set_bank(newer)
        except Exception as exc:  # noqa: BLE001 - feedback is best effort; advice goes on with the old bank
            logger.debug("prompt bank refresh failed: %s", exc)
            self._feedback_handle = None
        finally:
            self._bank_refresh = None

    # -- background re-scoring for a new bank (teacher.bank_min_interval_s, rescore_recent) ----------------

    def _init_rescoring(self) -> None:
        self._adopted_at = -math.inf  # when the bank in use was adopted; the first version comes at once
        self._next_bank: PromptBankSnapshot | None = None  # being re-scored; adopted when that is done
        self._rescore_task: asyncio.Task | None = None
        # The states asked about most recently (bounded), the ones worth re-scoring for a new bank.
        self._recent: LRUCache[TeacherQuery] | None = (
            LRUCache(self.cfg.rescore_recent) if self.cfg.rescore_recent else None)
        # New-state queries waiting for the backend: the re-score goes only when there are none.
        self._new_state_calls: set[asyncio.Future] = set()
        self._rescored = 0
        self._last_rescore_s = 0.0  # backend time the re-score for the bank in use took
        self._warned_rescore_error = False

    def _bank_change_allowed(self, now: float) -> bool:
        gap = bank_change_gap(self.cfg.bank_min_interval_s, self._last_rescore_s, self.cfg.rescore_max_busy)
        return now - self._adopted_at >= gap

    def _adopt(self, bank: PromptBankSnapshot, rescore_s: float = 0.0) -> None:
        self.bank = bank
        # The initial bank (version 0: the task description the driver installs) makes nothing cached stale, so
        # it does not start the rate limit: the first published version still comes at once.
        if bank.version > 0:
            self._adopted_at = time.monotonic()
        self._last_rescore_s = rescore_s
        if self._next_bank is not None and self._next_bank.version <= bank.version:
            self._next_bank = None

    def _remember(self, query: TeacherQuery) -> None:
        if self._recent is not None:
            self._recent.put(query.key(), query)

    def _submit_new_state(self, query: TeacherQuery) -> asyncio.Future:
        fut = asyncio.ensure_future(self.batcher.submit(query))
        self._new_state_calls.add(fut)
        fut.add_done_callback(self._new_state_calls.discard)
        return fut

    def _rescore_todo(self, bank: PromptBankSnapshot, seen: set[tuple]) -> list[TeacherQuery]:
        """The next few recent states (most recent first) without an answer under ``bank``. ``seen`` collects the
        states considered for this bank, so each is tried once and at most ``rescore_recent`` in all."""
        todo: list[TeacherQuery] = []
        for q in reversed(self._recent.values() if self._recent is not None else []):
            if len(todo) == self.cfg.rescore_batch_size or len(seen) >= self.cfg.rescore_recent:
                break
            key = q.key()
            if key not in seen:
                seen.add(key)
                if self._cache_key(q, bank.version, self.adapters.number) not in self.cache:
                    todo.append(q)
        return todo

    async def _rescore_then_adopt(self) -> None:
        """Re-score recent states under ``_next_bank``, one small call at a time and only while no new-state query
        waits, then adopt it. A newer snapshot arriving meanwhile becomes the target instead."""
        target, seen, busy_s = None, set(), 0.0
        try:
            while (bank := self._next_bank) is not None:
                if bank is not target:
                    target, seen, busy_s = bank, set(), 0.0
                todo = self._rescore_todo(bank, seen)
                if not todo:
                    self._adopt(bank, busy_s)
                    continue
                while self._new_state_calls:  # lower priority than any state a runner has never seen
                    await asyncio.wait(list(self._new_state_calls))
                if self._next_bank is not bank:
                    continue
                t0 = time.perf_counter()
                try:
                    await self._run_backend(todo, bank)
                except Exception as exc:  # noqa: BLE001 - adopt anyway: its answers are then computed on demand
                    if not self._warned_rescore_error:
                        logger.warning("re-scoring for prompt bank %d failed (%s); adopting it without", bank.version,
                                       exc)
                        self._warned_rescore_error = True
                    self._adopt(bank, busy_s)
                    continue
                busy_s += time.perf_counter() - t0
                self._rescored += len(todo)
        finally:
            self._rescore_task = None

    async def settle_bank(self) -> int:
        """Wait for a bank poll and a background re-score in progress, if any; returns the bank version in use
        (tests, benchmarks)."""
        while (busy := self._bank_refresh or self._rescore_task) is not None:
            await asyncio.shield(busy)
        return self.bank.version

    # -- introspection -----------------------------------------------------------------------------------

    def stats(self) -> TeacherStats:
        return TeacherStats(
            requests=self._requests,
            llm_calls=self._llm_calls,
            cache_hits=self.cache.hits,
            batches=self.batcher.batches,
            batched_prompts=self.batcher.batched_items,
            no_advice=self._no_advice,
            invalid_outputs=self._invalid,
            deduplicated=self.batcher.deduplicated,
            reweighted=self._reweighted,
            rescored=self._rescored,
            bank_version=self.bank.version,
            backend=self.backend.name,
            instance_id=self.instance_id,
            latency_s_sum=self._latency,
            extra=self._extra_stats(),
            adapter_version=self.adapters.number,
            adapter_loads=self.adapters.loads,
            adapter_load_failures=self.adapters.failures,
            **(self.analyst.counts if self.analyst is not None else {}),
        )

    def _extra_stats(self) -> tuple[tuple[str, float], ...]:
        """The backend's own counters (``backend/...``, e.g. replay misses) and the teacher log's (``log/...``)."""
        extra: dict[str, float] = {}
        backend_stats = getattr(self.backend, "stats", None)
        if callable(backend_stats):
            extra.update({f"backend/{k}": float(v) for k, v in backend_stats().items()})
        if self.analyst is not None:
            extra.update({f"analyst/{k}": float(v) for k, v in self.analyst.lm.stats().items()})
        if self._teacher_log is not None:
            extra.update(self._teacher_log.stats())
        return tuple(sorted(extra.items()))

    def ping(self) -> str:
        return self.instance_id

    def bank_version(self) -> int:
        """The prompt-bank version advice is produced with now. Runners poll it: repeated states are answered
        from their own caches and never reach the service, so without this a new bank would never be used."""
        self._maybe_refresh_bank()
        return self.bank.version

    def versions(self) -> tuple[int, int]:
        """(prompt-bank version, adapter version) advice is produced with now; runners poll it to know when
        the advice they cached is stale."""
        self._maybe_refresh_bank()
        self.adapters.maybe_poll(time.monotonic())
        return self.bank.version, self.adapters.number

    async def load_adapter(self, version: AdapterVersion) -> bool:
        """Hot-load an adapter version now (the trainer poll does this by itself); False if it was refused."""
        return await self.adapters.switch(version)

    async def add_adapter(self, name: str, path: str) -> bool:
        """Register a LoRA adapter with backends that support it (vLLM); False elsewhere."""
        add = getattr(self.backend, "add_adapter", None)
        if add is None:
            return False
        result = add(name, path)
        if asyncio.iscoroutine(result):
            await result
        return True

    async def close(self) -> None:
        if self._rescore_task is not None:
            self._rescore_task.cancel()
        if self._teacher_log is not None:
            self._teacher_log.close()
        if self.analyst is not None:
            await self.analyst.lm.close()
        await self.backend.close()


def bank_change_gap(min_interval_s: float, last_rescore_s: float, max_busy: float) -> float:
    """Seconds from adopting a bank until the next may be adopted: the fixed interval, or longer when the last
    re-score would otherwise take more than ``max_busy`` of the backend's time (T / (T + gap) <= max_busy)."""
    return max(min_interval_s, last_rescore_s * (1.0 / max_busy - 1.0))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
