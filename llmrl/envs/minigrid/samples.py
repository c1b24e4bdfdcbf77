"""Synthetic MiniGrid teacher queries: state texts and their admissible plans, without an env (pure Python).

Used by the teacher benchmark (``llmrl bench teacher``) through ``FamilySpec.sample_states``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from llmrl.envs.minigrid.planner import admissible_options
from llmrl.envs.minigrid.text import Facts, ObjRef, render_state_text


def state_stream(seed: int) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Endless distinct (MiniGrid state text, admissible options), in a seeded random order.

    Up to three seen objects (keys, balls, boxes of six colours, doors in three states, the goal) and
    what is held: ~1.6e5 distinct states, after which the stream starts over.
    """
    colours = ("red", "green", "blue", "purple", "yellow", "grey")
    carriable = [ObjRef(t, c) for t in ("key", "ball", "box") for c in colours]
    objects = carriable + [ObjRef("door", c, s) for c in colours for s in ("locked", "closed", "open")]
    objects.append(ObjRef("goal"))
    seen_sets = [s for k in (1, 2, 3) for s in itertools.combinations(objects, k)]
    held = [None, *carriable]
    total = len(seen_sets) * len(held)
    rng = random.Random(seed)
    while True:
        for idx in rng.sample(range(total), total):
            facts = Facts.make(list(seen_sets[idx // len(held)]), held[idx % len(held)])
            yield render_state_text(facts), admissible_options(facts)
