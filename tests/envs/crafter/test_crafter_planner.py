"""The rule-based planner on hand-written state texts."""

import pytest

from llmrl.envs.crafter.planner import correct_option, wrong_options
from llmrl.envs.crafter.subgoals import PLACE, admissible_subgoals
from llmrl.envs.crafter.text import parse_state_text

TABLE_WOOD = PLACE["place table"][1]["wood"]
FURNACE_STONE = PLACE["place furnace"][1]["stone"]
SIDE = "collect sapling, place plant, drink water, eat cow"  # side achievements already unlocked


def state(seen="grass adjacent north", inventory="empty", vitals=(9, 9, 9, 9), done=SIDE, sleeping=False):
    h, f, d, e = vitals
    return (
        f"You see: {seen}. Inventory: {inventory}. Health {h}, food {f}, drink {d}, energy {e}."
        + (" Sleeping." if sleeping else "")
        + f" Achievements: {done or 'none'}."
    )


def plan(text):
    options = admissible_subgoals(parse_state_text(text))
    choice = correct_option(text, options)
    assert choice in options
    return choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (state("tree near east, grass adjacent north"), "collect wood"),
        (state(), "explore"),
        (state("tree near east, grass adjacent north", f"wood {TABLE_WOOD}", done=SIDE + ", collect wood"),
         "place table"),
        # The table placed earlier is out of sight: a new one and the pickaxe both need wood.
        (state("tree near east, grass adjacent north", f"wood {TABLE_WOOD}", done=SIDE + ", collect wood, "
               "place table"), "collect wood"),
        (state("tree near east, grass adjacent north", f"wood {TABLE_WOOD + 1}", done=SIDE + ", collect wood, "
               "place table"), "place table"),
        (state("tree near east, table near west, grass adjacent north", "wood 1", done=SIDE + ", collect wood, "
               "place table"), "make wood pickaxe"),
        (state("stone far south, table near west, grass adjacent north", "wood 1, wood pickaxe 1, wood sword 1",
               done=SIDE + ", collect wood, place table, make wood pickaxe, make wood sword"), "collect stone"),
        (state("stone near south, table adjacent west, grass adjacent north",
               "wood 1, stone 1, wood pickaxe 1, wood sword 1",
               done=SIDE + ", collect wood, place table, make wood pickaxe, make wood sword, collect stone, "
               "place stone"), "make stone pickaxe"),
        (state("iron near east, grass adjacent north", "wood 1, wood pickaxe 1",
               done=SIDE + ", collect wood, place table, make wood pickaxe"), "explore"),  # iron needs stone pickaxe
        (state("cow near east, tree near west, grass adjacent north", vitals=(9, 3, 9, 9)), "eat cow"),
        (state("water far south, tree near west, grass adjacent north", vitals=(9, 9, 4, 9)), "drink water"),
        (state("tree near west, grass adjacent north", vitals=(9, 9, 2, 9)), "explore"),  # find water first
        (state("tree near west, grass adjacent north", vitals=(9, 9, 9, 2)), "sleep"),
        (state("zombie near east, tree near west, grass adjacent north", vitals=(9, 9, 9, 2)), "defeat zombie"),
        (state("zombie near east, tree near west, grass adjacent north", vitals=(2, 9, 9, 9)), "avoid zombie"),
        (state("zombie adjacent east, tree near west, grass adjacent north", vitals=(2, 9, 9, 9)), "defeat zombie"),
        (state("grass adjacent north", vitals=(9, 9, 9, 5), sleeping=True), "wake up"),
        (state("tree near east, grass adjacent north", done=""), "collect sapling"),  # cheap achievement first
        (state("tree near east, grass adjacent north", "sapling 1", done="collect sapling"), "place plant"),
        # One nap unlocks "wake up": taken as soon as energy dips, before the tech tree, but never under threat
        # and never again once unlocked.
        (state("tree near east, grass adjacent north", vitals=(9, 9, 9, 8)), "wake up"),
        (state("cow near east, grass adjacent north", vitals=(9, 9, 9, 8), done="collect sapling, place plant, "
               "drink water"), "eat cow"),  # a target in sight comes first: it may be gone later
        (state("skeleton far east, tree near west, grass adjacent north", vitals=(9, 9, 9, 8)), "defeat skeleton"),
        (state("tree near east, grass adjacent north", vitals=(9, 9, 9, 8), done=SIDE + ", wake up"),
         "collect wood"),
    ],
)
def test_planner_rules(text, expected):
    assert plan(text) == expected


def test_furnace_then_iron_tools():
    tech = SIDE + (", collect wood, place table, make wood pickaxe, make wood sword, collect stone, place stone, "
                   "make stone pickaxe, make stone sword")
    base = "wood 1, coal 1, iron 1, wood pickaxe 1, stone pickaxe 1, wood sword 1, stone sword 1"
    text = state("table adjacent west, grass adjacent north", f"{base}, stone {FURNACE_STONE}", done=tech)
    assert plan(text) == "place furnace"
    text = state("table adjacent west, furnace adjacent south, grass adjacent north", base,
                 done=tech + ", place furnace, collect coal, collect iron")
    assert plan(text) == "make iron pickaxe"


def test_correct_option_respects_given_options():
    text = state("tree near east, grass adjacent north")
    assert correct_option(text, ("explore", "sleep")) == "explore"
    assert correct_option(text, ("sleep",)) == "sleep"
    with pytest.raises(ValueError):
        correct_option(text, ())


def test_wrong_options():
    text = state("cow near east, tree near west, grass adjacent north", vitals=(9, 3, 9, 9))
    options = admissible_subgoals(parse_state_text(text))
    correct = correct_option(text, options)
    wrong = wrong_options(text, options, correct)
    assert wrong and correct not in wrong and set(wrong) <= set(options)
    assert wrong[0] == "collect wood"  # ignoring hunger for the tech tree
    text = state("tree near east, grass adjacent north")
    options = admissible_subgoals(parse_state_text(text))
    wrong = wrong_options(text, options, correct_option(text, options))
    assert wrong[0] == "explore"  # wandering off although a tree is in sight
    assert wrong_options(text, ("explore",), "explore") == []
