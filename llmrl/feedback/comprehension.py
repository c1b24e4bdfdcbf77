"""AdaRefiner's comprehension score: how well the student's recent actions match the teacher's sub-goals.

    l = sigmoid(10 * (cos(emb(recent actions), emb(recent sub-goals)) - 0.1))

AdaRefiner embeds both texts with a sentence-embedding model (SBERT all-MiniLM-L6). Model weights cannot be
downloaded where this project is built and tested, so the default embedding here is a deterministic bag of
words (``bag_of_words_embed``). Any ``embed`` callable that maps a list of texts to one row vector per text can
be plugged in instead, e.g. ``SentenceTransformer("all-MiniLM-L6-v2").encode``.

Both texts are built the same way: items are joined with ", " and underscores become spaces, so the action
``place_table`` and the sub-goal ``place table`` share their words under any embedding.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence

import numpy as np

Embedder = Callable[[list[str]], np.ndarray]

# The paper's constants: the sigmoid's slope and the cosine at which the score is 0.5.
SCORE_SLOPE = 10.0
SCORE_OFFSET = 0.1
# Returned when there is nothing to compare (no actions, no sub-goals, or texts without words): "no evidence
# either way" rather than the sigmoid's value at cos = 0, which would read as "the student ignores the teacher".
NEUTRAL_SCORE = 0.5
# Width of the default bag-of-words vector. The Crafter vocabulary below takes the first slots without
# collisions; any other word is hashed into the remaining ones.
EMBED_DIM = 256

# Words of Crafter's 17 actions and 22 achievements (sub-goals are phrased like achievements).
CRAFTER_VOCABULARY: tuple[str, ...] = (
    "noop", "move", "left", "right", "up", "down", "do", "sleep", "place", "make",
    "stone", "table", "furnace", "plant", "wood", "pickaxe", "iron", "sword",
    "collect", "coal", "diamond", "drink", "water", "sapling", "eat", "cow", "defeat", "zombie", "skeleton",
    "wake",
)
# Sub-goal verbs that no action name contains but that one action performs: collecting, eating, drinking and
# fighting are all the interact action "do", and waking up follows "sleep". Without these, "collect wood"
# could never resemble any action sequence and half of Crafter's sub-goals would always score low.
ACTION_ALIASES: dict[str, str] = {
    "collect": "do", "eat": "do", "drink": "do", "defeat": "do", "wake": "sleep",
}

_INDEX = {w: i for i, w in enumerate(CRAFTER_VOCABULARY)}
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words; splitting on anything but letters and digits separates ``_``, spaces and commas."""
    return _WORD.findall(text.lower())


def _slot(word: str) -> int:
    index = _INDEX.get(word)
    if index is not None:
        return index
    # crc32, not hash(): Python salts str hashes per process and the score must not depend on the process.
    free = EMBED_DIM - len(CRAFTER_VOCABULARY)
    return len(CRAFTER_VOCABULARY) + zlib.crc32(word.encode()) % free


def bag_of_words_embed(texts: list[str]) -> np.ndarray:
    """Word counts over a fixed ``EMBED_DIM``-slot vocabulary, L2-normalised; an all-zero row for no words.

    Deterministic across processes and machines. Stands in for SBERT MiniLM-L6 in the comprehension score.
    """
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float64)
    for row, text in enumerate(texts):
        for word in tokenize(text):
            out[row, _slot(word)] += 1.0
            alias = ACTION_ALIASES.get(word)
            if alias is not None:
                out[row, _slot(alias)] += 1.0
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


def _as_text(items: Sequence[str]) -> str:
    return ", ".join(item.replace("_", " ") for item in items)


def comprehension_score(actions: Sequence[str], subgoals: Sequence[str], embed: Embedder | None = None) -> float:
    """sigmoid(10 * (cos(embed(actions), embed(sub-goals)) - 0.1)) in (0, 1); ``NEUTRAL_SCORE`` when either is empty.

    ``actions`` are action names (``"move_left"``, ``"do"``, ...), ``subgoals`` are sub-goal texts (``"collect
    wood"``); each list is embedded as one text. ``embed`` defaults to ``bag_of_words_embed``.
    """
    if not actions or not subgoals:
        return NEUTRAL_SCORE
    vectors = np.asarray((embed or bag_of_words_embed)([_as_text(actions), _as_text(subgoals)]), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != 2:
        raise ValueError(f"embed must return one row per text (2 rows), got shape {vectors.shape}")
    a, b = vectors
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return NEUTRAL_SCORE
    cos = float(a @ b) / (na * nb)
    return 1.0 / (1.0 + math.exp(-SCORE_SLOPE * (cos - SCORE_OFFSET)))
