"""Shared test fixtures. Ray tests share one small local Ray (2 CPUs, no dashboard), restarted when a test leaves
something running and shut down at the end; LM tests use a tiny local LM built once per session."""

from __future__ import annotations

import os
import sys
import time
import warnings

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (run on a GPU machine: pytest -m gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """A tiny random Llama + word-level tokenizer built once per test session (a few seconds on CPU)."""
    import torch

    from llmrl.teacher.tiny_lm import build_tiny_lm

    # Two shared cores: more threads only add contention for a model this small.
    torch.set_num_threads(1)
    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"), seed=0))


# The one local Ray the suite's Ray tests share, with the resources a test run declares (resources.num_cpus=2).
# Starting and stopping Ray costs about 8 s, and some forty tests need one: sharing it saves minutes of CI.
# log_to_driver as in llmrl's own init_ray: a test may read an actor's warning from the driver's output.
SHARED_RAY = dict(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 * 1024, namespace="llmrl",
                  log_to_driver=True)
# ray.kill and Algorithm.stop release names and CPUs asynchronously: how long a test's leftovers may take to go.
LEFTOVER_WAIT_S = 15.0


def _leftovers(ray) -> str:
    """What the last test left running in the shared Ray (named actors, CPUs held), after a short wait."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    while True:
        names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True))
        held = ray.cluster_resources().get("CPU", 0.0) - ray.available_resources().get("CPU", 0.0)
        if not names and held <= 0:
            return ""
        if time.monotonic() > deadline:
            return f"named actors {names}, {held:g} CPUs held"
        time.sleep(0.2)


def _shared_ray():
    import ray

    if not ray.is_initialized():
        ray.init(**SHARED_RAY)
    yield ray
    if ray.is_initialized():
        left = _leftovers(ray)
        if left:
            warnings.warn(f"restarting the shared Ray: the test left {left}", stacklevel=1)
            ray.shutdown()


@pytest.fixture
def ray_local():
    """The suite's shared local Ray (started on first use). ``train()`` finds it running and uses it, as it would
    a user's. After the test, anything it left running (named actors, held CPUs) gets a Ray restart, so the next
    test never inherits another's actors."""
    yield from _shared_ray()


@pytest.fixture(scope="module")
def ray_module():
    """The same shared Ray, for a module-scoped fixture (one training run that several tests read)."""
    yield from _shared_ray()


def pytest_sessionfinish(session, exitstatus):
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
