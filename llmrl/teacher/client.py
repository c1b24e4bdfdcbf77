"""The env-runner side of the teacher: keeps the teacher off the env-step hot path.

One ``TeacherClient`` per process (``shared_client``) serves all vectorised envs of an env runner. It keeps a
bounded LRU of advice keyed by the query, so a state seen before in this process costs a dict lookup, and it
only calls the service for new states. Only a state this process has never seen waits for its answer, at most
``advice_timeout_s``; a late answer is picked up on a later step. When the service has moved to a newer prompt
bank, advice held under an older version is answered at once and the fresh answer is asked for in the
background, to be used from a later request on: a new bank version never makes a runner wait. Steps guided by
advice older than the newest version known here are counted (``stale_steps``, reported by the guided env).
Failures (dead or restarting replica, timeouts) are counted and answered with "no advice"; after a failure the
client waits ``retry_after_s`` before asking that replica again, so a dead teacher costs nothing per step.
Nothing here raises into the env.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, TeacherQuery
from llmrl.teacher.cache import LRUCache
from llmrl.teacher.router import ReplicaRouter
from llmrl.teacher.replicas import replica_name

logger = logging.getLogger(__name__)

_COUNTERS = (
    "requests", "local_hits", "remote_calls", "remote_answers", "no_advice", "timeouts", "failures",
    "unavailable", "skipped_backoff", "stale_served", "advised_steps", "stale_steps",
)
# Service answers that mean "the teacher could not answer now" (not "the LM answered nonsense"): back off.
_UNAVAILABLE = ("teacher_unavailable", "backend_error", "engine_error")


class TeacherClient:
    def __init__(self, cfg: TeacherConfig, namespace: str | None = None):
        self.cfg = cfg
        self._namespace = namespace
        self._handles: list[Any] = [None] * cfg.num_replicas
        self._router = ReplicaRouter(cfg.num_replicas, cfg.routing)
        self._cache: LRUCache[Advice] = LRUCache(cfg.client_cache_size)
        # key -> (object ref, replica index, time sent); bounded by the number of distinct new states in flight.
        self._pending: dict[tuple, tuple[Any, int, float]] = {}
        self._retry_at = [0.0] * cfg.num_replicas
        self._latest_bank = 0
        self._latest_adapter = 0  # newest LoRA adapter version the service serves (llmrl.adapter)
        self._bank_probe: Any = None  # in-flight bank_version() call
        self._bank_probe_at = 0.0
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.wait_s = 0.0
        self._warned = False

    # -- public ------------------------------------------------------------------------------------------

    def request(self, query: TeacherQuery) -> Advice | None:
        self.counters["requests"] += 1
        self._probe_bank_version()
        key = query.key()
        cached = self._cache.peek(key)
        if (cached is not None and cached.bank_version >= self._latest_bank
                and cached.adapter_version >= self._latest_adapter):
            self.counters["local_hits"] += 1
            return cached
        if key not in self._pending and not self._send(query, key):
            return self._stale(cached)
        # Held under an older bank: do not wait, take the fresh answer only if it is already here.
        advice = self._collect(key, timeout=0.0 if cached is not None else self.cfg.advice_timeout_s)
        if advice is None:
            return self._stale(cached)
        return advice if advice.has_advice else None

    def note_advised_step(self, advice: Advice) -> None:
        """One env step was guided by ``advice``: counts it, and whether its bank version was already superseded."""
        self.counters["advised_steps"] += 1
        if advice.bank_version < self._latest_bank:
            self.counters["stale_steps"] += 1

    def stats(self) -> dict[str, float]:
        out = {f"teacher_client/{k}": float(v) for k, v in self.counters.items()}
        out["teacher_client/wait_s"] = self.wait_s
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _collect(self, key: tuple, timeout: float) -> Advice | None:
        """The answer of the call in flight for ``key`` if it arrives within ``timeout`` (0: only if already
        here); None when it does not, or the call failed. Answers are cached (all but "teacher unavailable")."""
        import ray

        ref, replica, _ = self._pending[key]
        if timeout > 0:
            t0 = time.perf_counter()
            ready, _ = ray.wait([ref], timeout=timeout)
            self.wait_s += time.perf_counter() - t0
            if not ready:
                self.counters["timeouts"] += 1
        else:
            ready, _ = ray.wait([ref], timeout=0)
        if not ready:
            return None
        del self._pending[key]
        self._router.finished(replica)
        return self._receive(key, ref, replica)

    def _receive(self, key: tuple, ref: Any, replica: int) -> Advice | None:
        import ray

        try:
            (advice,) = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - dead/restarting replica: fall back, never crash the runner
            self._on_failure(replica, exc)
            return None
        self.counters["remote_answers"] += 1
        self._latest_bank = max(self._latest_bank, advice.bank_version)
        self._latest_adapter = max(self._latest_adapter, advice.adapter_version)
        if not advice.has_advice:
            self.counters["no_advice"] += 1
            if advice.reason in _UNAVAILABLE:
                # The replica is up but its backend is not (an unreachable OpenAI endpoint, a dead engine):
                # back off like a failed call, or every new state would wait out the backend's retries.
                self.counters["unavailable"] += 1
                self._retry_at[replica] = time.monotonic() + self.cfg.retry_after_s
                return None
        self._cache.put(key, advice)
        return advice

    def _harvest(self) -> None:
        """Take in every answer that has arrived (background refreshes of keys not asked again yet, late answers),
        so the router's in-flight counts stay true, and give up on calls that will not come back (a hung replica)."""
        import ray

        if not self._pending:
            return
        refs = {ref: key for key, (ref, _, _) in self._pending.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            key = refs[ref]
            _, replica, _ = self._pending.pop(key)
            self._router.finished(replica)
            self._receive(key, ref, replica)
        give_up_before = time.monotonic() - 10 * self.cfg.advice_timeout_s
        for key, (_, replica, sent) in list(self._pending.items()):
            if sent < give_up_before:
                del self._pending[key]
                self._router.finished(replica)

    def _probe_bank_version(self) -> None:
        """Learn the service's prompt-bank and adapter versions without blocking; advice cached under an older
        one is then re-asked (and served stale until the new answer arrives)."""
        import ray

        if self._bank_probe is not None:
            ready, _ = ray.wait([self._bank_probe], timeout=0)
            if not ready:
                return
            try:
                bank, adapter = ray.get(self._bank_probe)
                self._latest_bank = max(self._latest_bank, int(bank))
                self._latest_adapter = max(self._latest_adapter, int(adapter))
            except Exception:  # noqa: BLE001 - a restarting replica; the next probe will tell
                pass
            self._bank_probe = None
        now = time.monotonic()
        if now - self._bank_probe_at < self.cfg.bank_refresh_s or now < self._retry_at[0]:
            return
        self._bank_probe_at = now
        self._harvest()
        try:
            self._bank_probe = self._handle(0).versions.remote()
        except Exception:  # noqa: BLE001 - actor lookup fails while it is restarting
            self._bank_probe = None

    def _stale(self, cached: Advice | None) -> Advice | None:
        # Advice from an older prompt bank beats no advice while the refresh is under way.
        if cached is not None and cached.has_advice:
            self.counters["stale_served"] += 1
            return cached
        return None

    def _send(self, query: TeacherQuery, key: tuple) -> bool:
        now = time.monotonic()
        self._revive(now)
        replica = self._router.pick(key)
        if now < self._retry_at[replica]:
            self.counters["skipped_backoff"] += 1
            return False
        try:
            handle = self._handle(replica)
            ref = handle.advise.remote([query])
        except Exception as exc:  # noqa: BLE001 - actor lookup fails while it is being restarted
            self._on_failure(replica, exc)
            return False
        self._router.started(replica)
        self._pending[key] = (ref, replica, now)
        self.counters["remote_calls"] += 1
        return True

    def _handle(self, replica: int) -> Any:
        if self._handles[replica] is None:
            import ray

            self._handles[replica] = ray.get_actor(replica_name(self.cfg, replica), namespace=self._namespace)
        return self._handles[replica]

    def _on_failure(self, replica: int, exc: BaseException) -> None:
        self.counters["failures"] += 1
        self._retry_at[replica] = time.monotonic() + self.cfg.retry_after_s
        self._router.mark_dead(replica)
        if not self._warned:
            logger.warning("teacher replica %d unavailable (%s): going on without advice", replica, type(exc).__name__)
            self._warned = True
        # Forget in-flight calls to that replica; they would only fail too.
        for key, (_, r, _) in list(self._pending.items()):
            if r == replica:
                del self._pending[key]
                self._router.finished(r)
        # A named actor keeps its handle across Ray restarts; re-resolving only matters if it was recreated.
        self._handles[replica] = None

    def _revive(self, now: float) -> None:
        for i, retry_at in enumerate(self._retry_at):
            if retry_at and now >= retry_at:
                self._router.mark_alive(i)
                self._retry_at[i] = 0.0


_CLIENTS: dict[tuple[str, str | None], TeacherClient] = {}


def shared_client(cfg: TeacherConfig, namespace: str | None = None) -> TeacherClient:
    """The process-wide client for this teacher, created on first use (one per env-runner process)."""
    key = (cfg.actor_name, namespace)
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = TeacherClient(cfg, namespace)
    return client


def forget_shared_clients() -> None:
    """Drop this process's clients once their run has ended. A later run in the same process (tests, benchmarks,
    notebooks) must not inherit their actor handles, cached advice or teacher config."""
    _CLIENTS.clear()


def all_client_stats() -> dict[str, float]:
    """Counters of every teacher client in this process, summed (for the env runner's metrics)."""
    total: dict[str, float] = {}
    for client in _CLIENTS.values():
        for k, v in client.stats().items():
            total[k] = total.get(k, 0.0) + v
    return total
