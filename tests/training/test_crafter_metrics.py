"""The Crafter part of the metrics row and summary, from hand-written RLlib result dicts (no Ray)."""

import math
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.envs.crafter.family import crafter_metrics
from llmrl.envs.crafter.score import ACHIEVEMENTS, crafter_score
from llmrl.training.loop import LoopState, build_summary, metrics_row


def result(episodes: int, counts: dict[str, float], evaluated: dict[str, float] | None = None) -> dict:
    runners = {"llmrl/ach_episodes": float(episodes), "llmrl/env_return": 1.5,
               **{f"llmrl/ach_count/{k}": v for k, v in counts.items()}}
    out = {"env_runners": runners}
    if evaluated is not None:
        out["evaluation"] = {"env_runners": {f"llmrl/ach/{k}": v for k, v in evaluated.items()}}
    return out


def test_training_rates_cover_every_episode_so_far():
    state = LoopState()
    first = crafter_metrics(result(0, {}), state)
    assert math.isnan(first["train_crafter_score"]) and math.isnan(first["crafter_score"])
    crafter_metrics(result(2, {"collect_wood": 2.0, "place_table": 1.0}), state)
    row = crafter_metrics(result(2, {"collect_wood": 1.0}), state)
    assert row["train_episodes"] == 4 and row["env_return_mean"] == 1.5
    assert row["train_ach/collect_wood"] == pytest.approx(0.75)
    assert row["train_ach/place_table"] == pytest.approx(0.25)
    assert {k for k in row if k.startswith("train_ach/")} == {f"train_ach/{a}" for a in ACHIEVEMENTS}
    assert row["train_crafter_score"] == pytest.approx(crafter_score({"collect_wood": 75.0, "place_table": 25.0}))


def test_eval_score_matches_the_summary():
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "crafter" / "default.yaml")
    state = LoopState()
    res = result(1, {"collect_wood": 1.0}, evaluated={"collect_wood": 0.5, "collect_sapling": 1.0})
    row = metrics_row(res, state, {}, 100, 1.0, 0)
    row.update(crafter_metrics(res, state))
    assert row["crafter_score"] == pytest.approx(crafter_score({"collect_wood": 50.0, "collect_sapling": 100.0}))
    summary = build_summary(cfg, state, row, None, Path("."))
    assert summary["crafter_score"] == pytest.approx(row["crafter_score"])
    assert summary["achievements"]["collect_wood"] == pytest.approx(50.0) and len(summary["achievements"]) == 22
    assert summary["train_crafter_score"] == pytest.approx(row["train_crafter_score"])


def test_a_run_that_never_evaluated_has_no_eval_score():
    # Not a score of 0: the 1M-step bench once reported 0 % for an evaluation that never ran.
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "crafter" / "default.yaml")
    state = LoopState()
    res = result(1, {"collect_wood": 1.0})
    row = metrics_row(res, state, {}, 100, 1.0, 0)
    row.update(crafter_metrics(res, state))
    summary = build_summary(cfg, state, row, None, Path("."))
    assert summary["crafter_score"] is None and summary["achievements"] is None
    assert summary["train_crafter_score"] == pytest.approx(crafter_score({"collect_wood": 100.0}))
