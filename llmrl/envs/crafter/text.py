"""The Crafter text view: what the player sees, holds and has achieved, in one short deterministic line.

Example::

    You see: cow near west, tree adjacent north, water far south-east, grass adjacent east. Inventory: wood 2.
    Health 9, food 7, drink 6, energy 8. Achievements: collect wood.

Only the nearest thing of each kind is named, with a coarse distance (adjacent: 1 step; near: 2-3 steps; far:
4 or more, Manhattan) and one of eight compass directions (north = up on screen). The quantisation is what makes
equal strings mean equal best sub-goals: the planner and the admissible sub-goals are functions of exactly this
``StateView``, and ``parse_state_text`` inverts ``render_state_text``. Unlocked achievements are part of the view
because the tech tree cannot be followed from the inventory alone (placing a table or stone leaves no item).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llmrl.envs.crafter.subgoals import ITEMS, SUBGOALS, VITALS

# Kinds named in the text, in the order they are listed: creatures first (they threaten or feed the player),
# then the materials the tech tree needs, then the rest. Sand and path are left out: no sub-goal needs them.
CREATURE_KINDS: tuple[str, ...] = ("zombie", "skeleton", "cow", "ripe plant", "plant")
MATERIAL_KINDS: tuple[str, ...] = (
    "tree", "water", "stone", "coal", "iron", "diamond", "table", "furnace", "lava", "grass",
)
TEXT_KINDS: tuple[str, ...] = CREATURE_KINDS + MATERIAL_KINDS
DISTANCES: tuple[str, ...] = ("adjacent", "near", "far")
DIRECTIONS: tuple[str, ...] = (
    "north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west",
)
NEAR_MAX_STEPS = 3  # Manhattan distance up to which a thing is "near" (and a zombie is worth reacting to)


def distance_word(dx: int, dy: int) -> str:
    d = abs(dx) + abs(dy)
    if d <= 1:
        return "adjacent"
    return "near" if d <= NEAR_MAX_STEPS else "far"


def direction_word(dx: int, dy: int) -> str:
    """Eight-way compass direction of offset (dx, dy); crafter's y grows downwards (south)."""
    if abs(dx) > 2 * abs(dy):
        return "east" if dx > 0 else "west"
    if abs(dy) > 2 * abs(dx):
        return "south" if dy > 0 else "north"
    return ("south" if dy > 0 else "north") + "-" + ("east" if dx > 0 else "west")


def _item_name(item: str) -> str:
    return item.replace("_", " ")


_ITEM_BY_NAME = {_item_name(i): i for i in ITEMS}


@dataclass(frozen=True)
class StateView:
    """Everything the text says, as values. Tuples keep it hashable and its equality exact."""

    seen: tuple[tuple[str, str, str], ...]  # (kind, distance word, direction word), in TEXT_KINDS order
    inventory: tuple[tuple[str, int], ...]  # (crafter item, count) for all ITEMS, in ITEMS order
    sleeping: bool
    unlocked: tuple[str, ...]  # achievement sub-goal phrases, in SUBGOALS order

    @staticmethod
    def build(
        seen: Mapping[str, tuple[str, str]], inventory: Mapping[str, int], sleeping: bool, unlocked: Iterable[str]
    ) -> StateView:
        done = set(unlocked)
        return StateView(
            seen=tuple((k, *seen[k]) for k in TEXT_KINDS if k in seen),
            inventory=tuple((i, int(inventory.get(i, 0))) for i in ITEMS),
            sleeping=bool(sleeping),
            unlocked=tuple(s for s in SUBGOALS if s in done),
        )

    def sees(self, kind: str) -> bool:
        return any(k == kind for k, _, _ in self.seen)

    def distance(self, kind: str) -> str | None:
        return next((d for k, d, _ in self.seen if k == kind), None)

    def count(self, item: str) -> int:
        return next((n for i, n in self.inventory if i == item), 0)

    def has_unlocked(self, subgoal: str) -> bool:
        return subgoal in self.unlocked


def render_state_text(view: StateView) -> str:
    seen = ", ".join(f"{k} {d} {r}" for k, d, r in view.seen) or "nothing"
    held = ", ".join(f"{_item_name(i)} {n}" for i, n in view.inventory if i not in VITALS and n > 0) or "empty"
    vitals = ", ".join(f"{v} {view.count(v)}" for v in VITALS)
    parts = [f"You see: {seen}.", f"Inventory: {held}.", vitals[0].upper() + vitals[1:] + "."]
    if view.sleeping:
        parts.append("Sleeping.")
    parts.append(f"Achievements: {', '.join(view.unlocked) or 'none'}.")
    return " ".join(parts)


_TEXT_RE = re.compile(
    r"^You see: (?P<seen>.*?)\. Inventory: (?P<held>.*?)\. (?P<vitals>Health \d+, food \d+, drink \d+, energy \d+)\."
    r"(?P<sleeping> Sleeping\.)? Achievements: (?P<done>.*?)\.$"
)
_SEEN_RE = re.compile(rf"^(?P<kind>.+) (?P<dist>{'|'.join(DISTANCES)}) (?P<dir>{'|'.join(DIRECTIONS)})$")


def parse_state_text(text: str) -> StateView:
    """Invert ``render_state_text``; raises ValueError on any text it did not produce."""
    m = _TEXT_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not a Crafter state text: {text!r}")
    seen: dict[str, tuple[str, str]] = {}
    if m["seen"] != "nothing":
        for part in m["seen"].split(", "):
            s = _SEEN_RE.match(part)
            if s is None or s["kind"] not in TEXT_KINDS:
                raise ValueError(f"bad sighting {part!r} in Crafter state text")
            seen[s["kind"]] = (s["dist"], s["dir"])
    inventory: dict[str, int] = {}
    if m["held"] != "empty":
        for part in m["held"].split(", "):
            name, _, count = part.rpartition(" ")
            if name not in _ITEM_BY_NAME or not count.isdigit():
                raise ValueError(f"bad inventory entry {part!r} in Crafter state text")
            inventory[_ITEM_BY_NAME[name]] = int(count)
    for part in m["vitals"].split(", "):
        name, _, count = part.partition(" ")
        inventory[name.lower()] = int(count)
    unlocked = [] if m["done"] == "none" else m["done"].split(", ")
    unknown = [u for u in unlocked if u not in SUBGOALS]
    if unknown:
        raise ValueError(f"unknown achievements {unknown} in Crafter state text")
    return StateView.build(seen, inventory, m["sleeping"] is not None, unlocked)
