"""Scripted skills on hand-built grids: the BFS action sequences reach their targets the shortest way."""

import pytest
from minigrid.core.world_object import Key
from minigrid_scenes import follow, scene

from llmrl.config import EnvConfig
from llmrl.envs.minigrid.adapter import make_task
from llmrl.envs.minigrid.plans import parse_plan
from llmrl.envs.minigrid.skills import FORWARD, PICKUP, TOGGLE, first_unfinished_action, progress

OPEN_ROOM = [
    "#####",
    "#>.k#",
    "#...#",
    "#...#",
    "#####",
]


def front_type(t):
    cell = t.raw.grid.get(*t.raw.front_pos)
    return None if cell is None else cell.type


def test_go_to_and_pick_up_key_exact_actions_and_progress():
    t = scene(OPEN_ROOM)
    option = "go to key, pick up key"
    steps = parse_plan(option)
    assert progress(steps, t.knowledge) == (0, 2)
    assert first_unfinished_action(steps, t.knowledge) == FORWARD
    actions, _ = follow(t, option)
    assert actions == [FORWARD, PICKUP]
    assert t.raw.carrying is not None and t.raw.carrying.type == "key"
    assert t.option_progress(option) == (2, 2)
    assert t.option_action(option) is None  # finished


def test_path_around_walls_is_shortest():
    t = scene([
        "#######",
        "#>#..k#",
        "#.#.#.#",
        "#.....#",
        "#######",
    ])
    actions, _ = follow(t, "go to key")
    assert len(actions) == 10  # right, 2 forward, left, 4 forward, left, forward
    assert front_type(t) == "key"


def test_lava_is_walked_around():
    t = scene([
        "#######",
        "#>.L.k#",
        "#.....#",
        "#######",
    ], task="LavaDoorKey")
    _, cells = follow(t, "go to key")
    assert (3, 1) not in cells
    assert front_type(t) == "key"


def test_closed_door_blocks_unless_target_and_open_door_is_walkable():
    rows = [
        "#######",
        "#>.#.G#",
        "#..D..#",
        "#..#..#",
        "#######",
    ]
    t = scene(rows)
    assert t.option_action("go to goal") is None  # only through the locked door
    actions, _ = follow(t, "go to door")
    assert len(actions) == 4 and front_type(t) == "door"

    t = scene(rows, carrying=Key("yellow"))
    actions, _ = follow(t, "go to door, open door")
    assert actions[-1] == TOGGLE and t.raw.door.is_open
    assert t.option_progress("go to door, open door") == (2, 2)
    follow(t, "go to goal")
    assert tuple(t.raw.agent_pos) == (5, 1)


def test_explore_reveals_the_room_and_nothing_behind_walls():
    for task in ("SimpleDoorKey", "LavaDoorKey", "ColoredDoorKey"):
        for seed in range(5):
            t = make_task(EnvConfig(name=task), seed=seed)
            t.reset()
            follow(t, "explore", limit=150)
            grid = t.raw.grid
            w = sum(grid.get(x, 0) is not None for x in range(grid.width))
            h = sum(grid.get(0, y) is not None for y in range(grid.height))
            known = t.knowledge.cells[:, :, 0] != 0
            assert known[1 : w - 1, 1 : h - 1].all(), (task, seed)
            assert not known[w:, :].any() and not known[:, h:].any(), (task, seed)
            assert t.option_progress("explore") == (1, 1)


def test_drop_avoids_cut_points():
    t = scene([
        "#######",
        "#.>...#",
        "#######",
    ], carrying=Key("yellow"))
    actions, _ = follow(t, "drop key")
    assert len(actions) == 3  # two moves (or turns) and a drop at one of the corridor's ends
    assert t.raw.carrying is None
    ends = [t.raw.grid.get(x, 1) for x in (1, 5)]
    assert any(c is not None and c.type == "key" for c in ends)


def test_drop_avoids_the_doorway():
    t = scene([
        "#####",
        "#.>.D",
        "#...#",
        "#...#",
        "#####",
    ], carrying=Key("yellow"))
    follow(t, "drop key")
    assert t.raw.carrying is None
    assert t.raw.grid.get(3, 1) is None  # the only cell from which the door can be opened stays free


def test_pick_up_needs_free_hands_and_swap_plan_works():
    rows = [
        "#####",
        "#>k.#",
        "#...#",
        "#...#",
        "#####",
    ]
    t = scene(rows, carrying=Key("red"))
    assert t.option_action("pick up yellow key") is None
    follow(t, "drop red key, go to yellow key, pick up yellow key")
    assert t.raw.carrying.color == "yellow"
    assert any(t.raw.grid.get(x, y) is not None and t.raw.grid.get(x, y).type == "key"
               for x in range(5) for y in range(5))


def test_go_to_ball_ends_facing_it():
    t = scene([
        "#####",
        "#>..#",
        "#...#",
        "#..b#",
        "#####",
    ])
    follow(t, "go to red ball")
    assert front_type(t) == "ball"


@pytest.mark.parametrize("option", ["dance", "go to the moon", ""])
def test_unparseable_options_have_no_action(option):
    t = scene(OPEN_ROOM)
    assert t.option_action(option) is None
    assert t.option_progress(option) == (0, 0)


def test_unknown_target_has_no_action():
    t = scene(OPEN_ROOM)
    assert t.option_action("go to door") is None
    assert t.option_action("go to color2 key") is None  # no such colour name in this episode
