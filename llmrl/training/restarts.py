"""Counting Ray restarts of the run's stateful singleton actors (the feedback actor, the adapter trainer).

Ray restarts a crashed actor by running its constructor again, which draws a new random ``instance_id()``;
the loop asks each watched actor for it once per iteration and counts every change, so a restart is counted
whether or not anyone noticed the outage. (Teacher replicas report their id in ``TeacherStats`` and are counted
by ``loop.TeacherMonitor`` together with their other counters.)

An actor is watched by naming it in ``Graph.restartable_actors()``; its count appears as ``<name>_restarts`` in
every metrics row and in ``summary.json``. Two restarts between two polls count as one.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 10.0


def restart_key(name: str) -> str:
    return f"{name}_restarts"


class RestartCounter:
    """Counts instance-id changes of named actor handles into ``counts`` (a dict kept in the loop state)."""

    def __init__(self, actors: dict[str, Any], counts: dict[str, int]) -> None:
        self.actors = {name: handle for name, handle in actors.items() if handle is not None}
        self.counts = counts
        for name in self.actors:
            self.counts.setdefault(name, 0)
        self._last: dict[str, str] = {}
        self.unreachable_polls = 0

    def poll(self) -> dict[str, int]:
        """Ask every watched actor for its instance id; returns the ``<name>_restarts`` fields."""
        import ray

        for name, handle in self.actors.items():
            try:
                current = ray.get(handle.instance_id.remote(), timeout=POLL_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a restarting actor answers later; it is counted then
                self.unreachable_polls += 1
                logger.debug("%s actor unreachable for the restart poll: %s", name, exc)
                continue
            last = self._last.get(name)
            if last is not None and current != last:
                self.counts[name] += 1
                logger.warning("%s actor was restarted by Ray (%d restart(s) in this run)", name, self.counts[name])
            self._last[name] = current
        return self.fields()

    def fields(self) -> dict[str, int]:
        return {restart_key(name): count for name, count in sorted(self.counts.items())}
