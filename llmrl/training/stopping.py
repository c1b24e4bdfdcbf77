"""Ending a run on SIGINT (Ctrl-C) or SIGTERM without losing it.

Python's default SIGINT raises ``KeyboardInterrupt`` wherever the driver happens to be, usually deep inside a
Ray call, and the default SIGTERM kills the process outright: either way the run ended without a final
checkpoint or ``summary.json``, and every step since the last periodic checkpoint was lost. ``GracefulStop``
replaces both handlers for the duration of a run:

* the first signal prints one line and sets ``requested``; the loop finishes the iteration in progress, writes
  its final checkpoint and ``summary.json``, and returns as if the budget were spent (``summary["stopped_by"]``
  names the signal);
* a second signal quits at once (exit status 128 + signal number, the shell's convention), for a user who
  does not want to wait for the iteration to end.

``own_process_group`` keeps the local Ray out of the driver's process group, so that a signal to the group
(GNU ``timeout``) stops the driver gracefully rather than killing the Ray it needs for that last checkpoint.

Handlers can only be installed from the main thread; elsewhere (a test calling ``train`` from a thread) the
process's handlers are left alone and ``requested`` stays False.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Context manager: while active, SIGINT/SIGTERM ask the training loop to stop after this iteration."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def __enter__(self) -> GracefulStop:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            self._say(f"llmrl: second {name}: quitting now, without a final checkpoint")
            os._exit(128 + signum)
        self.signal_name = name
        self._say(f"llmrl: {name} received: stopping after this iteration with a final checkpoint "
                  f"(send it again to quit at once)")

    @staticmethod
    def _say(line: str) -> None:
        # os.write, not print: the signal may land while the main thread is inside a print to the same stream,
        # and a re-entrant buffered write raises.
        try:
            os.write(sys.stderr.fileno(), (line + "\n").encode())
        except (OSError, ValueError):  # a closed stderr must not turn a stop into a crash
            pass


def stopped_exit_code(signal_name: str | None) -> int:
    """The exit status of a run that ``summary["stopped_by"]`` names: 0 for a finished run, else the shell's
    128 + signal number, so that a script can tell an interrupted run from a finished one."""
    return 0 if signal_name is None else 128 + int(signal.Signals[signal_name])


@contextlib.contextmanager
def own_process_group() -> Iterator[None]:
    """Run the body in a new process group, then move this process back to the one it came from.

    Children started inside (``ray.init``'s GCS and raylet, and the workers the raylet later starts) stay in the
    new group. Why: GNU ``timeout``, ``kill -TERM -- -PGID`` and some schedulers signal the driver's whole
    process group; the GCS and raylet exit on SIGTERM, and within seconds the driver loses its actors and Ray
    terminates it, before ``GracefulStop`` can write the final checkpoint. Moving back keeps the driver in the
    terminal's foreground group, so Ctrl-C still reaches it (Ray's own processes block SIGINT anyway), and Ray's
    kernel fate-sharing still ends them if the driver dies.

    A new group takes the pid of the process that makes it, so a driver that already leads its group (a job
    started from an interactive shell, ``setsid``) has no other group to make, and a platform without
    ``setpgid`` has none at all: there the body runs unchanged, and a stop signal should go to the driver's pid.
    """
    if not hasattr(os, "setpgid") or os.getpgrp() == os.getpid():
        yield
        return
    home = os.getpgrp()
    try:
        os.setpgid(0, 0)
    except OSError:  # not allowed here (a sandbox's seccomp filter, say): leave the group as it is
        yield
        return
    try:
        yield
    finally:
        try:
            os.setpgid(0, home)
        except OSError as exc:  # the old group is gone: stay where we are, and say why Ctrl-C may not reach us
            GracefulStop._say(f"llmrl: could not return to process group {home} ({exc}); "
                              f"Ctrl-C may not reach this run, use SIGTERM")
