"""TeacherService without Ray. The backend here is a fake (a counter of calls), because these tests are about
the service's batching, cache and reweighting, not about any planner or LM."""

import asyncio

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, OptionStat, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.service import TeacherService, reweight_by_success


class CountingBackend:
    name = "fake"

    def __init__(self, fail=False, delay=0.0):
        self.calls = []
        self.fail = fail
        self.delay = delay

    async def advise(self, queries, bank):
        self.calls.append(len(queries))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return [Advice(q.options, tuple([1.0] + [0.0] * (len(q.options) - 1)), source="fake") for q in queries]

    async def close(self):
        pass


def q(text, options=("a", "b")):
    return TeacherQuery(family="minigrid", task="T", state_text=text, options=options)


def make(backend, **kw):
    cfg = TeacherConfig(max_batch_size=kw.pop("max_batch_size", 8), max_wait_ms=kw.pop("max_wait_ms", 20.0), **kw)
    return TeacherService(cfg, backend=backend)


def test_concurrent_requests_are_batched_deduplicated_and_cached():
    backend = CountingBackend(delay=0.01)
    svc = make(backend)

    async def main():
        first = await asyncio.gather(*(svc.advise([q(t)]) for t in ["s1", "s2", "s1", "s3"]))
        again = await svc.advise([q("s1")])
        return first, again

    first, again = asyncio.run(main())
    assert backend.calls == [3]  # one batch, s1 once
    assert all(a[0].probs == (1.0, 0.0) for a in first)
    assert again[0].source == "cache"
    st = svc.stats()
    assert (st.requests, st.llm_calls, st.cache_hits, st.deduplicated) == (5, 3, 1, 1)
    assert st.mean_batch_size == 3


def test_backend_failure_gives_no_advice_and_is_not_cached():
    svc = make(CountingBackend(fail=True))
    out = asyncio.run(svc.advise([q("s")]))
    assert not out[0].has_advice and out[0].reason == "backend_error"
    assert len(svc.cache) == 0
    assert svc.stats().no_advice == 1


def test_new_bank_version_misses_cache():
    # Without background re-scoring a new version is adopted at once and answers are computed on demand
    # (tests/teacher/test_bank_rescore.py covers the re-scoring path).
    backend = CountingBackend()
    svc = make(backend, max_wait_ms=1.0, rescore_recent=0)

    async def main():
        await svc.advise([q("s")])
        svc.set_bank(PromptBankSnapshot(version=1, task_description="t"))
        return await svc.advise([q("s")])

    out = asyncio.run(main())
    assert len(backend.calls) == 2 and out[0].bank_version == 1


def test_reweighting_by_student_success():
    bank = PromptBankSnapshot(version=1, task_description="", option_stats=(
        OptionStat("s", "a", successes=0, trials=8), OptionStat("s", "b", successes=8, trials=8)))
    a = Advice(("a", "b"), (0.5, 0.5))
    w = reweight_by_success(a, "s", bank)
    assert w.probs[1] > 0.85 and abs(sum(w.probs) - 1) < 1e-9
    # Unknown state: both untried -> unchanged proportions.
    assert reweight_by_success(a, "other", bank).probs == (0.5, 0.5)

    svc = make(CountingBackend(), reweight_by_success=True, max_wait_ms=1.0)
    svc.set_bank(PromptBankSnapshot(version=1, task_description="", option_stats=(
        OptionStat("s", "a", 0, 10), OptionStat("s", "b", 10, 10))))
    out = asyncio.run(svc.advise([q("s")]))
    assert out[0].probs == (1.0, 0.0)  # a one-hot stays one-hot: reweighting can only rescale
    assert svc.stats().reweighted == 1
