"""Pluggable comprehension embedders: the default bag of words, an LM's mean hidden state, sentence-transformers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from llmrl.config import ConfigError, FeedbackConfig, load_config
from llmrl.feedback.actor import FeedbackService
from llmrl.feedback.comprehension import comprehension_score
from llmrl.feedback.embedders import EmbedderError, make_embedder
from llmrl.messages import AdviceOutcome, EpisodeSummary


def test_default_is_the_bag_of_words():
    assert make_embedder(FeedbackConfig()) is None


def test_lm_mean_hidden_embeds_each_text_and_drives_the_score(tiny_lm_dir):
    embed = make_embedder(FeedbackConfig(comprehension_embedder="lm_mean_hidden", comprehension_model=tiny_lm_dir))
    vectors = embed(["collect wood, place table", "do"])
    assert vectors.shape == (2, 64) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])
    # Identical texts have cosine 1: the score's maximum, sigmoid(10 * 0.9).
    same = comprehension_score(["collect wood"], ["collect wood"], embed)
    assert same == pytest.approx(1 / (1 + np.exp(-9.0)))
    assert 0.0 < comprehension_score(["move_left", "noop"], ["collect wood"], embed) <= same


def test_the_feedback_actor_scores_with_the_configured_embedder(tiny_lm_dir):
    cfg = FeedbackConfig(comprehension_embedder="lm_mean_hidden", comprehension_model=tiny_lm_dir, publish_every=1)
    fb = FeedbackService(cfg, "Crafter.")
    fb.record([EpisodeSummary("crafter", "Crafter", False, 0.0, 10, (AdviceOutcome("s", "collect wood", 1, 1),),
                              recent_actions=("do", "move_left"))])
    default = FeedbackService(FeedbackConfig(publish_every=1), "Crafter.")
    default.record([EpisodeSummary("crafter", "Crafter", False, 0.0, 10, (AdviceOutcome("s", "collect wood", 1, 1),),
                                   recent_actions=("do", "move_left"))])
    assert fb.bank.comprehension is not None and fb.bank.comprehension != default.bank.comprehension


def test_bad_embedder_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="feedback.comprehension_model"):
        load_config(None, ["feedback.comprehension_embedder=lm_mean_hidden"])
    with pytest.raises(ConfigError, match="feedback.comprehension_embedder"):
        load_config(None, ["feedback.comprehension_embedder=word2vec"])
    with pytest.raises(EmbedderError, match="not a model folder"):
        make_embedder(FeedbackConfig(comprehension_embedder="lm_mean_hidden", comprehension_model=str(tmp_path / "x")))
    # sentence-transformers is not a dependency: without it the error says how to install it; with it, an
    # empty folder is not a model.
    installed = importlib.util.find_spec("sentence_transformers") is not None
    with pytest.raises(EmbedderError, match="cannot load" if installed else "pip install sentence-transformers") as e:
        make_embedder(FeedbackConfig(comprehension_embedder="sentence_transformers", comprehension_model=str(tmp_path)))
    assert "\n" not in str(e.value)
