"""TeacherClient against a real local Ray teacher actor when the prompt bank moves on: advice held under an
older version is answered at once and refreshed in the background, only a state never seen waits, and steps
guided by superseded advice are counted.

The actor is the real ``TeacherService``; its backend is a fake that answers "a" under bank 0 and "b" under
later banks, and holds the later answers back until a file appears. That gate (across processes) decides what
has arrived when, so no assert depends on timing."""

from __future__ import annotations

import asyncio
import os

import pytest

from llmrl.config import TeacherConfig
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.client import TeacherClient
from llmrl.teacher.service import TeacherService

pytestmark = pytest.mark.integration


def gated_backend(gate: str):
    # Defined in a function so that Ray pickles the class by value (the test module is not importable in workers).
    class GatedBackend:
        name = "gated"

        async def advise(self, queries, bank):
            while bank.version > 0 and not os.path.exists(gate):
                await asyncio.sleep(0.01)
            best = min(bank.version, 1)
            return [Advice(q.options, tuple(float(i == best) for i in range(len(q.options))), bank.version)
                    for q in queries]

        async def close(self):
            pass

    return GatedBackend()


def q(text):
    return TeacherQuery(family="minigrid", task="T", state_text=text, options=("a", "b"))


def learn_bank_version(ray, client):
    """Let the client's asynchronous bank-version probe come back (it is read on the next request)."""
    client.request(q("s1"))
    ray.wait([client._bank_probe])


def wait_for_answers(ray, client):
    """Wait until every call the client has in flight is answered (it takes them in on later requests)."""
    refs = [ref for ref, _, _ in client._pending.values()]
    ray.wait(refs, num_returns=len(refs))


def test_stale_advice_is_served_at_once_and_refreshed_in_the_background(ray_local, tmp_path):
    ray = ray_local
    gate = tmp_path / "open"
    # rescore_recent=0: the service adopts the new bank at once, so its answers are computed on request (held
    # at the gate) instead of before the switch.
    cfg = TeacherConfig(actor_name="stale_bank_teacher", bank_refresh_s=0.0, advice_timeout_s=0.5, max_wait_ms=1.0,
                        rescore_recent=0)
    actor = ray.remote(TeacherService).options(name=cfg.actor_name, namespace="llmrl", max_concurrency=16).remote(
        cfg, 0, "", "llmrl", backend=gated_backend(str(gate)))
    ray.get(actor.ping.remote())
    client = TeacherClient(cfg, namespace="llmrl")

    first = client.request(q("s1"))  # never seen: waits for the answer
    assert first.best() == "a" and first.bank_version == 0
    waited = client.wait_s
    assert ray.get(actor.set_bank.remote(PromptBankSnapshot(version=1, task_description="t"))) == 1
    learn_bank_version(ray, client)

    stale = client.request(q("s1"))
    assert stale.best() == "a" and stale.bank_version == 0  # the old answer, at once ...
    assert client.wait_s == waited and client.counters["timeouts"] == 0  # ... without waiting for the new one
    assert client.counters["stale_served"] == 1 and len(client._pending) == 1  # which is on its way
    client.note_advised_step(stale)
    assert (client.counters["advised_steps"], client.counters["stale_steps"]) == (1, 1)

    assert client.request(q("s2")) is None  # never seen: the only case that waits, and it timed out here
    assert client.counters["timeouts"] == 1 and client.wait_s > waited

    gate.touch()
    wait_for_answers(ray, client)
    fresh = client.request(q("s1"))  # picked up on a later request
    assert fresh.best() == "b" and fresh.bank_version == 1
    client.note_advised_step(fresh)
    assert (client.counters["advised_steps"], client.counters["stale_steps"]) == (2, 1)
    hits = client.counters["local_hits"]
    assert client.request(q("s1")) is fresh and client.counters["local_hits"] == hits + 1  # now current
    late = client.request(q("s2"))  # the answer that came late is taken in too
    assert late.best() == "b" and client.counters["timeouts"] == 1
    stats = client.stats()
    assert stats["teacher_client/stale_steps"] == 1.0 and stats["teacher_client/advised_steps"] == 2.0
