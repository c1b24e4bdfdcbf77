"""The rule-based planner: the right plan for each text, admissible options, plausible mistakes."""

import pytest

from llmrl.envs.minigrid.planner import admissible_options, correct_option, wrong_options
from llmrl.envs.minigrid.text import parse_state_text
from llmrl.envs.registry import planner_module

CASES = [
    # SimpleDoorKey / LavaDoorKey
    ("Agent sees <nothing>, holds <nothing>.", "explore"),
    ("Agent sees <door (locked)>, holds <nothing>.", "explore"),
    ("Agent sees <key>, holds <nothing>.", "go to key, pick up key"),
    ("Agent sees <key>, <door (locked)>, holds <nothing>.", "go to key, pick up key"),
    ("Agent sees <nothing>, holds <key>.", "explore"),
    ("Agent sees <door (locked)>, holds <key>.", "go to door, open door"),
    # ColoredDoorKey
    ("Agent sees <color1 key>, <color2 key>, holds <nothing>.", "go to color1 key, pick up color1 key"),
    ("Agent sees <color1 key>, <color2 door (locked)>, holds <nothing>.", "explore"),
    ("Agent sees <color1 key>, <color2 key>, <color2 door (locked)>, holds <nothing>.",
     "go to color2 key, pick up color2 key"),
    ("Agent sees <color2 key>, <color2 door (locked)>, holds <color1 key>.",
     "drop color1 key, go to color2 key, pick up color2 key"),
    ("Agent sees <color2 door (locked)>, holds <color1 key>.", "explore"),
    ("Agent sees <color1 key>, <color2 door (locked)>, holds <color2 key>.", "go to color2 door, open color2 door"),
    ("Agent sees <color2 key>, holds <color1 key>.", "explore"),
    # DoorKey (stock)
    ("Agent sees <key>, <door (open)>, holds <nothing>.", "explore"),
    ("Agent sees <door (open)>, <goal>, holds <key>.", "go to goal"),
    ("Agent sees <key>, <door (closed)>, <goal>, holds <nothing>.", "go to door, open door"),
    # BabyAI
    ("Agent sees <red ball>, holds <nothing>.", "go to red ball"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_correct_option_per_text(text, expected):
    options = admissible_options(parse_state_text(text))
    assert expected in options
    assert correct_option(text, options) == expected
    wrong = wrong_options(text, options, expected)
    assert expected not in wrong and set(wrong) <= set(options)
    if len(options) >= 2:
        assert wrong
    assert len(options) <= 8


def test_mistakes_include_door_without_key_and_distractor():
    text = "Agent sees <key>, <door (locked)>, holds <nothing>."
    options = admissible_options(parse_state_text(text))
    assert wrong_options(text, options, correct_option(text, options))[0] == "go to door, open door"
    text = "Agent sees <color1 key>, <color2 key>, <color2 door (locked)>, holds <nothing>."
    options = admissible_options(parse_state_text(text))
    assert "go to color1 key, pick up color1 key" in wrong_options(text, options, correct_option(text, options))


def test_correct_option_stays_within_options_and_survives_bad_text():
    assert correct_option("Agent sees <key>, holds <nothing>.", ("explore",)) == "explore"
    assert correct_option("not a state text", ("explore", "go to key, pick up key")) == "explore"
    assert correct_option("Agent sees <key>, holds <nothing>.", ("go to door, open door",)) == "go to door, open door"


def test_registry_finds_this_planner():
    module = planner_module("minigrid")
    assert module.correct_option is correct_option and module.wrong_options is wrong_options
