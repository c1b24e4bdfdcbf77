"""Which teacher replica serves a query: pure bookkeeping, no Ray.

The teacher client holds one ``ReplicaRouter`` and, around every call to replica ``i``, calls
``started(i)`` before sending and ``finished(i)`` when the answer (or the error) comes back, so the router
always knows how many requests each replica has in flight.

Policies
--------
``least_pending``
    The replica with the fewest requests in flight (as veRL/OpenRLHF route over several vLLM engines).
    Ties are broken round-robin from a cursor that moves past each pick, so an idle pool is filled
    evenly instead of always starting at replica 0.

``affinity``
    Equal prompt keys go to the same replica, so that replica's answer cache and vLLM's prefix cache
    keep hitting. The replica is chosen by rendezvous (highest-random-weight) hashing: every live
    replica gets a score ``blake2b(key, replica)`` and the highest wins. When a replica dies only the
    keys it owned move; the rest keep their replica (a plain ``hash % n`` would reshuffle almost all).

    Overload rule: affinity gives up cache hits to avoid a hot spot. If the preferred replica has
    ``pending > overload_factor * min_pending + overload_slack`` (defaults: more than ``2 x min + 4``),
    the query goes to the least-pending replica instead. The slack keeps small absolute differences
    (1 vs 3 in flight) from breaking affinity when the pool is nearly idle; the factor makes the rule
    scale with load.

The hash is blake2b over a length-prefixed encoding of the key, never Python's ``hash()``: that one is
salted per process, and env runners in different processes must agree on a key's replica.

Failure handling never raises at runtime: the router is a hint, and a bookkeeping slip must not take down an
env runner. When every replica is marked dead, ``pick`` routes among all of them (the caller's retry backoff
decides whether to actually send); a ``finished`` without a ``started`` is ignored and counted in
``stats()["router/unmatched_finishes"]`` so tests can assert it stays 0.

Not thread-safe, by design: each env runner's teacher client calls it from one thread (or one asyncio event
loop), where no two calls interleave, so a lock would only cost time. Each runner routes with its own
counts; the replicas' own batching absorbs what the runners do not see of each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

POLICIES = ("least_pending", "affinity")


def _key_bytes(prompt_key: tuple | str) -> bytes:
    # Length-prefix every part so ("ab", "c") and ("a", "bc") cannot encode to the same bytes.
    parts: Iterable[object] = (prompt_key,) if isinstance(prompt_key, str) else prompt_key
    out = bytearray()
    for part in parts:
        b = str(part).encode("utf-8")
        out += len(b).to_bytes(4, "big") + b
    return bytes(out)


def stable_hash(prompt_key: tuple | str) -> int:
    """A 64-bit hash of ``prompt_key`` that is the same in every process and every run."""
    return int.from_bytes(hashlib.blake2b(_key_bytes(prompt_key), digest_size=8).digest(), "big")


class ReplicaRouter:
    """Pick a replica per query and track requests in flight per replica."""

    def __init__(
        self,
        num_replicas: int,
        policy: str = "least_pending",
        *,
        overload_factor: float = 2.0,
        overload_slack: int = 4,
    ) -> None:
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if policy not in POLICIES:
            raise ValueError(f"routing policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if overload_factor < 1.0 or overload_slack < 0:
            raise ValueError("overload_factor must be >= 1 and overload_slack >= 0")
        self.num_replicas = num_replicas
        self.policy = policy
        self.overload_factor = overload_factor
        self.overload_slack = overload_slack
        self._pending = [0] * num_replicas
        self._alive = [True] * num_replicas
        self._cursor = 0  # where the round-robin tie-break starts next time
        self._picks = [0] * num_replicas
        self._overload_fallbacks = 0
        self._unmatched_finishes = 0

    # -- routing ---------------------------------------------------------------------------------------

    def pick(self, prompt_key: tuple | str = "") -> int:
        """The replica that should serve ``prompt_key``. Does not count it as started; call ``started``."""
        live = self._candidates()
        choice = self._affinity(prompt_key, live) if self.policy == "affinity" else self._least_pending(live)
        self._picks[choice] += 1
        return choice

    def _least_pending(self, live: list[int]) -> int:
        low = min(self._pending[i] for i in live)
        n = self.num_replicas
        # Scan from the cursor so that, among equally loaded replicas, each gets its turn.
        for step in range(n):
            i = (self._cursor + step) % n
            if i in live and self._pending[i] == low:
                self._cursor = (i + 1) % n
                return i
        raise AssertionError("unreachable: a live replica with the minimum load exists")

    def _affinity(self, prompt_key: tuple | str, live: list[int]) -> int:
        preferred = self._owner(prompt_key, live)
        low = min(self._pending[i] for i in live)
        if self._pending[preferred] > self.overload_factor * low + self.overload_slack:
            self._overload_fallbacks += 1
            return self._least_pending(live)
        return preferred

    @staticmethod
    def _owner(prompt_key: tuple | str, live: list[int]) -> int:
        kb = _key_bytes(prompt_key)

        def score(i: int) -> int:
            # The replica index is the blake2b salt, so each replica draws an independent score per key.
            return int.from_bytes(hashlib.blake2b(kb, digest_size=8, salt=i.to_bytes(8, "big")).digest(), "big")

        return max(live, key=score)

    def preferred(self, prompt_key: tuple | str) -> int:
        """The affinity owner of ``prompt_key``, ignoring load (for tests and logs)."""
        return self._owner(prompt_key, self._candidates())

    def _candidates(self) -> list[int]:
        # All marked dead: a dead mark is only a hint from a recent failure, so try them all rather than fail.
        return self.alive() or list(range(self.num_replicas))

    # -- in-flight bookkeeping -------------------------------------------------------------------------

    def started(self, i: int) -> None:
        self._check(i)
        self._pending[i] += 1

    def finished(self, i: int) -> None:
        self._check(i)
        if self._pending[i] == 0:
            # A caller's bookkeeping slip: keep the count at 0 (negative would attract all traffic) and count it.
            self._unmatched_finishes += 1
            return
        self._pending[i] -= 1

    def pending(self, i: int) -> int:
        self._check(i)
        return self._pending[i]

    # -- liveness --------------------------------------------------------------------------------------

    def mark_dead(self, i: int) -> None:
        """Skip replica ``i`` until ``mark_alive(i)``. Its in-flight count is kept: those calls still finish
        (with an error) and the caller still calls ``finished`` for them."""
        self._check(i)
        self._alive[i] = False

    def mark_alive(self, i: int) -> None:
        self._check(i)
        self._alive[i] = True

    def is_alive(self, i: int) -> bool:
        self._check(i)
        return self._alive[i]

    def alive(self) -> list[int]:
        return [i for i in range(self.num_replicas) if self._alive[i]]

    def stats(self) -> dict[str, float]:
        """Counters for the metrics log: picks and in-flight per replica, affinity fallbacks."""
        out: dict[str, float] = {
            "router/overload_fallbacks": float(self._overload_fallbacks),
            "router/unmatched_finishes": float(self._unmatched_finishes),
        }
        for i in range(self.num_replicas):
            out[f"router/picks_{i}"] = float(self._picks[i])
            out[f"router/pending_{i}"] = float(self._pending[i])
            out[f"router/alive_{i}"] = 1.0 if self._alive[i] else 0.0
        return out

    def _check(self, i: int) -> None:
        if not 0 <= i < self.num_replicas:
            raise IndexError(f"replica index {i} out of range 0..{self.num_replicas - 1}")
