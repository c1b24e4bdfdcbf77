"""``llmrl runs pack`` / ``runs unpack`` on a hand-made run folder: what goes into the archive, and that the
unpacked folder is one that a later leg resumes from (its newest complete checkpoint is the same)."""

from __future__ import annotations

import json
import tarfile

import pytest

from llmrl.cli import main
from llmrl.training.checkpoint import LOOP_STATE, newest_checkpoint
from llmrl.training.run_archive import pack_run, unpack_run


def make_run(root):
    run = root / "guided-s0"
    for name, complete in (("iter_000025", True), ("iter_000050", True), ("iter_000075", False),
                           ("iter_000100.tmp", True)):
        ckpt = run / "checkpoints" / name
        (ckpt / "algo").mkdir(parents=True)
        (ckpt / "algo" / "state.pkl").write_bytes(b"\0" * 64)
        if complete:
            (ckpt / LOOP_STATE).write_text(json.dumps({"env_steps": 1}))
    (run / "metrics.jsonl").write_text(json.dumps({"iteration": 50}) + "\n")
    (run / "feedback").mkdir()
    (run / "feedback" / "log.jsonl").write_text("{}\n")
    (run / "adapters" / "v1").mkdir(parents=True)
    (run / "adapters" / "v1" / "adapter_model.safetensors").write_bytes(b"lora")
    return run


def test_the_archive_keeps_everything_but_older_and_unfinished_checkpoints(tmp_path):
    run = make_run(tmp_path / "legs")
    report = pack_run(run, tmp_path / "carry" / "guided-s0.tar.gz")
    assert report["checkpoint"] == "iter_000050"
    assert report["left_out"] == ["iter_000025", "iter_000075", "iter_000100.tmp"]
    with tarfile.open(tmp_path / "carry" / "guided-s0.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"guided-s0/metrics.jsonl", "guided-s0/feedback/log.jsonl",
            "guided-s0/adapters/v1/adapter_model.safetensors", "guided-s0/checkpoints/iter_000050/llmrl_state.json"
            } <= names
    assert not any("iter_000025" in n or "iter_000075" in n or ".tmp" in n for n in names)
    assert report["files"] == len(names)

    unpacked = unpack_run(tmp_path / "carry" / "guided-s0.tar.gz", tmp_path / "next-machine")
    assert unpacked == tmp_path / "next-machine" / "guided-s0"
    assert newest_checkpoint(unpacked) == unpacked / "checkpoints" / "iter_000050"
    with pytest.raises(FileExistsError, match="exists already"):  # a newer leg there is never overwritten
        unpack_run(tmp_path / "carry" / "guided-s0.tar.gz", tmp_path / "next-machine")


def test_the_command_answers_bad_input_in_one_line(tmp_path, capsys):
    assert main(["runs", "pack", str(tmp_path / "no-run"), str(tmp_path / "a.tar.gz")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar file")
    assert main(["runs", "unpack", str(tmp_path / "junk.tar.gz"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("llmrl: ")
    run = make_run(tmp_path / "legs")
    assert main(["runs", "pack", str(run), str(tmp_path / "ok.tar.gz")]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == "iter_000050"


def test_an_archive_of_two_folders_is_not_a_run_archive(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    with tarfile.open(tmp_path / "two.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "a", arcname="a")
        tar.add(tmp_path / "b", arcname="b")
    assert main(["runs", "unpack", str(tmp_path / "two.tar.gz"), str(tmp_path / "out")]) == 2
    assert "2 top-level folders" in capsys.readouterr().err and not (tmp_path / "out").exists()
