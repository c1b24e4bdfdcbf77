import pytest

from llmrl.envs.crafter.subgoals import ITEMS
from llmrl.envs.crafter.text import (
    StateView,
    direction_word,
    distance_word,
    parse_state_text,
    render_state_text,
)


def test_quantisation():
    assert distance_word(1, 0) == "adjacent"
    assert distance_word(1, 1) == "near"
    assert distance_word(0, -3) == "near"
    assert distance_word(3, 2) == "far"
    assert direction_word(0, -1) == "north"
    assert direction_word(0, 2) == "south"
    assert direction_word(3, 0) == "east"
    assert direction_word(-3, 1) == "west"
    assert direction_word(2, -2) == "north-east"
    assert direction_word(-1, 1) == "south-west"


def test_render_parse_round_trip():
    view = StateView.build(
        {"zombie": ("near", "west"), "ripe plant": ("far", "south-east"), "tree": ("adjacent", "north")},
        {"health": 5, "food": 3, "drink": 9, "energy": 1, "wood": 2, "wood_pickaxe": 1},
        sleeping=True,
        unlocked=["place table", "collect wood"],
    )
    text = render_state_text(view)
    assert text == (
        "You see: zombie near west, ripe plant far south-east, tree adjacent north. "
        "Inventory: wood 2, wood pickaxe 1. Health 5, food 3, drink 9, energy 1. Sleeping. "
        "Achievements: collect wood, place table."
    )
    assert parse_state_text(text) == view
    empty = StateView.build({}, dict.fromkeys(ITEMS, 0), sleeping=False, unlocked=())
    assert render_state_text(empty) == (
        "You see: nothing. Inventory: empty. Health 0, food 0, drink 0, energy 0. Achievements: none."
    )
    assert parse_state_text(render_state_text(empty)) == empty


def test_parse_rejects_foreign_text():
    with pytest.raises(ValueError):
        parse_state_text("Agent sees <key>, holds <nothing>.")
    with pytest.raises(ValueError):
        parse_state_text(
            "You see: dragon near west. Inventory: empty. Health 9, food 9, drink 9, energy 9. Achievements: none."
        )


def test_seeded_world_text(task, seeded_task):
    text = task.state_text()
    assert text == seeded_task.state_text()  # deterministic for equal states
    assert text.startswith("You see: ")
    assert "Inventory: empty." in text
    assert "Health 9, food 9, drink 9, energy 9." in text
    assert text.endswith("Achievements: none.")
    kinds = task._view_window().visible_kinds()
    for kind in ("tree", "grass", "water", "cow"):
        assert (f"{kind} " in text) == (kind in kinds)
    assert "grass" in kinds
    assert len(text) < 400


def test_text_reports_nearest_with_direction(task, clear_view, refresh):
    px, py = clear_view(task)
    world = task._env._world
    world[(px + 1, py)] = "tree"
    world[(px - 3, py - 3)] = "tree"  # farther: not named
    world[(px - 2, py + 2)] = "water"
    world[(px + 4, py - 1)] = "stone"
    refresh(task)
    text = task.state_text()
    assert text.startswith("You see: tree adjacent east, water far south-west, stone far east, grass adjacent north.")
    task._env._player.inventory["wood"] = 3
    task._env._player.inventory["drink"] = 4
    refresh(task)
    assert "Inventory: wood 3. Health 9, food 9, drink 4, energy 9." in task.state_text()
