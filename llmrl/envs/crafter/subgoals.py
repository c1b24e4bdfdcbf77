"""The Crafter sub-goal vocabulary, the tech tree it follows, and which sub-goals are admissible in a state.

Sub-goals are the 22 achievements as phrases (``collect_drink`` reads "drink water", the rest replace "_" with
" ") plus three that are not achievements:

* ``"sleep"``: rest until energy rises (the survival need; "wake up" is the achievement of sleeping until rested),
* ``"avoid zombie"``: get away from a zombie that is adjacent or near (Manhattan distance <= 3),
* ``"explore"``: walk until something not in view before comes into view (what to do when the resource the next
  step needs is not visible; the scripted skills of the other sub-goals only act on what the agent sees).

Eating and drinking need no extra sub-goals: "eat cow", "eat plant" and "drink water" are achievements whose
counters rise on every bite or sip, so they complete exactly when the vital stat is topped up.

The recipes below copy crafter's ``data.yaml`` so that the planner (which runs in the teacher service) needs no
crafter import; ``tests/envs/crafter`` checks them against the installed crafter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmrl.envs.crafter.score import ACHIEVEMENTS

if TYPE_CHECKING:
    from llmrl.envs.crafter.text import StateView

# Inventory slots in crafter's order (data.yaml ``items``); the first four are the vital stats.
ITEMS: tuple[str, ...] = (
    "health", "food", "drink", "energy", "sapling", "wood", "stone", "coal", "iron", "diamond",
    "wood_pickaxe", "stone_pickaxe", "iron_pickaxe", "wood_sword", "stone_sword", "iron_sword",
)
VITALS: tuple[str, ...] = ITEMS[:4]
ITEM_MAX = 9  # every crafter item and vital stat is capped at 9

SURVIVAL_SUBGOALS: tuple[str, ...] = ("sleep", "avoid zombie", "explore")


def achievement_phrase(achievement: str) -> str:
    return "drink water" if achievement == "collect_drink" else achievement.replace("_", " ")


# Tech-tree order first (the order the planner pursues them), then the side achievements, then survival.
SUBGOALS: tuple[str, ...] = (
    "collect wood", "place table", "make wood pickaxe", "make wood sword", "collect stone", "place stone",
    "make stone pickaxe", "make stone sword", "place furnace", "collect coal", "collect iron", "make iron pickaxe",
    "make iron sword", "collect diamond", "collect sapling", "place plant", "eat plant", "drink water", "eat cow",
    "defeat zombie", "defeat skeleton", "wake up",
) + SURVIVAL_SUBGOALS

ACHIEVEMENT_OF: dict[str, str] = {achievement_phrase(a): a for a in ACHIEVEMENTS}  # sub-goal -> crafter name
SUBGOAL_INDEX: dict[str, int] = {s: i + 1 for i, s in enumerate(SUBGOALS)}  # 0 is reserved for "no sub-goal"
TECH_TREE: tuple[str, ...] = SUBGOALS[:14]

# Sub-goals achieved by facing a target and pressing "do": sub-goal -> (kind in the text view, tools needed).
# "collect sapling" targets grass (10 % of "do"s on grass yield a sapling).
DO_TARGETS: dict[str, tuple[str, dict[str, int]]] = {
    "collect wood": ("tree", {}),
    "collect stone": ("stone", {"wood_pickaxe": 1}),
    "collect coal": ("coal", {"wood_pickaxe": 1}),
    "collect iron": ("iron", {"stone_pickaxe": 1}),
    "collect diamond": ("diamond", {"iron_pickaxe": 1}),
    "collect sapling": ("grass", {}),
    "drink water": ("water", {}),
    "eat cow": ("cow", {}),
    "eat plant": ("ripe plant", {}),
    "defeat zombie": ("zombie", {}),
    "defeat skeleton": ("skeleton", {}),
}

# Sub-goals that are one "place_*" action: sub-goal -> (crafter name, items used, materials it can be placed on).
PLACE: dict[str, tuple[str, dict[str, int], tuple[str, ...]]] = {
    "place stone": ("stone", {"stone": 1}, ("grass", "sand", "path", "water", "lava")),
    "place table": ("table", {"wood": 2}, ("grass", "sand", "path")),
    "place furnace": ("furnace", {"stone": 4}, ("grass", "sand", "path")),
    "place plant": ("plant", {"sapling": 1}, ("grass",)),
}

# Sub-goals that are one "make_*" action: sub-goal -> (crafter item, items used, stations within one cell).
MAKE: dict[str, tuple[str, dict[str, int], tuple[str, ...]]] = {
    "make wood pickaxe": ("wood_pickaxe", {"wood": 1}, ("table",)),
    "make stone pickaxe": ("stone_pickaxe", {"wood": 1, "stone": 1}, ("table",)),
    "make iron pickaxe": ("iron_pickaxe", {"wood": 1, "coal": 1, "iron": 1}, ("table", "furnace")),
    "make wood sword": ("wood_sword", {"wood": 1}, ("table",)),
    "make stone sword": ("stone_sword", {"wood": 1, "stone": 1}, ("table",)),
    "make iron sword": ("iron_sword", {"wood": 1, "coal": 1, "iron": 1}, ("table", "furnace")),
}

# The distance words of the text view that count as "close" for the zombie sub-goals.
CLOSE_DISTANCES: tuple[str, ...] = ("adjacent", "near")


def has_items(view: StateView, uses: dict[str, int]) -> bool:
    return all(view.count(item) >= n for item, n in uses.items())


def is_admissible(subgoal: str, view: StateView) -> bool:
    """Whether ``subgoal``'s prerequisites hold in ``view``: the tools and items it needs are held, and what it acts
    on (its target, or the stations it must stand next to) is in sight. "explore" is always admissible."""
    if subgoal in DO_TARGETS:
        kind, tools = DO_TARGETS[subgoal]
        return view.sees(kind) and has_items(view, tools)
    if subgoal in PLACE:
        _, uses, _ = PLACE[subgoal]
        return has_items(view, uses) and (subgoal != "place plant" or view.sees("grass"))
    if subgoal in MAKE:
        _, uses, stations = MAKE[subgoal]
        return has_items(view, uses) and all(view.sees(s) for s in stations)
    if subgoal in ("wake up", "sleep"):
        return view.sleeping or view.count("energy") < ITEM_MAX
    if subgoal == "avoid zombie":
        return view.distance("zombie") in CLOSE_DISTANCES
    if subgoal == "explore":
        return True
    raise ValueError(f"unknown Crafter sub-goal {subgoal!r}")


def admissible_subgoals(view: StateView) -> tuple[str, ...]:
    """The admissible sub-goals in ``view``, in ``SUBGOALS`` order."""
    return tuple(s for s in SUBGOALS if is_admissible(s, view))
