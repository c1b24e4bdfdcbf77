"""The LoRA adapter a teacher service serves, and the switch to a newer version without a restart.

A switch has two steps, so advice keeps flowing from the previous version while the new one loads:

1. ``backend.prepare_adapter(v)``: the slow part (read and check the files; vLLM: the engine loads the weights;
   OpenAI: the server loads them). Backend calls go on meanwhile, answered by the previous version.
2. ``backend.activate_adapter(v)``: the quick part. New backend calls wait while the ones in flight finish,
   then the backend switches and they go on. Cache hits never wait.

So every backend call runs under exactly one version, which is the one its answers are tagged and cached with
(``Advice.adapter_version``). An adapter trained on another base model or for another role (``adapter.role``:
a teacher's LoRA on the analyst LM, or the reverse), or one whose files fail to load, is refused with a one-line
warning and counted; the previous version stays in service and that version is not tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from llmrl.messages import AdapterVersion

log = logging.getLogger(__name__)
T = TypeVar("T")


class AdapterSlot:
    """The version in service for one ``core.LoraTarget`` (the teacher's backend, or the analyst LM with
    ``role="analyst"``); ``source`` is the adapter trainer actor's name ("" = no polling)."""

    def __init__(self, backend: Any, source: str = "", namespace: str | None = None, poll_s: float = 5.0,
                 base_model: str = "", role: str = "teacher") -> None:
        self.backend = backend
        self.role = role
        self.version: AdapterVersion | None = None
        self.loads = 0
        self.failures = 0
        self._source = source
        self._namespace = namespace
        self._poll_s = poll_s
        self._base_model = base_model
        self._base_hash: str | None = None
        self._handle: Any = None
        self._failed: set[tuple[str, int]] = set()  # (path, version) refused once: not retried
        self._polled_at = -float("inf")
        self._poll_task: asyncio.Task | None = None
        self._open = asyncio.Event()  # clear while a switch is being applied
        self._open.set()
        self._idle = asyncio.Event()  # set when no backend call is in flight
        self._idle.set()
        self._in_flight = 0

    @property
    def number(self) -> int:
        """The version advice is produced with now (0 = base model)."""
        return self.version.version if self.version is not None else 0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """Run one backend call under the current version; returns (its result, that version)."""
        while not self._open.is_set():
            await self._open.wait()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await fn(), self.number
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def switch(self, version: AdapterVersion) -> bool:
        """Put ``version`` in service; False (counted, logged, previous version kept) if it is refused."""
        from llmrl.adapter.versions import AdapterError, check_base

        try:
            if version.role != self.role:
                raise AdapterError(f"adapter v{version.version} ({version.path}) was trained for adapter.role="
                                   f"{version.role}, and this LoRA goes on the {self.role} LM: refused")
            check_base(version, self._backend_base_hash(), self._base_model)
            await self.backend.prepare_adapter(version)
            self._open.clear()
            try:
                await self._idle.wait()
                await self.backend.activate_adapter(version)
            finally:
                self._open.set()
        except Exception as exc:  # noqa: BLE001 - any refusal keeps the previous adapter
            self.failures += 1
            self._failed.add((version.path, version.version))
            log.warning("teacher: adapter v%d not loaded, v%d stays in service: %s", version.version, self.number,
                        " ".join(str(exc).split()) or type(exc).__name__)
            return False
        self.version = version
        self.loads += 1
        log.info("teacher: now serving adapter v%d (held-out loss %.4f)", version.version, version.heldout_loss)
        return True

    def _backend_base_hash(self) -> str:
        if self._base_hash is None:
            own = getattr(self.backend, "adapter_base_hash", None)
            if own is not None:
                self._base_hash = own()
            else:  # a remote server: the configured base model's folder says what it runs
                from llmrl.adapter.versions import model_config_hash

                self._base_hash = model_config_hash(self._base_model)
        return self._base_hash

    # -- polling the trainer ---------------------------------------------------------------------------------

    def maybe_poll(self, now: float) -> None:
        """Ask the trainer for its latest version in the background, at most every ``poll_s``."""
        if not self._source or self._poll_task is not None or now - self._polled_at < self._poll_s:
            return
        self._polled_at = now
        self._poll_task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        try:
            import ray

            if self._handle is None:
                self._handle = ray.get_actor(self._source, namespace=self._namespace)
            latest = await self._handle.latest.remote()
            if (latest is not None and latest.version != self.number
                    and (latest.path, latest.version) not in self._failed):
                await self.switch(latest)
        except Exception as exc:  # noqa: BLE001 - a restarting trainer: keep serving, ask again later
            log.debug("adapter poll failed: %s", exc)
            self._handle = None
        finally:
            self._poll_task = None
