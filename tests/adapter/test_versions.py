"""Adapter versions on disk: manifest, atomic writes, the pointer, refusing another base, checkpoint copies."""

from __future__ import annotations

import json
import math

import pytest

from llmrl.adapter.versions import (
    ADAPTERS_DIR,
    AdapterError,
    check_base,
    config_hash,
    copy_into_checkpoint,
    latest_adapter,
    next_version,
    read_version,
    restore_from_checkpoint,
    write_version,
)


def fake_peft_save(folder):
    # What peft's save_pretrained writes, minus real weights (the hot-load tests use real ones).
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights")


def write(run_dir, loss=1.0, base_hash="abc"):
    return write_version(run_dir, fake_peft_save, base_model="tiny", base_hash=base_hash, heldout_loss=loss,
                         pairs_used=5)


def test_versions_count_up_and_the_manifest_round_trips(tmp_path):
    assert latest_adapter(tmp_path) is None and next_version(tmp_path) == 1
    v1 = write(tmp_path, 2.0)
    v2 = write(tmp_path, 1.5)
    assert (v1.version, v2.version) == (1, 2)
    assert v2.path == str((tmp_path / ADAPTERS_DIR / "v2").resolve())
    assert read_version(v2.path) == v2 and latest_adapter(tmp_path) == v2
    assert v2.name == "llmrl-v2" and v2.pairs_used == 5 and math.isclose(v2.heldout_loss, 1.5)


def test_a_failed_save_leaves_nothing_behind(tmp_path):
    v1 = write(tmp_path)

    def broken(folder):
        (folder / "adapter_config.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_version(tmp_path, broken, base_model="tiny", base_hash="abc", heldout_loss=0.5, pairs_used=1)
    assert sorted(p.name for p in (tmp_path / ADAPTERS_DIR).iterdir()) == ["latest.json", "v1"]
    assert latest_adapter(tmp_path) == v1


def test_a_damaged_pointer_or_version_falls_back_to_the_newest_complete_one(tmp_path):
    write(tmp_path)
    v2 = write(tmp_path)
    (tmp_path / ADAPTERS_DIR / "latest.json").write_text("not json")
    assert latest_adapter(tmp_path) == v2
    (tmp_path / ADAPTERS_DIR / "v2" / "llmrl_adapter.json").unlink()
    assert latest_adapter(tmp_path).version == 1
    with pytest.raises(AdapterError, match="no valid llmrl_adapter.json"):
        read_version(tmp_path / ADAPTERS_DIR / "v2")


def test_another_base_model_is_refused_with_one_line(tmp_path):
    v1 = write(tmp_path, base_hash=config_hash({"hidden_size": 64}))
    check_base(v1, config_hash({"hidden_size": 64, "_name_or_path": "/elsewhere"}), "tiny")  # same model
    with pytest.raises(AdapterError) as err:
        check_base(v1, config_hash({"hidden_size": 128}), "other")
    assert "refused" in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_holds_the_version_in_service_and_resume_restores_it(tmp_path):
    run = tmp_path / "run"
    v1 = write(run, 2.0)
    ckpt = tmp_path / "ckpt"
    copy_into_checkpoint(v1, ckpt)
    assert latest_adapter(ckpt).version == 1
    write(run, 1.0)  # trained after the checkpoint
    restored = restore_from_checkpoint(ckpt, run)
    assert restored.version == 1 and latest_adapter(run).version == 1
    assert next_version(run) == 3  # v2 is kept, never overwritten
    # A run folder that lost the version gets the checkpoint's copy back.
    fresh = tmp_path / "fresh"
    assert restore_from_checkpoint(ckpt, fresh).version == 1
    assert (fresh / ADAPTERS_DIR / "v1" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert restore_from_checkpoint(tmp_path / "no-adapter", fresh) is None
