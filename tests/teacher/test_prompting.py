from __future__ import annotations

import pytest

from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.prompting import answer_cue, bank_prefix, build_prompt, normalize_option, parse_option

MINIGRID_OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
CRAFTER_OPTIONS = ("collect wood", "place table", "make wood pickaxe", "eat cow")


def test_prompt_contains_bank_state_and_options(bank, mixed_queries):
    q = mixed_queries[0]
    prompt = build_prompt(q, bank)
    assert bank.task_description in prompt
    assert bank.exemplars[0] in prompt
    assert bank.feedback_lines[0] in prompt
    assert "collect wood 0.80" in prompt and "place table 0.25" in prompt
    assert "Comprehension score: 0.62" in prompt or "Comprehension score: 0.63" in prompt
    assert q.state_text in prompt
    for option in q.options:
        assert f"- {option}\n" in prompt
    assert prompt.endswith("\nPlan:")


def test_prompt_context_and_crafter_cue(bank, mixed_queries):
    q = mixed_queries[3]
    prompt = build_prompt(q, bank)
    assert "Context: Recent sub-goals: collect wood, collect wood." in prompt
    assert "Allowed sub-goals:" in prompt
    assert prompt.endswith("\n" + answer_cue("crafter")) and answer_cue("crafter") == "Sub-goal:"


def test_prompt_is_deterministic_and_shares_the_bank_prefix(bank, mixed_queries):
    prompts = [build_prompt(q, bank) for q in mixed_queries]
    assert prompts == [build_prompt(q, bank) for q in mixed_queries]
    prefix = bank_prefix(bank)
    # Prefix caching needs the bank part first and byte-identical across queries.
    assert all(p.startswith(prefix + "\n\n") for p in prompts)
    assert len(set(prompts)) == len(prompts)


def test_empty_bank_sections_are_omitted():
    bank = PromptBankSnapshot(version=0, task_description="Open the door.")
    prompt = build_prompt(TeacherQuery("minigrid", "DoorKey-5x5", "s", ("explore",)), bank)
    assert "Examples" not in prompt and "Feedback" not in prompt and "Comprehension" not in prompt
    assert prompt.startswith("Open the door.\n\nState: s\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("go to key, pick up key", "go to key, pick up key"),
        (" go to key, pick up key\nState: next", "go to key, pick up key"),
        ("Action: {go to <key>, pick up <key>}", "go to key, pick up key"),
        ("The agent sees the key. It should get it first.\nAction: {go to <key>, pick up <key>}",
         "go to key, pick up key"),
        ("Thought: holds nothing. Action: { Go To <KEY> ,pick up <key> }.", "go to key, pick up key"),
        ("  EXPLORE.  ", "explore"),
        ("Plan:\nexplore", "explore"),
        ("go to door , open door", "go to door, open door"),
        ("'explore'", "explore"),
    ],
)
def test_parse_option_good_and_messy(text, expected):
    assert parse_option(text, MINIGRID_OPTIONS) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   \n  ", "go to key", "go to key, pick up key, go to door", "dance", "Action: {fly}", "explore the room"],
)
def test_parse_option_garbage_and_partial(text):
    assert parse_option(text, MINIGRID_OPTIONS) is None


def test_parse_option_first_line_wins_over_hallucinated_continuation():
    # A completion that runs on into an invented next turn answers with its first line.
    text = " explore\nState: Agent sees <key>.\nPlan: go to key, pick up key"
    assert parse_option(text, MINIGRID_OPTIONS) == "explore"


def test_parse_option_crafter_subgoals():
    assert parse_option("Sub-goal: Collect Wood", CRAFTER_OPTIONS) == "collect wood"
    assert parse_option("make wood pickaxe\n", CRAFTER_OPTIONS) == "make wood pickaxe"
    assert parse_option("make stone pickaxe", CRAFTER_OPTIONS) is None


def test_normalize_option():
    assert normalize_option("  {Go  to <Key>,pick up <key>}. ") == "go to key, pick up key"
