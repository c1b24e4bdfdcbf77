"""Shared test fixtures. Ray tests start a small local Ray (2 CPUs, no dashboard) and always shut it down; LM tests
use a tiny local LM built once per session."""

from __future__ import annotations

import os

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


@pytest.fixture
def ray_local():
    """A fresh local Ray for one test; shut down even when the test fails."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, namespace="llmrl",
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
