from __future__ import annotations

import math

import pytest

from llmrl.teacher.plan_choice import (
    candidate_continuations,
    distribution_from_samples,
    distribution_from_scores,
    split_encode,
    to_advice,
)

MINIGRID_OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")


def test_candidate_continuations():
    assert candidate_continuations(("explore", "go to key")) == [" explore\n", " go to key\n"]


def test_scores_softmax_and_length_normalisation():
    sums, counts = [-2.0, -6.0], [1, 4]
    raw = distribution_from_scores(sums, counts, temperature=1.0, length_normalize=False)
    assert raw == pytest.approx((1 / (1 + math.exp(-4)), math.exp(-4) / (1 + math.exp(-4))))
    norm = distribution_from_scores(sums, counts, temperature=1.0, length_normalize=True)
    # mean log-probs -2.0 and -1.5: the longer option now wins.
    assert norm[1] > norm[0] and sum(norm) == pytest.approx(1.0)


def test_scores_temperature():
    sums, counts = [-1.0, -2.0, -3.0], [1, 1, 1]
    hot = distribution_from_scores(sums, counts, temperature=10.0, length_normalize=False)
    cold = distribution_from_scores(sums, counts, temperature=0.1, length_normalize=False)
    assert max(hot) < 0.4 and cold[0] > 0.99
    assert distribution_from_scores(sums, counts, temperature=0.0, length_normalize=False) == (1.0, 0.0, 0.0)
    assert distribution_from_scores([-1.0, -1.0], [1, 1], 0.0, False) == (0.5, 0.5)


def test_scores_non_finite_and_empty():
    p = distribution_from_scores([float("-inf"), -1.0, float("nan")], [2, 2, 2], 1.0, True)
    assert p == (0.0, 1.0, 0.0)
    assert distribution_from_scores([float("-inf")], [1], 1.0, True) == ()
    assert distribution_from_scores([-1.0], [0], 1.0, True) == ()
    assert distribution_from_scores([], [], 1.0, True) == ()
    with pytest.raises(ValueError):
        distribution_from_scores([-1.0], [1, 2], 1.0, True)


def test_samples_frequency_and_invalid_count():
    samples = ["explore", "Action: {go to <key>, pick up <key>}", "go to key, pick up key", "junk", "explore", ""]
    probs, invalid = distribution_from_samples(samples, MINIGRID_OPTIONS)
    assert invalid == 2
    assert probs == pytest.approx((0.5, 0.5, 0.0))


def test_samples_all_invalid():
    assert distribution_from_samples(["junk", "more junk"], MINIGRID_OPTIONS) == ((), 2)
    assert distribution_from_samples([], MINIGRID_OPTIONS) == ((), 0)


def test_to_advice():
    a = to_advice(("a", "b"), (0.25, 0.75), "hf:x", 3, invalid_outputs=1)
    assert a.has_advice and a.best() == "b" and a.source == "hf:x" and a.bank_version == 3 and a.invalid_outputs == 1
    none = to_advice(("a", "b"), (), "hf:x", 3, invalid_outputs=4)
    assert not none.has_advice and none.reason == "unparseable" and none.invalid_outputs == 4


def test_split_encode_on_the_tiny_tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    prompts = ["State: s\nPlan:", "State: s\nPlan:"]
    conts = candidate_continuations(("explore", "go to key, pick up key"))
    pairs = split_encode(tok, prompts, conts)
    assert pairs[0][0] == pairs[1][0] == tok(prompts[0])["input_ids"]
    assert tok.decode(pairs[0][1]) == " explore\n"
    assert tok.decode(pairs[1][1]) == " go to key, pick up key\n"
