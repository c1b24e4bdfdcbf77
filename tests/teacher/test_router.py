import random
from collections import Counter

import pytest

from llmrl.teacher.router import ReplicaRouter, stable_hash


def test_least_pending_spreads_an_idle_pool_round_robin():
    r = ReplicaRouter(4, "least_pending")
    picks = []
    for _ in range(8):
        i = r.pick(("s",))
        r.started(i)
        picks.append(i)
    assert picks == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [r.pending(i) for i in range(4)] == [2, 2, 2, 2]


def test_least_pending_balances_a_random_synthetic_load():
    rng = random.Random(0)
    r = ReplicaRouter(3, "least_pending")
    in_flight: list[int] = []
    served = Counter()
    for _ in range(3000):
        if in_flight and rng.random() < 0.45:
            r.finished(in_flight.pop(rng.randrange(len(in_flight))))
        i = r.pick(str(rng.random()))
        r.started(i)
        in_flight.append(i)
        served[i] += 1
        loads = [r.pending(j) for j in range(3)]
        assert max(loads) - min(loads) <= 1 + len(in_flight) // 3  # never piles onto one replica
    assert max(served.values()) - min(served.values()) <= 0.05 * sum(served.values())


def test_least_pending_prefers_the_idle_replica():
    r = ReplicaRouter(3, "least_pending")
    for _ in range(5):
        r.started(0)
    r.started(2)
    assert r.pick("x") == 1


def test_affinity_is_stable_for_equal_keys_and_spreads_different_keys():
    r = ReplicaRouter(4, "affinity")
    key = ("minigrid", "SimpleDoorKey", "Agent sees <key>", "", "", "go to key")
    first = r.pick(key)
    assert all(r.pick(key) == first for _ in range(20))
    assert ReplicaRouter(4, "affinity").pick(key) == first  # a fresh router (another process) agrees
    counts = Counter(r.pick(("state", str(i))) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 0.2 * 4000


def test_stable_hash_is_deterministic_and_unambiguous():
    assert stable_hash(("a", "b")) == stable_hash(("a", "b"))
    assert stable_hash(("ab", "c")) != stable_hash(("a", "bc"))
    # A pinned value: Python's salted hash() would differ between processes, this must not.
    assert stable_hash("abc") == 0x2828DE84C325626B
    assert 0 <= stable_hash(("minigrid", "x")) < 2**64


def test_affinity_falls_back_when_its_replica_is_overloaded():
    r = ReplicaRouter(3, "affinity")
    key = "hot state"
    owner = r.pick(key)
    for _ in range(4):  # 4 > 2 * 0 + 4 is false: still affinity
        r.started(owner)
    assert r.pick(key) == owner
    r.started(owner)  # 5 > 2 * 0 + 4: overloaded, go to the least loaded
    moved = r.pick(key)
    assert moved != owner and r.pending(moved) == 0
    assert r.stats()["router/overload_fallbacks"] == 1.0


def test_dead_replicas_are_skipped_and_affinity_only_moves_their_keys():
    for policy in ("least_pending", "affinity"):
        r = ReplicaRouter(3, policy)
        r.mark_dead(1)
        assert all(r.pick(("k", str(i))) != 1 for i in range(300))
    r = ReplicaRouter(3, "affinity")
    keys = [("k", str(i)) for i in range(300)]
    before = {k: r.pick(k) for k in keys}
    r.mark_dead(1)
    after = {k: r.pick(k) for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != 1)
    r.mark_alive(1)
    assert {k: r.pick(k) for k in keys} == before


def test_all_dead_still_routes_and_bookkeeping_slips_are_counted_not_raised():
    for policy in ("least_pending", "affinity"):
        r = ReplicaRouter(2, policy)
        r.mark_dead(0)
        r.mark_dead(1)
        assert {r.pick(("k", str(i))) for i in range(50)} == {0, 1}  # the caller's backoff decides
    r = ReplicaRouter(2)
    r.finished(0)
    assert r.pending(0) == 0 and r.stats()["router/unmatched_finishes"] == 1.0
    with pytest.raises(IndexError):
        r.started(2)
    with pytest.raises(ValueError):
        ReplicaRouter(2, "random")
    with pytest.raises(ValueError):
        ReplicaRouter(0)
