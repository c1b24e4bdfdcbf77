"""Scripted Crafter skills: the primitive action (a crafter action name) that makes progress on a sub-goal now.

These play the role of LLM4Teach's mediator skills: the teacher picks sub-goals, the skills turn them into
actions. They only use what is in the player's view (``LocalWindow``): a sub-goal whose target is out of sight
has no action (the planner says "explore" then). Movement goes by breadth-first search over safe walkable cells,
never into lava; in Crafter a move toward a blocked cell only turns the player, which is how it faces a target.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from llmrl.envs.crafter.subgoals import DO_TARGETS, ITEM_MAX, MAKE, PLACE
from llmrl.envs.crafter.text import NEAR_MAX_STEPS
from llmrl.envs.crafter.world import MOVE_ACTION, STEPS, WALKABLE, LocalWindow, Pos


def _add(a: Pos, b: Pos) -> Pos:
    return (a[0] + b[0], a[1] + b[1])


def _manhattan(a: Pos, b: Pos) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def _holds(window: LocalWindow, items: dict[str, int]) -> bool:
    return all(window.inventory.get(i, 0) >= n for i, n in items.items())


def _greedy_step(window: LocalWindow, target: Pos) -> str | None:
    """A step onto a safe free cell that shortens the distance to ``target`` (long axis first); bumping into a
    wall would repeat forever, so None when there is none."""
    dx, dy = target[0] - window.player[0], target[1] - window.player[1]
    axes = [(int(np.sign(dx)), 0), (0, int(np.sign(dy)))]
    if abs(dy) > abs(dx):
        axes.reverse()
    for step in axes:
        if step != (0, 0) and window.passable(_add(window.player, step)):
            return MOVE_ACTION[step]
    return None


def _walk_to(window: LocalWindow, is_goal: Callable[[Pos], bool], fallback: Pos | None) -> str | None:
    """First step of a shortest safe path to the nearest goal cell. If no goal cell is reachable in view, head
    for the reachable cell closest to ``fallback`` (around the obstacle), else step greedily toward it."""
    best: tuple[tuple[int, int, int], Pos] | None = None
    closest: tuple[tuple[int, int, int, int], Pos] | None = None
    for pos, (dist, first) in window.paths().items():
        if dist == 0:
            continue
        if is_goal(pos):
            key = (dist, pos[1], pos[0])
            if best is None or key < best[0]:
                best = (key, first)
        elif fallback is not None:
            ckey = (_manhattan(pos, fallback), dist, pos[1], pos[0])
            if closest is None or ckey < closest[0]:
                closest = (ckey, first)
    if best is not None:
        return MOVE_ACTION[best[1]]
    if fallback is None:
        return None
    if closest is not None and closest[0][0] < _manhattan(window.player, fallback):
        return MOVE_ACTION[closest[1]]
    return _greedy_step(window, fallback)


def face_and_do(window: LocalWindow, kind: str) -> str | None:
    """Go next to the nearest ``kind``, face it and press "do"."""
    if window.kind_at(window.front()) == kind:
        return "do"
    targets = set(window.cells_of(kind))
    if not targets:
        return None
    for step in STEPS:
        if _add(window.player, step) in targets:
            return MOVE_ACTION[step]  # turns toward a blocked target (steps onto grass, then faces the next cell)
    nearest = min(targets, key=lambda p: (_manhattan(p, window.player), p[1], p[0]))
    return _walk_to(window, lambda p: any(_add(p, s) in targets for s in STEPS), nearest)


def stand_near_and(window: LocalWindow, stations: tuple[str, ...], action: str) -> str | None:
    """Take ``action`` where every station is within one cell (crafter's ``nearby`` is the 3x3 square)."""

    def near_all(pos: Pos) -> bool:
        around = {window.material.get((pos[0] + i, pos[1] + j)) for i in (-1, 0, 1) for j in (-1, 0, 1)}
        return all(s in around for s in stations)

    if near_all(window.player):
        return action
    cells = [p for p in window.material if window.material[p] in stations]
    if not cells:
        return None
    nearest = min(cells, key=lambda p: (_manhattan(p, window.player), p[1], p[0]))
    return _walk_to(window, near_all, nearest)


def place_in_front(window: LocalWindow, name: str, where: tuple[str, ...]) -> str | None:
    """Place ``name`` on the faced cell, or turn / step so that a valid cell is faced next."""

    def valid(pos: Pos) -> bool:
        return window.material.get(pos) in where and pos not in window.creature

    if valid(window.front()):
        return f"place_{name}"
    neighbours = [(s, _add(window.player, s)) for s in STEPS]
    for step, cell in neighbours:  # a valid cell we cannot walk onto (water): moving toward it only turns us
        if valid(cell) and window.material[cell] not in WALKABLE and window.material[cell] != "lava":
            return MOVE_ACTION[step]
    for step, cell in neighbours:  # a walkable cell with a valid one behind it: after the step we face that one
        if window.passable(cell) and valid(_add(cell, step)):
            return MOVE_ACTION[step]
    return None


def avoid(window: LocalWindow, kind: str) -> str | None:
    """Step to the safe neighbouring cell farthest from every ``kind``, if that gains distance."""
    threats = window.cells_of(kind)
    if not threats:
        return None

    def clearance(pos: Pos) -> tuple[int, int]:
        # Manhattan distance first; among equals, straight away (larger Euclidean) beats sideways.
        return min((_manhattan(pos, t), (pos[0] - t[0]) ** 2 + (pos[1] - t[1]) ** 2) for t in threats)

    here = clearance(window.player)[0]
    options = [(clearance(_add(window.player, s)), -i, s) for i, s in enumerate(STEPS)
               if window.passable(_add(window.player, s))]
    if options:
        (best_clearance, _), _, step = max(options)
        if best_clearance > here:
            return MOVE_ACTION[step]
    return None


class Explorer:
    """Walk straight on; when blocked, turn right, else left, else back. One decision per step, however often
    it is asked, because it keeps its heading as state."""

    def __init__(self, rng: np.random.Generator):
        self.heading: Pos = STEPS[int(rng.integers(len(STEPS)))]
        self._decided: tuple[int, str | None] | None = None

    def action(self, window: LocalWindow, step_count: int) -> str | None:
        if self._decided is not None and self._decided[0] == step_count:
            return self._decided[1]
        i = STEPS.index(self.heading)
        choice = None
        for turn in (0, 1, 3, 2):
            step = STEPS[(i + turn) % len(STEPS)]
            if window.passable(_add(window.player, step)):
                self.heading = step
                choice = MOVE_ACTION[step]
                break
        self._decided = (step_count, choice)
        return choice


def skill_action(window: LocalWindow, subgoal: str, explorer: Explorer, step_count: int) -> str | None:
    """The crafter action name the scripted skill for ``subgoal`` takes now, or None.

    Reflex: every skill first fights a zombie that stands next to the player. It hits every few steps whatever
    the player does and follows as fast as the player walks, so finishing it (a few hits) is on the way to any
    sub-goal, "avoid zombie" included; sub-goals are re-chosen only every K steps or on completion.
    """
    if window.distance_to_nearest("zombie") == 1:
        return face_and_do(window, "zombie")
    if subgoal in DO_TARGETS:
        kind, tools = DO_TARGETS[subgoal]
        return face_and_do(window, kind) if _holds(window, tools) else None
    if subgoal in PLACE:
        name, uses, where = PLACE[subgoal]
        return place_in_front(window, name, where) if _holds(window, uses) else None
    if subgoal in MAKE:
        item, uses, stations = MAKE[subgoal]
        return stand_near_and(window, stations, f"make_{item}") if _holds(window, uses) else None
    if subgoal in ("sleep", "wake up"):
        # A zombie hits a sleeper for 7 instead of 2, and a skeleton shoots whoever lies in its range: never lie
        # down (again, once woken by a hit) near either.
        zombie = window.distance_to_nearest("zombie")
        if (zombie is not None and zombie <= NEAR_MAX_STEPS) or window.cells_of("skeleton"):
            return None
        return "sleep" if window.sleeping or window.inventory["energy"] < ITEM_MAX else None
    if subgoal == "avoid zombie":
        return avoid(window, "zombie")
    if subgoal == "explore":
        return explorer.action(window, step_count)
    raise ValueError(f"unknown Crafter sub-goal {subgoal!r}")
