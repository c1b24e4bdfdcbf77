"""The benchmarks' run helpers around a run that a signal stopped. ``train`` is replaced by a fake that writes what
a real run writes: stopping a real run is covered by tests/training/test_stop_signals.py, and these cases are
about what a benchmark does next, which needs no Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llmrl.training.loop as loop
from llmrl.bench.runs import train_or_reuse, train_run
from llmrl.config import load_config
from llmrl.training.checkpoint import LOOP_STATE

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml")
BUDGET = ["run.max_env_steps=4096"]  # what FakeTrain reaches


class FakeTrain:
    """Writes a run folder (metrics, one checkpoint, summary.json) and remembers each call's resume point."""

    def __init__(self, stopped_by: str | None = None):
        self.stopped_by = stopped_by
        self.resumed_from: list[str] = []

    def __call__(self, cfg, stream=None):
        run_dir = Path(cfg.run.out_dir) / cfg.run.name
        checkpoint = run_dir / "checkpoints" / "iter_000002"
        checkpoint.mkdir(parents=True, exist_ok=True)
        (checkpoint / LOOP_STATE).write_text(json.dumps({"env_steps": 4096}))
        with (run_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"iteration": 1, "eval_success": 0.5}) + "\n")
        self.resumed_from.append(cfg.run.resume)
        summary = {"run_dir": str(run_dir), "env_steps": 4096, "checkpoint": str(checkpoint),
                   "stopped_by": self.stopped_by}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return summary


def test_a_stopped_run_stops_the_benchmark_with_the_signals_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop, "train", FakeTrain(stopped_by="SIGTERM"))
    with pytest.raises(SystemExit) as stop:
        train_run(CONFIG, [], tmp_path, "arm-s0")
    assert stop.value.code == 128 + 15
    assert "run arm-s0 stopped by SIGTERM at 4096 env steps" in capsys.readouterr().err


def test_reuse_reads_a_finished_run_back_and_resumes_a_stopped_one(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "train", FakeTrain(stopped_by="SIGTERM"))
    with pytest.raises(SystemExit):
        train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=True)
    finishing = FakeTrain()
    monkeypatch.setattr(loop, "train", finishing)
    summary, rows = train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=True)  # the next leg
    assert finishing.resumed_from == [str(tmp_path / "arm-s0" / "checkpoints" / "iter_000002")]
    assert summary["stopped_by"] is None and len(rows) == 1  # the repeated iteration counted once
    train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=True)  # finished now: read back, not trained
    assert len(finishing.resumed_from) == 1


def test_a_crashed_run_without_a_checkpoint_is_kept_aside_and_trained_again(tmp_path, monkeypatch):
    (tmp_path / "arm-s0").mkdir()
    (tmp_path / "arm-s0" / "metrics.jsonl").write_text("")  # no summary: it never ended
    fresh = FakeTrain()
    monkeypatch.setattr(loop, "train", fresh)
    train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=True)
    assert fresh.resumed_from == [""] and len(list(tmp_path.glob("arm-s0.earlier-*"))) == 1


def test_a_crashed_run_with_a_checkpoint_continues_from_it(tmp_path, monkeypatch):
    FakeTrain()(load_config(CONFIG, [f"run.out_dir={tmp_path}", "run.name=arm-s0"]))
    (tmp_path / "arm-s0" / "summary.json").unlink()  # killed before it could write one
    resumed = FakeTrain()
    monkeypatch.setattr(loop, "train", resumed)
    train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=True)
    assert resumed.resumed_from == [str(tmp_path / "arm-s0" / "checkpoints" / "iter_000002")]


def test_a_run_finished_with_a_smaller_budget_continues_to_the_new_one(tmp_path, monkeypatch):
    FakeTrain()(load_config(CONFIG, [f"run.out_dir={tmp_path}", "run.name=arm-s0"]))  # ended at 4096 steps
    longer = FakeTrain()
    monkeypatch.setattr(loop, "train", longer)
    train_or_reuse(CONFIG, ["run.max_env_steps=8192"], tmp_path, "arm-s0", reuse=True)
    assert longer.resumed_from == [str(tmp_path / "arm-s0" / "checkpoints" / "iter_000002")]


def test_without_reuse_an_earlier_run_is_kept_aside_not_trained_into(tmp_path, monkeypatch):
    FakeTrain()(load_config(CONFIG, [f"run.out_dir={tmp_path}", "run.name=arm-s0"]))
    fresh = FakeTrain()
    monkeypatch.setattr(loop, "train", fresh)
    train_or_reuse(CONFIG, BUDGET, tmp_path, "arm-s0", reuse=False)
    assert fresh.resumed_from == [""]
    kept = list(tmp_path.glob("arm-s0.earlier-*"))
    assert len(kept) == 1 and (kept[0] / "summary.json").is_file()
