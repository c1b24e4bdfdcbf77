"""vLLM API contract tests: run by ``.ci/vllm_contract`` in a venv with the real vllm wheel (no CUDA, no engine).

Where vllm is not installed (the main venv) they are skipped, so the main suite never counts them as passed;
with ``LLMRL_VLLM_CONTRACT=1`` (the contract step) a vllm that cannot be imported fails them instead.
"""

from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("LLMRL_VLLM_CONTRACT") == "1"


@pytest.fixture(scope="session")
def vllm_api():
    """``(VLLMTypes, AsyncEngineArgs, AsyncLLM)`` from the installed vllm, as the backend imports them."""
    from llmrl.teacher.backends.vllm_backend import import_vllm

    try:
        return import_vllm()
    except ImportError as exc:
        if REQUIRED:
            pytest.fail(f"LLMRL_VLLM_CONTRACT=1 but the backend's vllm imports fail: {exc}")
        pytest.skip("needs the real vllm wheel, installed only in the contract venv: run bash .ci/vllm_contract")
