"""Plan parsing: canonical plans, what LLMs actually write, and garbage."""

import pytest

from llmrl.envs.minigrid.plans import Step, canonical, format_plan, parse_plan, parse_target


@pytest.mark.parametrize(
    "text, steps",
    [
        ("explore", (Step("explore"),)),
        ("go to key, pick up key", (Step("go to", "key"), Step("pick up", "key"))),
        ("go to color1 door, open color1 door", (Step("go to", "color1 door"), Step("open", "color1 door"))),
        ("drop red key", (Step("drop", "red key"),)),
        ("go to goal", (Step("go to", "goal"),)),
        ("go to red ball", (Step("go to", "red ball"),)),
    ],
)
def test_canonical_plans_parse_and_round_trip(text, steps):
    assert parse_plan(text) == steps
    assert format_plan(steps) == text


@pytest.mark.parametrize(
    "messy, expected",
    [
        ("{go to <key>, pick up <key>}", "go to key, pick up key"),
        ("Action: {Go To <Key> ,  Pick Up <KEY>}", "go to key, pick up key"),
        ("3. Action: {go to <door>, open <door> with <key>} \n.", "go to door, open door"),
        ("  EXPLORE. ", "explore"),
        ("explore the room", "explore"),
        ("go to the key then pick up the key", "go to key, pick up key"),
        ("go to <yellow door (locked)>, open <yellow door (locked)>", "go to yellow door, open yellow door"),
        ("pickup <colour2 key>", "pick up color2 key"),
        ("toggle the locked door", "open door"),
        ("reach the green goal square", "go to goal"),
        ("drop <color1 key>; go to <color2 key>; pick up <color2 key>",
         "drop color1 key, go to color2 key, pick up color2 key"),
    ],
)
def test_messy_llm_output_is_canonicalised(messy, expected):
    assert canonical(messy) == expected


@pytest.mark.parametrize(
    "garbage",
    ["", "   ", "{}", "dance", "go to", "go to the moon", "pick up <handle>, use <key>", "open", "explore your feelings",
     "go to key, fly", "go to purple-ish key", None, 42],
)
def test_garbage_does_not_parse(garbage):
    assert parse_plan(garbage) is None


def test_parse_target():
    assert parse_target("the Yellow  Key") == "yellow key"
    assert parse_target("keys") == "key"
    assert parse_target("big red key") is None
    assert parse_target("door (open)") == "door"
