"""Merge concurrent model calls into one: continuous batching for backends without an engine that does it.

A compute-bound model gains nothing from two calls running at once on the same cores or GPU, but a lot from
running them as one batch. The teacher service's micro-batcher flushes a batch every ``max_wait_ms`` whether
or not the model is free, so while one batch computes, several small ones queue behind it. ``CallMerger``
runs every call on one worker thread; calls that arrive while it is busy wait in a queue, and the next model
call takes every waiting call with the same key (e.g. the same prompt-bank prefix), up to ``max_items``
items. Under load the batch therefore grows to whatever arrived during the previous call (as in vLLM's engine
loop, and as ``bench.scaling_model`` assumes), while an idle model starts a lone call at once.

Callers await from any event loop: the queue holds thread-safe futures, not loop-bound ones.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

_STOP = object()


class CallMerger:
    """``await merger(key, items)`` -> ``fn(key, merged_items)``'s results for ``items``, in order."""

    def __init__(self, fn: Callable[[Hashable, list[Any]], Sequence[Any]], max_items: int, name: str = "model"):
        if max_items <= 0:
            raise ValueError(f"max_items must be > 0, got {max_items}")
        self._fn = fn
        self._max = max_items
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.calls = 0  # model calls made
        self.merged = 0  # submitted calls that rode along in a model call started for an earlier one

    async def __call__(self, key: Hashable, items: Sequence[Any]) -> list[Any]:
        if not items:
            return []
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._ensure_thread()
        self._queue.put((key, list(items), fut))
        return await asyncio.wrap_future(fut)

    def close(self, timeout_s: float = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout_s)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                # Daemon: a backend that is never closed must not keep its process alive.
                self._thread = threading.Thread(target=self._loop, name=f"{self._name}-calls", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        carry: Any = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is _STOP:
                return
            batch, n = [job], len(job[1])
            while n < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP or nxt[0] != job[0]:
                    carry = nxt  # a different key (or the stop) starts the next model call
                    break
                batch.append(nxt)
                n += len(nxt[1])
            self._run(job[0], batch)

    def _run(self, key: Hashable, batch: list[tuple[Hashable, list[Any], concurrent.futures.Future]]) -> None:
        live = [job for job in batch if job[2].set_running_or_notify_cancel()]  # callers that gave up are skipped
        if not live:
            return
        items = [x for _, its, _ in live for x in its]
        self.calls += 1
        self.merged += len(live) - 1
        try:
            results = list(self._fn(key, items))
            if len(results) != len(items):
                raise RuntimeError(f"model call returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # noqa: BLE001 - every caller in the merged call must hear about it
            for _, _, fut in live:
                fut.set_exception(exc)
            return
        start = 0
        for _, its, fut in live:
            fut.set_result(results[start:start + len(its)])
            start += len(its)
