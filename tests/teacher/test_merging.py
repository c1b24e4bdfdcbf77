"""CallMerger: calls that arrive while the model is busy are merged into its next call."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llmrl.teacher.backends.merging import CallMerger


class Recorder:
    """A model call that records its batches; the first call blocks until released."""

    def __init__(self, fail_on: str | None = None):
        self.batches: list[tuple[object, list]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, key, items):
        self.batches.append((key, list(items)))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError("boom")
        return [f"{key}:{x}" for x in items]


async def _while_busy(merger, rec, first, later):
    """Start ``first``; once the model is inside it, queue ``later`` calls, then let the model go on."""
    head = asyncio.ensure_future(merger(*first))
    await asyncio.to_thread(rec.entered.wait, 10)
    tails = [asyncio.ensure_future(merger(k, items)) for k, items in later]
    await asyncio.sleep(0.05)  # let every queued call reach the merger's queue
    rec.release.set()
    return await asyncio.gather(head, *tails, return_exceptions=True)


def test_calls_queued_while_busy_share_one_model_call():
    rec = Recorder()
    merger = CallMerger(rec, max_items=100)
    out = asyncio.run(_while_busy(merger, rec, ("k", [0]), [("k", [1, 2]), ("k", [3]), ("k", [4, 5])]))
    assert out == [["k:0"], ["k:1", "k:2"], ["k:3"], ["k:4", "k:5"]]
    assert [items for _, items in rec.batches] == [[0], [1, 2, 3, 4, 5]]
    assert (merger.calls, merger.merged) == (2, 2)
    merger.close()


def test_keys_are_never_mixed_and_order_is_kept():
    rec = Recorder()
    merger = CallMerger(rec, max_items=100)
    out = asyncio.run(_while_busy(merger, rec, ("a", [0]), [("a", [1]), ("b", [2]), ("a", [3])]))
    assert out == [["a:0"], ["a:1"], ["b:2"], ["a:3"]]
    assert rec.batches == [("a", [0]), ("a", [1]), ("b", [2]), ("a", [3])]
    merger.close()


def test_max_items_bounds_a_merged_call():
    rec = Recorder()
    merger = CallMerger(rec, max_items=3)
    asyncio.run(_while_busy(merger, rec, ("k", [0]), [("k", [1, 2]), ("k", [3, 4]), ("k", [5])]))
    assert [items for _, items in rec.batches] == [[0], [1, 2, 3, 4], [5]]
    merger.close()


def test_a_failure_reaches_every_merged_caller_and_the_worker_goes_on():
    rec = Recorder(fail_on=2)
    merger = CallMerger(rec, max_items=100)
    out = asyncio.run(_while_busy(merger, rec, ("k", [0]), [("k", [1]), ("k", [2])]))
    assert out[0] == ["k:0"]
    assert all(isinstance(e, ValueError) for e in out[1:])
    assert asyncio.run(merger("k", [7])) == ["k:7"]  # a new event loop, the same worker thread
    merger.close()


def test_a_cancelled_caller_is_skipped():
    rec = Recorder()
    merger = CallMerger(rec, max_items=100)

    async def main():
        head = asyncio.ensure_future(merger("k", [0]))
        await asyncio.to_thread(rec.entered.wait, 10)
        gone = asyncio.ensure_future(merger("k", [1]))
        kept = asyncio.ensure_future(merger("k", [2]))
        await asyncio.sleep(0.05)
        gone.cancel()
        await asyncio.sleep(0.05)
        rec.release.set()
        return await head, await kept

    assert asyncio.run(main()) == (["k:0"], ["k:2"])
    assert [items for _, items in rec.batches] == [[0], [2]]
    merger.close()


def test_empty_call_and_bad_bound():
    merger = CallMerger(lambda k, items: items, max_items=1)
    assert asyncio.run(merger("k", [])) == []
    with pytest.raises(ValueError):
        CallMerger(lambda k, items: items, max_items=0)
