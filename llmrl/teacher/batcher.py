"""Dynamic batching of concurrent teacher requests (after SEED RL / IMPALA's dynamic batching).

Callers ``await submit(item)`` from many concurrent coroutines (one per actor call). Items are grouped until
``max_batch_size`` distinct keys are waiting or ``max_wait_s`` has passed since the first one, then the
whole group goes to ``process`` in one call. Items with equal keys inside one batch share a single slot, so a
burst of runners asking about the same state costs one LLM prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        process: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        key: Callable[[T], Hashable],
        max_batch_size: int,
        max_wait_s: float,
    ):
        if max_batch_size <= 0:
            raise ValueError(f"max_batch_size must be > 0, got {max_batch_size}")
        self._process = process
        self._key = key
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._items: dict[Hashable, tuple[T, asyncio.Future]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: set[asyncio.Task] = set()
        # Counters for the service's stats.
        self.batches = 0
        self.batched_items = 0
        self.deduplicated = 0

    async def submit(self, item: T) -> R:
        k = self._key(item)
        entry = self._items.get(k)
        if entry is not None:
            self.deduplicated += 1
            return await asyncio.shield(entry[1])
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._items[k] = (item, fut)
        if len(self._items) >= self.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._items:
            return
        batch, self._items = self._items, {}
        task = asyncio.get_running_loop().create_task(self._run(list(batch.values())))
        # Keep a reference: the loop holds tasks only weakly.
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _run(self, entries: list[tuple[T, asyncio.Future]]) -> None:
        self.batches += 1
        self.batched_items += len(entries)
        try:
            results = await self._process([item for item, _ in entries])
            if len(results) != len(entries):
                raise RuntimeError(f"batch processor returned {len(results)} results for {len(entries)} items")
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about the failure
            for _, fut in entries:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), result in zip(entries, results):
            if not fut.done():
                fut.set_result(result)

    @property
    def mean_batch_size(self) -> float:
        return self.batched_items / self.batches if self.batches else 0.0
