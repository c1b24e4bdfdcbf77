import numpy as np
import pytest

from llmrl.feedback.comprehension import (
    EMBED_DIM,
    NEUTRAL_SCORE,
    bag_of_words_embed,
    comprehension_score,
    tokenize,
)


def test_tokenize_splits_actions_and_subgoals_into_the_same_words():
    assert tokenize("place_table") == tokenize("place table") == ["place", "table"]
    assert tokenize("make_wood_pickaxe, do") == ["make", "wood", "pickaxe", "do"]


def test_identical_words_score_high():
    actions = ["place_table", "make_wood_pickaxe", "place_table"]
    subgoals = ["place table", "make wood pickaxe"]
    assert comprehension_score(actions, subgoals) > 0.9


def test_unrelated_words_score_low():
    actions = ["move_left", "move_right", "noop", "move_up"]
    subgoals = ["make iron pickaxe", "place furnace"]
    assert comprehension_score(actions, subgoals) < 0.3


def test_interact_action_counts_towards_collect_subgoals():
    pressing_do = comprehension_score(["do", "do", "do"], ["collect wood"])
    wandering = comprehension_score(["move_left", "move_down", "noop"], ["collect wood"])
    assert pressing_do > 0.5 > wandering


def test_empty_input_is_neutral():
    assert comprehension_score([], ["collect wood"]) == NEUTRAL_SCORE
    assert comprehension_score(["do"], []) == NEUTRAL_SCORE
    assert comprehension_score(["_"], ["collect wood"]) == NEUTRAL_SCORE  # no words at all


def test_default_embedding_is_deterministic_and_normalised():
    a = bag_of_words_embed(["collect wood", "some unknown words", ""])
    b = bag_of_words_embed(["collect wood", "some unknown words", ""])
    assert a.shape == (3, EMBED_DIM)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1.0)
    assert not a[2].any()


def test_custom_embedding_is_used():
    calls = []

    def embed(texts):
        calls.append(texts)
        return np.array([[1.0, 0.0], [1.0, 0.0]])

    assert comprehension_score(["move_left"], ["collect wood"], embed=embed) > 0.99
    assert calls == [["move left", "collect wood"]]
    with pytest.raises(ValueError):
        comprehension_score(["do"], ["collect wood"], embed=lambda texts: np.ones(3))
