"""The held-out split and the text of a pair (the prompt exactly as the teacher builds it)."""

from __future__ import annotations

from adapter_episodes import OPTIONS, pair

from llmrl.adapter.data import pair_text, split_pairs
from llmrl.messages import PromptBankSnapshot
from llmrl.teacher.prompting import build_prompt


def test_split_is_disjoint_complete_and_stable():
    pairs = [pair(f"Agent sees <key>, row {i}.", OPTIONS[i % 3]) for i in range(20)]
    train, heldout = split_pairs(pairs, 0.2)
    assert len(heldout) == 4 and len(train) == 16
    assert {p.key() for p in train} | {p.key() for p in heldout} == {p.key() for p in pairs}
    assert not {p.key() for p in train} & {p.key() for p in heldout}
    assert split_pairs(list(reversed(pairs)), 0.2) == (train, heldout)  # order does not matter


def test_any_two_pairs_have_both_sides_and_one_pair_has_no_heldout():
    a, b = pair("s1", OPTIONS[0]), pair("s2", OPTIONS[1])
    train, heldout = split_pairs([a, b], 0.01)
    assert len(train) == 1 and len(heldout) == 1
    train, heldout = split_pairs([a, b], 0.99)
    assert len(train) == 1 and len(heldout) == 1
    assert split_pairs([a], 0.5) == ([a], [])
    assert split_pairs([], 0.5) == ([], [])


def test_pair_text_is_the_teachers_prompt_and_scored_continuation():
    bank = PromptBankSnapshot(version=3, task_description="Open the door.", exemplars=("State: x\nPlan: explore",))
    p = pair("Agent sees <key>, holds <nothing>.", OPTIONS[1])
    prompt, continuation = pair_text(p, bank)
    assert prompt == build_prompt(p.query, bank)
    assert continuation == " go to key, pick up key\n"


def test_another_salt_is_another_split_of_the_same_pairs():
    pairs = [pair(f"state {i}", OPTIONS[i % 3]) for i in range(12)]
    splits = [split_pairs(pairs, 0.25, salt=str(k)) for k in range(6)]
    assert all(len(h) == 3 for _, h in splits)
    held_once = {p.key() for _, h in splits for p in h}
    assert len(held_once) > 3  # rotating the salt holds out different pairs, so each gets trained on in turn
