"""``llmrl bench finetune`` end to end on the tiny LM: both scorings time a real fine-tune on both banks, agree on
the loss, and the report says so (no timed asserts: the numbers are only checked to exist and be positive)."""

from __future__ import annotations

import json

import pytest

from llmrl.bench import finetune


def test_the_bench_times_both_scorings_on_both_banks(tmp_path, tiny_lm_dir, capsys):
    out = tmp_path / "out"
    assert finetune.main(["--pairs", "3", "--repeats", "1", "--out", str(out),
                          f"teacher.hf.model={tiny_lm_dir}", "adapter.epochs=1"]) == 0
    report = json.loads((out / "finetune.json").read_text())
    assert set(report["banks"]) == {"initial", "mid"} and report["adapter"]["loss"] == "choice"
    initial, mid = report["banks"]["initial"], report["banks"]["mid"]
    assert mid["mean_prompt_tokens"] > initial["mean_prompt_tokens"]  # the exemplars and feedback lines
    for row in (initial, mid):
        assert row["pairs"] == 3 and row["mean_plans_per_pair"] >= 2
        assert row["loss_packed"] == pytest.approx(row["loss_full"], rel=1e-3)
        assert all(row[k] > 0 for k in ("train_s_packed", "train_s_full", "judge_s_packed", "judge_s_full"))
    assert "speed-up" in capsys.readouterr().out and (out / "finetune.md").exists()


def test_bad_arguments_name_the_flag():
    with pytest.raises(SystemExit):
        finetune.parse_args(["--banks", "late"])
