import asyncio

import pytest

from llmrl.teacher.batcher import MicroBatcher
from llmrl.teacher.cache import LRUCache


def test_lru_is_bounded_and_counts():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now most recent
    c.put("c", 3)  # evicts b
    assert c.get("b") is None and len(c) == 2 and c.evictions == 1
    assert (c.hits, c.misses) == (1, 1)
    with pytest.raises(ValueError):
        LRUCache(0)


def _run(coro):
    return asyncio.run(coro)


def test_batches_by_size_and_deduplicates():
    seen = []

    async def process(items):
        seen.append(list(items))
        return [i * 10 for i in items]

    async def main():
        b = MicroBatcher(process, key=lambda x: x, max_batch_size=3, max_wait_s=10.0)
        # 3 distinct keys fill a batch immediately (no 10 s wait); the duplicate 1 shares a slot.
        results = await asyncio.gather(b.submit(1), b.submit(1), b.submit(2), b.submit(3))
        return b, results

    b, results = _run(main())
    assert results == [10, 10, 20, 30]
    assert seen == [[1, 2, 3]]
    assert b.deduplicated == 1 and b.batches == 1 and b.mean_batch_size == 3


def test_flushes_after_max_wait():
    async def process(items):
        return list(items)

    async def main():
        b = MicroBatcher(process, key=lambda x: x, max_batch_size=100, max_wait_s=0.01)
        return await asyncio.wait_for(asyncio.gather(b.submit("x"), b.submit("y")), timeout=2.0), b

    (res, b) = _run(main())
    assert res == ["x", "y"] and b.batches == 1


def test_processor_failure_reaches_every_waiter():
    async def process(items):
        raise RuntimeError("engine died")

    async def main():
        b = MicroBatcher(process, key=lambda x: x, max_batch_size=2, max_wait_s=0.01)
        return await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)

    out = _run(main())
    assert all(isinstance(e, RuntimeError) for e in out)
