"""Text embedders for the comprehension score, chosen by ``feedback.comprehension_embedder``.

* ``bag_of_words`` (default): ``comprehension.bag_of_words_embed``, deterministic, no model.
* ``sentence_transformers``: a sentence-transformers model from a local folder (``feedback.comprehension_model``),
  AdaRefiner's choice (SBERT all-MiniLM-L6-v2). Needs ``pip install sentence-transformers``.
* ``lm_mean_hidden``: a transformers model from a local folder (e.g. the teacher LM's own), the mean of its last
  hidden state over each text's tokens.

A bad choice fails when the feedback actor starts, with one line naming the key. Models run on CPU: the score is
computed once per Crafter episode on two short texts.
"""

from __future__ import annotations

import os

import numpy as np

from llmrl.config import FeedbackConfig
from llmrl.feedback.comprehension import Embedder

EMBEDDERS = ("bag_of_words", "sentence_transformers", "lm_mean_hidden")


class EmbedderError(RuntimeError):
    """The configured embedder cannot be built. One-line message naming the config key."""


def _folder(cfg: FeedbackConfig) -> str:
    path = os.path.expanduser(cfg.comprehension_model)
    if not os.path.isdir(path):
        raise EmbedderError(f"feedback.comprehension_model: '{cfg.comprehension_model}' is not a model folder "
                            f"(needed by feedback.comprehension_embedder={cfg.comprehension_embedder})")
    return path


class MeanHiddenEmbedder:
    """Mean of a transformers model's last hidden state over each text's tokens (padding excluded)."""

    def __init__(self, folder: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(folder)
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token or self._tok.unk_token
        self._model = AutoModel.from_pretrained(folder).eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tok(texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy().astype(np.float64)


def make_embedder(cfg: FeedbackConfig) -> Embedder | None:
    """The embedder ``cfg`` asks for; None means the default bag of words."""
    kind = cfg.comprehension_embedder
    if kind == "bag_of_words":
        return None
    if kind not in EMBEDDERS:
        raise EmbedderError(f"feedback.comprehension_embedder: must be one of {', '.join(EMBEDDERS)}, got {kind!r}")
    folder = _folder(cfg)
    try:
        if kind == "lm_mean_hidden":
            return MeanHiddenEmbedder(folder)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedderError("feedback.comprehension_embedder=sentence_transformers needs "
                                "pip install sentence-transformers") from None
        model = SentenceTransformer(folder, device="cpu")
        return lambda texts: np.asarray(model.encode(list(texts)), dtype=np.float64)
    except EmbedderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
        raise EmbedderError(f"feedback.comprehension_model: cannot load '{cfg.comprehension_model}' as "
                            f"{kind}: {' '.join(str(exc).split())}") from None
