import math

import pytest

from llmrl.envs.crafter.score import ACHIEVEMENTS, achievement_success_rates, crafter_score


def test_achievements_match_crafter():
    import crafter.constants

    assert ACHIEVEMENTS == tuple(crafter.constants.achievements)
    assert len(ACHIEVEMENTS) == 22


def test_score_extremes():
    assert crafter_score({}) == 0.0
    assert crafter_score(dict.fromkeys(ACHIEVEMENTS, 0.0)) == 0.0
    assert crafter_score(dict.fromkeys(ACHIEVEMENTS, 100.0)) == pytest.approx(100.0)


def test_score_hand_computed():
    assert crafter_score({"collect_wood": 100.0}) == pytest.approx(math.exp(math.log(101) / 22) - 1)
    # 11 achievements at 50 %, the rest missing: exp((11 ln 51 + 11 ln 1) / 22) - 1 = sqrt(51) - 1.
    half = {name: 50.0 for name in ACHIEVEMENTS[:11]}
    assert crafter_score(half) == pytest.approx(math.sqrt(51) - 1)


def test_score_rejects_bad_input():
    with pytest.raises(ValueError):
        crafter_score({"collect_wod": 10.0})
    with pytest.raises(ValueError):
        crafter_score({"collect_wood": 150.0})


def test_success_rates():
    rates = achievement_success_rates([{"collect_wood", "place_table"}, ["collect_wood", "collect_wood"], set(), ()])
    assert set(rates) == set(ACHIEVEMENTS)
    assert rates["collect_wood"] == 50.0
    assert rates["place_table"] == 25.0
    assert rates["collect_diamond"] == 0.0
    assert achievement_success_rates([]) == dict.fromkeys(ACHIEVEMENTS, 0.0)
    with pytest.raises(ValueError):
        achievement_success_rates([{"fly"}])
