"""``llmrl bench throughput``: the ladder's arithmetic (pure), and one real run of every rung on a tiny budget
(real Ray actors, RLlib, envs and the scripted teacher service; no timed asserts: rates are only checked to be
measured, positive and consistent with the units counted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrl.bench.throughput import RUNGS, ladder, main, over

ROOT = Path(__file__).resolve().parents[2]


def test_each_rung_is_compared_with_the_one_above_and_end_to_end_with_the_ceiling():
    rates = {"raw_env": 10_000.0, "task_adapter": 5_000.0, "guided_wrapper": 4_000.0, "rllib_sampling": 2_000.0,
             "learner": 1_000.0, "evaluation": 2_000.0, "end_to_end": 400.0}
    out = ladder(rates, cores=2)
    assert [r["rung"] for r in out["rows"]] == list(RUNGS)
    ratios = [r["ratio_to_above"] for r in out["rows"]]
    assert ratios == [None, 0.5, 0.8, 0.5, 0.5, 2.0, 0.2]
    assert out["ceiling"] == 20_000.0
    assert out["end_to_end_to_ceiling"] == pytest.approx(0.02)
    # Sampling, learning and evaluating one after another: 1/2000 + 1/1000 + 1/2000 s per env step.
    assert out["predicted_end_to_end"] == pytest.approx(500.0)
    assert out["end_to_end_to_predicted"] == pytest.approx(0.8)
    assert out["rows"][4]["unit"] == "samples/s"


def test_a_missing_rung_is_skipped_and_the_next_compares_with_the_last_present():
    out = ladder({"raw_env": 100.0, "rllib_sampling": 50.0, "end_to_end": 10.0}, cores=4)
    assert [(r["rung"], r["ratio_to_above"]) for r in out["rows"]] == [
        ("raw_env", None), ("rllib_sampling", 0.5), ("end_to_end", 0.2)]
    assert out["predicted_end_to_end"] is None and out["end_to_end_to_predicted"] is None
    assert out["end_to_end_to_ceiling"] == pytest.approx(10.0 / 400.0)
    assert ladder({"end_to_end": 10.0}, cores=2)["ceiling"] is None


def test_variants_compare_only_the_rungs_both_measured():
    base = {"learner": {"rate": 100.0}, "end_to_end": {"rate": 50.0}, "evaluation": {"rate": 0.0}}
    variant = {"learner": {"rate": 150.0}, "end_to_end": {"rate": 40.0}, "evaluation": {"rate": 10.0},
               "rllib_sampling": {"rate": 1.0}}
    assert over(variant, base) == {"learner": 1.5, "end_to_end": 0.8}


@pytest.mark.integration
def test_a_tiny_ladder_measures_every_rung_and_writes_json_and_chart(tmp_path, ray_local):
    args = [str(ROOT / "configs/minigrid/simple_doorkey.yaml"), "ppo.train_batch_size=256",
            "ppo.minibatch_size=128", "ppo.num_epochs=1", "run.eval_episodes=2",
            "resources.num_envs_per_env_runner=2", "--env-seconds", "0.2", "--sample-steps", "64",
            "--learner-updates", "1", "--eval-rounds", "1", "--train-iters", "1", "--compare-off",
            "--out", str(tmp_path)]
    assert main(args) == 0
    report = json.loads((tmp_path / "throughput-SimpleDoorKey-scripted.json").read_text())
    assert (tmp_path / "throughput-SimpleDoorKey-scripted.png").stat().st_size > 0
    assert set(report["rungs"]) == set(RUNGS)
    for name, rung in report["rungs"].items():
        assert rung["units"] > 0 and rung["seconds"] > 0, name
        assert rung["rate"] == pytest.approx(rung["units"] / rung["seconds"])
    assert report["rungs"]["learner"]["units"] >= 256  # one update on a full train batch
    assert report["rungs"]["evaluation"]["eval_env_steps"] > 0
    # Evaluation is counted in training env steps per second of evaluation: one round per eval_every iterations.
    assert report["rungs"]["evaluation"]["units"] == 256 * 1 * 1
    assert report["ladder"]["ceiling"] == report["ladder"]["cores"] * report["rungs"]["raw_env"]["rate"]
    # --compare-off is one variant: the training rungs again with the teacher off, in the same run.
    (off,) = report["variants"]
    assert off["overrides"] == "teacher.backend=off"
    assert set(report["guided_over_off"]) == {"rllib_sampling", "learner", "evaluation", "end_to_end"}
    for name, ratio in report["guided_over_off"].items():
        assert ratio == pytest.approx(report["rungs"][name]["rate"] / off["rungs"][name]["rate"])


def test_variants_measure_only_the_training_rungs_the_base_measured(tmp_path, monkeypatch):
    """Without Ray: ``measure`` is replaced by a recorder, since only which rungs each measurement asks for is under
    test. An end_to_end measured after the other rungs starts from a policy their updates moved, so a variant must
    not measure more than its base did."""
    import llmrl.bench.throughput as bench
    import llmrl.training.graph as graph

    asked: list[tuple[str, ...]] = []

    def fake_measure(cfg, budget, rungs=bench.RUNGS):
        asked.append(tuple(rungs))
        return {name: {"units": 10, "seconds": 1.0, "rate": 10.0} for name in rungs}

    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(graph, "init_ray", lambda cfg: False)
    monkeypatch.setattr(bench, "write_chart", lambda report, path: None)
    config = str(ROOT / "configs/minigrid/simple_doorkey.yaml")
    assert main([config, "--rungs", "raw_env", "end_to_end", "--variant", "resources.learner_torch_threads=2",
                 "--compare-off", "--out", str(tmp_path)]) == 0
    assert asked == [("raw_env", "end_to_end"), ("end_to_end",), ("end_to_end",)]
    asked.clear()
    # No training rung asked for: nothing to compare a variant on, said before anything is measured.
    with pytest.raises(SystemExit) as exit_info:
        main([config, "--rungs", "raw_env", "--variant", "resources.learner_torch_threads=2", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and asked == []
