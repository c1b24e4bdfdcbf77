"""The adapter's dataset: distinct (query, plan) pairs, bounded, with a stable held-out split, and their text.

The held-out split is by a hash of each pair (and a salt), so for one salt a pair stays on the same side while
the set grows and across restarts; the ``ceil(heldout_frac * n)`` pairs with the smallest hashes are held out,
so any set of two or more pairs has both sides. The text of a pair is exactly what the teacher scores:
its query rendered as the teacher renders it (plain ``prompting.build_prompt`` or its chat template) with the
current prompt bank, and the option's continuation from
``plan_choice.candidate_continuations`` (``" <plan>\\n"``), so a fine-tune raises the very log-likelihood the
``hf`` score mode reads. With ``adapter.role=analyst`` it is what the analyst reads and writes instead: its
prompt (``analyst.AnalystPrompts``) and the analysis that preceded the completed sub-goal (``" <analysis>\\n"``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from typing import Any

from llmrl.messages import PromptBankSnapshot, TrainingPair
from llmrl.teacher.plan_choice import candidate_continuations
from llmrl.teacher.prompting import PlainPrompts


def pair_hash(pair: TrainingPair, salt: str = "") -> str:
    return hashlib.sha256("\x1f".join((salt, *pair.key())).encode()).hexdigest()


def split_pairs(pairs: Iterable[TrainingPair], heldout_frac: float,
                salt: str = "") -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train, held-out); both empty-safe. Fewer than two pairs: everything is training, nothing held out.

    ``salt`` picks another split of the same pairs (the trainer's ``adapter.rotate_heldout``)."""
    ordered = sorted(pairs, key=lambda p: pair_hash(p, salt))
    if len(ordered) < 2:
        return ordered, []
    k = min(len(ordered) - 1, max(1, math.ceil(heldout_frac * len(ordered))))
    return ordered[k:], ordered[:k]


def pair_text(pair: TrainingPair, bank: PromptBankSnapshot, prompts: Any = None,
              analyst: bool = False) -> tuple[str, str]:
    """(prompt, continuation) as the teacher reads and scores them or, with ``analyst`` (adapter.role=analyst),
    as the analyst reads and writes them.

    ``prompts`` renders the query as the model reads it (its ``build(query, bank)``): the teacher's own format,
    ``prompting.PlainPrompts`` or the ``ChatPrompts`` of its chat template (``teacher.hf.chat_template``), or the
    analyst's ``AnalystPrompts``. None: plain text. A pair rendered otherwise than the teacher renders its queries
    trains the adapter on prompts the teacher never reads."""
    prompt = (prompts or PlainPrompts()).build(pair.query, bank)
    if analyst:
        from llmrl.adapter.analyst import analysis_continuation

        return prompt, analysis_continuation(pair.analysis)
    (continuation,) = candidate_continuations([pair.plan])
    return prompt, continuation


def pair_choices(pair: TrainingPair, bank: PromptBankSnapshot, prompts: Any = None) -> tuple[str, list[str], int]:
    """(prompt, the continuation of every admissible plan, the index of the pair's plan) for
    ``adapter.loss=choice``: the teacher's choice among its options, as the ``hf`` score mode makes it;
    ``prompts`` as for ``pair_text``."""
    options = list(pair.query.options)
    prompt = (prompts or PlainPrompts()).build(pair.query, bank)
    return prompt, candidate_continuations(options), options.index(pair.plan)
