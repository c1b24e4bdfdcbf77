"""A new prompt bank without stalling runners: the service's rate limit on bank versions and its background
re-scoring of recent states (no Ray). The backend is a fake that records which bank version each call used and
can hold calls of new versions back, because these tests are about the service's scheduling, not about an LM;
like the hf backend's single model thread, it runs one call at a time."""

import asyncio

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.service import TeacherService, bank_change_gap


class SerialBackend:
    """Answers "a" under bank 0 and "b" under any later bank, one call at a time; ``gate`` (when set up) holds
    back calls for banks after 0 until it opens."""

    name = "serial"

    def __init__(self, gated: bool = False):
        self.calls: list[tuple[int, tuple[str, ...]]] = []
        self._lock = asyncio.Lock()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def advise(self, queries, bank):
        async with self._lock:
            self.calls.append((bank.version, tuple(q.state_text for q in queries)))
            if bank.version > 0:
                await self.gate.wait()
            best = 0 if bank.version == 0 else 1
            return [Advice(q.options, tuple(1.0 if i == best else 0.0 for i in range(2)), bank.version)
                    for q in queries]

    async def close(self):
        pass


def q(text):
    return TeacherQuery(family="minigrid", task="T", state_text=text, options=("a", "b"))


def service(backend, feedback_handle=None, **kw):
    cfg = TeacherConfig(max_batch_size=8, max_wait_ms=1.0, **kw)
    return TeacherService(cfg, backend=backend, feedback_actor="fb" if feedback_handle else "",
                          feedback_handle=feedback_handle)


def bank(version):
    return PromptBankSnapshot(version=version, task_description="t")


def test_previous_version_serves_until_recent_states_are_rescored_then_the_new_one_is_adopted():
    async def main():
        backend = SerialBackend(gated=True)
        svc = service(backend, rescore_recent=8, rescore_batch_size=2)
        await asyncio.gather(*(svc.advise([q(t)]) for t in ("s1", "s2", "s3")))
        assert svc.set_bank(bank(1)) == 0  # not adopted yet: its answers are being computed
        await asyncio.sleep(0.01)  # the re-score is now held at the gate
        (during,) = await svc.advise([q("s1")])
        assert (during.bank_version, during.source, during.best(), svc.bank_version()) == (0, "cache", "a", 0)
        backend.gate.set()
        assert await svc.settle_bank() == 1
        after = await svc.advise([q(t) for t in ("s1", "s2", "s3")])
        return backend.calls, during, after, svc.stats()

    calls, during, after, stats = asyncio.run(main())
    assert calls[0] == (0, ("s1", "s2", "s3"))
    # Most recently asked first (s1 was asked again while s3 and s2 were being re-scored), in calls of 2.
    assert calls[1:] == [(1, ("s3", "s2")), (1, ("s1",))]
    assert all(a.source == "cache" and a.bank_version == 1 and a.best() == "b" for a in after)
    assert stats.rescored == 3 and stats.llm_calls == 6 and stats.bank_version == 1


def test_rescoring_is_bounded_to_the_most_recent_states():
    async def main():
        backend = SerialBackend()
        svc = service(backend, rescore_recent=2, rescore_batch_size=4)
        for t in ("s1", "s2", "s3", "s4", "s5"):
            await svc.advise([q(t)])
        svc.set_bank(bank(1))
        await svc.settle_bank()
        rescore_calls = list(backend.calls[5:])
        (old,) = await svc.advise([q("s1")])  # not among the recent: computed on demand under the new bank
        return rescore_calls, old, backend.calls[-1], svc.stats()

    rescore_calls, old, last_call, stats = asyncio.run(main())
    assert rescore_calls == [(1, ("s5", "s4"))] and stats.rescored == 2
    assert old.bank_version == 1 and old.source != "cache" and last_call == (1, ("s1",))


def test_states_never_seen_go_before_rescoring():
    async def main():
        backend = SerialBackend(gated=True)
        svc = service(backend, rescore_recent=8, rescore_batch_size=1)
        await svc.advise([q("s1"), q("s2")])
        waiting = asyncio.ensure_future(svc.advise([q("new1")]))
        await asyncio.sleep(0)  # new1 is now waiting for the backend
        svc.set_bank(bank(1))
        (first,) = await waiting
        await asyncio.sleep(0.01)  # the first re-score call is now held at the gate ...
        arriving = asyncio.ensure_future(svc.advise([q("new2")]))  # ... when another new state comes in
        await asyncio.sleep(0.01)
        backend.gate.set()
        (second,) = await arriving
        await svc.settle_bank()
        return backend.calls, first, second

    calls, first, second = asyncio.run(main())
    assert calls[:2] == [(0, ("s1", "s2")), (0, ("new1",))]  # the waiting new state first, under the old bank
    assert first.bank_version == 0 and second.bank_version == 0
    # After the one re-score call in progress, new2 goes before the remaining ones.
    assert calls[2][0] == 1 and calls[3] == (0, ("new2",))
    assert all(version == 1 for version, _ in calls[4:])
    assert sorted(t for _, (t,) in calls[2:] if _ == 1) == ["new1", "new2", "s1", "s2"]


class _Method:
    def __init__(self, fn):
        self.remote = fn


class FakeFeedbackActor:
    """Stands in for the feedback actor's handle (``snapshot_if_newer.remote(v)``), without Ray."""

    def __init__(self):
        self.version = 0
        self.polls = 0
        self.snapshot_if_newer = _Method(self._snapshot_if_newer)

    async def _snapshot_if_newer(self, version):
        self.polls += 1
        return bank(self.version) if self.version > version else None


def test_bank_versions_are_adopted_at_most_once_per_min_interval():
    async def main():
        feedback = FakeFeedbackActor()
        svc = service(SerialBackend(), feedback, bank_refresh_s=0.0, bank_min_interval_s=3600.0, rescore_recent=0)
        feedback.version = 1
        await svc.advise([q("s")])
        first = await svc.settle_bank()  # the first version is adopted at once
        feedback.version = 2
        polls = feedback.polls
        await svc.advise([q("s")])
        held = await svc.settle_bank()  # within the interval: not even asked for
        held_polls = feedback.polls - polls
        svc.cfg.bank_min_interval_s = 0.0  # the interval has passed
        await svc.advise([q("s")])
        return first, held, held_polls, await svc.settle_bank()

    first, held, held_polls, later = asyncio.run(main())
    assert (first, held, held_polls, later) == (1, 1, 0, 2)


def test_a_costly_rescore_stretches_the_gap_so_the_lm_stays_mostly_free():
    assert bank_change_gap(30.0, 0.0, 0.2) == 30.0  # nothing re-scored: the fixed interval
    assert bank_change_gap(30.0, 2.0, 0.2) == 30.0  # a cheap re-score (a GPU): still the interval
    gap = bank_change_gap(30.0, 40.0, 0.2)  # 40 s of LM time (SmolLM2 on a busy CPU) ...
    assert gap == 160.0 and 40.0 / (40.0 + gap) == 0.2  # ... is at most a fifth of the LM's time
    assert bank_change_gap(30.0, 40.0, 1.0) == 30.0  # 1 = only the interval
