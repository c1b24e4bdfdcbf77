"""Sub-goal vocabulary, admissibility, scripted skills and completion detection on an edited seeded world."""

import crafter.constants
import crafter.objects

from llmrl.envs.crafter.score import ACHIEVEMENTS
from llmrl.envs.crafter.subgoals import (
    ACHIEVEMENT_OF,
    DO_TARGETS,
    ITEMS,
    MAKE,
    PLACE,
    SUBGOAL_INDEX,
    SUBGOALS,
    SURVIVAL_SUBGOALS,
)

ACTIONS = list(crafter.constants.actions)


def test_vocabulary():
    assert len(SUBGOALS) == len(set(SUBGOALS)) == 22 + len(SURVIVAL_SUBGOALS)
    assert sorted(ACHIEVEMENT_OF.values()) == sorted(ACHIEVEMENTS)
    assert set(ACHIEVEMENT_OF) | set(SURVIVAL_SUBGOALS) == set(SUBGOALS)
    assert ACHIEVEMENT_OF["drink water"] == "collect_drink"
    assert SUBGOAL_INDEX[SUBGOALS[0]] == 1 and min(SUBGOAL_INDEX.values()) == 1


def test_recipes_match_crafter():
    assert ITEMS == tuple(crafter.constants.items)
    for subgoal, (name, uses, where) in PLACE.items():
        assert crafter.constants.place[name]["uses"] == uses, subgoal
        assert tuple(crafter.constants.place[name]["where"]) == where, subgoal
        assert "nearby" not in crafter.constants.place[name]
    for subgoal, (item, uses, stations) in MAKE.items():
        assert crafter.constants.make[item]["uses"] == uses, subgoal
        assert tuple(crafter.constants.make[item]["nearby"]) == stations, subgoal
    materials = {"tree": "wood", "stone": "stone", "coal": "coal", "iron": "iron", "diamond": "diamond",
                 "water": "drink", "grass": "sapling"}
    for subgoal, (kind, tools) in DO_TARGETS.items():
        if kind in materials:
            rule = crafter.constants.collect[kind]
            assert rule["require"] == tools and list(rule["receive"]) == [materials[kind]], subgoal


def test_options_on_seeded_world(task):
    options = task.options()
    assert "explore" in options and "collect wood" in options and "collect sapling" in options
    assert list(options) == [s for s in SUBGOALS if s in options]  # stable vocabulary order
    assert "place table" not in options and "make wood pickaxe" not in options  # prerequisites unmet


def _run_skill(task, option, max_steps):
    task.begin_option(option)
    assert task.option_progress(option) == (0, 1)
    for _ in range(max_steps):
        action = task.option_action(option)
        assert action is not None, option
        task.step(action)
        if task.option_progress(option) == (1, 1):
            return True
    return False


def test_collect_wood_facing_and_walking(task, clear_view, refresh):
    px, py = clear_view(task)
    task._env._world[(px + 1, py)] = "tree"
    task._env._player.facing = (1, 0)
    refresh(task)
    assert task.option_action("collect wood") == ACTIONS.index("do")
    task.begin_option("collect wood")
    _, _, _, _, info = task.step(ACTIONS.index("do"))
    assert info["achievements"] == ["collect_wood"]
    assert task.option_progress("collect wood") == (1, 1)
    task._env._world[(px - 3, py + 2)] = "tree"
    refresh(task)
    assert task.option_action("collect wood") in {ACTIONS.index("move_left"), ACTIONS.index("move_down")}
    assert _run_skill(task, "collect wood", 12)
    assert task._env._player.inventory["wood"] == 2


def test_tech_tree_skills(task, clear_view, refresh):
    px, py = clear_view(task)
    player = task._env._player
    table_wood = PLACE["place table"][1]["wood"]
    player.inventory["wood"] = table_wood + 1
    refresh(task)
    assert "place table" in task.options()
    assert task.option_action("place table") == ACTIONS.index("place_table")
    assert _run_skill(task, "place table", 1)
    assert "table" in task.state_text()
    assert "make wood pickaxe" in task.options()
    assert task.option_action("make wood pickaxe") == ACTIONS.index("make_wood_pickaxe")
    assert _run_skill(task, "make wood pickaxe", 1)
    assert player.inventory["wood_pickaxe"] == 1
    assert "make wood pickaxe" not in task.options()  # no wood left
    # Walk back to a table that is in view but not next to the player.
    player.inventory["wood"] = 1
    for _ in range(2):  # the table ends 3 rows below: still in the 7-row view
        task.step(ACTIONS.index("move_up"))
    assert task.option_action("make wood sword") == ACTIONS.index("move_down")
    assert _run_skill(task, "make wood sword", 6)
    assert task.success()  # make_wood_pickaxe unlocked


def test_sleep_completes_when_energy_rises(task, clear_view, refresh):
    clear_view(task)
    task._env._player.inventory["energy"] = 3
    refresh(task)
    assert {"sleep", "wake up"} <= set(task.options())
    assert _run_skill(task, "sleep", 40)
    assert task._env._player.inventory["energy"] == 4


def test_zombie_sub_goals(task, clear_view, refresh):
    px, py = clear_view(task)
    world, player = task._env._world, task._env._player
    zombie = crafter.objects.Zombie(world, (px + 2, py), player)
    world.add(zombie)
    refresh(task)
    options = task.options()
    assert "defeat zombie" in options and "avoid zombie" in options
    task.begin_option("avoid zombie")
    assert task.option_progress("avoid zombie") == (0, 1)
    assert task.option_action("avoid zombie") == ACTIONS.index("move_left")  # away from it
    assert task.option_action("sleep") is None  # never lie down next to a zombie
    world.remove(zombie)
    refresh(task)
    assert task.option_progress("avoid zombie") == (1, 1)
    assert "avoid zombie" not in task.options()


def test_explore_completes_on_something_new(task, clear_view, refresh):
    px, py = clear_view(task)
    task.begin_option("explore")
    assert task.option_progress("explore") == (0, 1)
    assert task.option_action("explore") is not None
    task._env._world[(px + 3, py + 2)] = "diamond"
    refresh(task)
    assert task.option_progress("explore") == (1, 1)


def test_skills_never_walk_into_lava(task, clear_view, refresh):
    px, py = clear_view(task)
    world = task._env._world
    for y in range(py - 5, py + 6):
        world[(px + 1, y)] = "lava"
    world[(px + 3, py)] = "tree"  # behind the lava wall: unreachable
    refresh(task)
    assert task.option_action("collect wood") != ACTIONS.index("move_right")
    task.begin_option("explore")
    for _ in range(5):
        action = task.option_action("explore")
        assert action != ACTIONS.index("move_right")
        task.step(action)
        assert task._env._player.health > 0
