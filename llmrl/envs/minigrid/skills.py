"""Scripted skills: turn the first unfinished step of a plan into one primitive MiniGrid action.

Navigation is a breadth-first search over poses (x, y, facing) with the actions left/right/forward, on the
agent's *known* map: walls, lava, keys, balls, boxes and closed doors are obstacles, unseen cells are never
targets. If the known map has no path to an object the agent has seen, the search is repeated treating
unseen cells as free: that is safe because the cell in front of the agent is always visible, so the agent
never steps into a cell it does not know; the plan is recomputed every step anyway. Grids are at most
10x10, so a search visits at most 400 poses.

Each step has a "done" predicate on the current state; ``first_unfinished_action`` acts on the first step
that is not done, ``progress`` counts the done steps before it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from llmrl.envs.minigrid.knowledge import DOOR, EMPTY, GOAL, UNSEEN, WALL, Knowledge
from llmrl.envs.minigrid.plans import Step, split_target

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
DX = (1, 0, -1, 0)
DY = (0, 1, 0, -1)
FLOOR = OBJECT_TO_IDX["floor"]
_OPEN = 0  # door state index of an open door


# ---- navigation: breadth-first search over poses ------------------------------------------------------
#
# Maps are padded with a border of _PAD never-walkable, never-unseen cells so that neighbour lookups need no
# bounds checks. Cell (x, y) has flat index (y + _PAD) * padded_width + x + _PAD and pose (cell, facing) has
# index cell * 4 + facing. What depends only on knowledge (layers, goal poses) is built with numpy once per
# knowledge version and kept in ``kn.memo``; the search itself is a tight loop over at most ~400 poses.

_PAD = 2  # the explore test looks two cells ahead


def _padded_width(kn: Knowledge) -> int:
    return kn.width + 2 * _PAD


def _num_poses(kn: Knowledge) -> int:
    return (kn.width + 2 * _PAD) * (kn.height + 2 * _PAD) * 4


def _pose(kn: Knowledge, x: int, y: int, d: int) -> int:
    return ((y + _PAD) * _padded_width(kn) + x + _PAD) * 4 + d


def _poses_from(kn: Knowledge, mask: np.ndarray) -> bytearray:
    """(width, height, 4) boolean pose mask -> a goal table indexed by pose."""
    full = np.zeros((kn.width + 2 * _PAD, kn.height + 2 * _PAD, 4), dtype=np.uint8)
    full[_PAD:-_PAD, _PAD:-_PAD] = mask
    return bytearray(full.transpose(1, 0, 2).tobytes())


def _layers(kn: Knowledge) -> dict[str, np.ndarray | bytes]:
    """Boolean layers of the known map, padded by _PAD cells (indexed [x + _PAD, y + _PAD])."""
    layers = kn.memo.get("layers")
    if layers is None:
        types, states = kn.cells[:, :, 0], kn.cells[:, :, 2]
        open_door = (types == DOOR) & (states == _OPEN)
        shape = (kn.width + 2 * _PAD, kn.height + 2 * _PAD)
        walk, unseen, clear = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
        inner = (slice(_PAD, -_PAD), slice(_PAD, -_PAD))
        # The agent's own cell needs no special case: it stands on floor, an open door or the goal.
        walk[inner] = (types == EMPTY) | (types == FLOOR) | (types == GOAL) | open_door
        unseen[inner] = types == UNSEEN
        # See-through cells: everything but walls and closed doors (MiniGrid's see_behind()).
        clear[inner] = (types != UNSEEN) & (types != WALL) & ((types != DOOR) | open_door)
        layers = {
            "walk_cells": walk[inner],  # unpadded, indexed [x, y]
            "unseen": unseen,
            "clear": clear,
            "walk": walk.T.tobytes(),  # flat cell index order
            "walk_optimistic": (walk | unseen).T.tobytes(),
        }
        kn.memo["layers"] = layers
    return layers


def _search(kn: Knowledge, goal: bytes | bytearray, walk: bytes) -> int | None:
    """First action of a shortest left/right/forward path from the agent's pose to a pose with ``goal[p]``."""
    pw = _padded_width(kn)
    step = (1, pw, -1, -pw)  # cell index change of moving forward, per facing
    start = _pose(kn, kn.pos[0], kn.pos[1], kn.dir)
    first = bytearray(b"\xff") * len(goal)  # 255: unvisited; else the path's first action (254: start)
    first[start] = 254
    queue = deque([start])
    while queue:
        p = queue.popleft()
        came = first[p]
        d = p & 3
        ahead = (p >> 2) + step[d]
        base = p - d
        for action, q in (
            (FORWARD, ahead * 4 + d if walk[ahead] else -1),
            (LEFT, base + ((d + 3) & 3)),
            (RIGHT, base + ((d + 1) & 3)),
        ):
            if q < 0 or first[q] != 255:
                continue
            act = action if came == 254 else came
            if goal[q]:
                return act
            first[q] = act
            queue.append(q)
    return None


def _navigate(kn: Knowledge, goal: bytes | bytearray, optimistic: bool = True) -> int | None:
    layers = _layers(kn)
    action = _search(kn, goal, layers["walk"])
    if action is None and optimistic:
        action = _search(kn, goal, layers["walk_optimistic"])
    return action


def _facing_goal(kn: Knowledge, cells: frozenset[tuple[int, int]] | list[tuple[int, int]]) -> bytearray:
    """Goal poses: next to one of ``cells`` and facing it."""
    goal = bytearray(_num_poses(kn))
    for tx, ty in cells:
        for d in range(4):
            x, y = tx - DX[d], ty - DY[d]
            if 0 <= x < kn.width and 0 <= y < kn.height:
                goal[_pose(kn, x, y, d)] = 1
    return goal


# ---- objects named in plans ---------------------------------------------------------------------------


def _spec(kn: Knowledge, target: str) -> tuple[int, int | None] | None:
    """Plan object name -> (type idx, colour idx or None for any colour); None if it names nothing known."""
    colour_word, kind = split_target(target)
    if kind not in OBJECT_TO_IDX:
        return None
    if colour_word is None:
        return OBJECT_TO_IDX[kind], None
    colour = kn.colour_index(colour_word)
    return None if colour is None else (OBJECT_TO_IDX[kind], colour)


def _locate(kn: Knowledge, target: str) -> frozenset[tuple[int, int]]:
    key = ("locate", target)
    found = kn.memo.get(key)
    if found is None:
        spec = _spec(kn, target)
        found = frozenset()
        if spec is not None:
            kind, colour = spec
            hit = kn.cells[:, :, 0] == kind
            if colour is not None:
                hit &= kn.cells[:, :, 1] == colour
            found = frozenset((int(x), int(y)) for x, y in zip(*np.nonzero(hit)))
        kn.memo[key] = found
    return found


def _holding(kn: Knowledge, target: str) -> bool:
    if kn.carrying is None:
        return False
    spec = _spec(kn, target)
    return spec is not None and kn.carrying[0] == spec[0] and (spec[1] is None or kn.carrying[1] == spec[1])


def _front(kn: Knowledge) -> tuple[int, int]:
    return kn.pos[0] + DX[kn.dir], kn.pos[1] + DY[kn.dir]


def _facing(kn: Knowledge, target: str) -> bool:
    return _front(kn) in _locate(kn, target)


def _approach(kn: Knowledge, target: str) -> int | None:
    """Walk to a pose next to and facing ``target`` (onto it, for the goal square)."""
    key = ("approach", target)
    goal = kn.memo.get(key)
    if goal is None:
        cells = _locate(kn, target)
        if split_target(target)[1] == "goal":
            goal = bytearray(_num_poses(kn))
            for x, y in cells:
                for d in range(4):
                    goal[_pose(kn, x, y, d)] = 1
        else:
            goal = _facing_goal(kn, cells)
        kn.memo[key] = goal
    return _navigate(kn, goal) if any(goal) else None


# ---- explore ------------------------------------------------------------------------------------------


def _reveal_goal(kn: Knowledge) -> bytearray:
    """Poses from which some unseen cell becomes visible.

    From any pose MiniGrid shows the cell in front, the two cells beside the agent and, when the front cell
    is see-through, the one beyond it; a pose qualifies when one of those is unseen. Unseen cells behind
    walls or closed doors are next to no see-through cell, so they never attract the agent.
    """
    goal = kn.memo.get("reveal")
    if goal is None:
        layers = _layers(kn)
        unseen, clear = layers["unseen"], layers["clear"]
        w, h = kn.width, kn.height

        def shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
            return a[_PAD + dx : _PAD + dx + w, _PAD + dy : _PAD + dy + h]

        poses = np.zeros((w, h, 4), dtype=bool)
        for d in range(4):
            fx, fy, rx, ry = DX[d], DY[d], -DY[d], DX[d]
            poses[:, :, d] = (
                shifted(unseen, fx, fy)
                | shifted(unseen, rx, ry)
                | shifted(unseen, -rx, -ry)
                | (shifted(clear, fx, fy) & shifted(unseen, 2 * fx, 2 * fy))
            )
        goal = _poses_from(kn, poses)
        kn.memo["reveal"] = goal
    return goal


def _explore_action(kn: Knowledge) -> int | None:
    """Go to the nearest pose that reveals an unseen cell; None when nothing reachable is left to see."""
    if "explore" not in kn.pose_memo:
        kn.pose_memo["explore"] = _navigate(kn, _reveal_goal(kn), optimistic=False)
    return kn.pose_memo["explore"]


# ---- drop ---------------------------------------------------------------------------------------------


def _component(walk: np.ndarray, start: tuple[int, int], blocked: tuple[int, int] | None = None) -> set:
    w, h = walk.shape
    seen = {start}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        for d in range(4):
            n = (x + DX[d], y + DY[d])
            if 0 <= n[0] < w and 0 <= n[1] < h and n not in seen and n != blocked and walk[n]:
                seen.add(n)
                queue.append(n)
    return seen


def _drop_goals(kn: Knowledge) -> tuple[bytearray, bytearray]:
    """Poses facing a good drop cell, and (fallback) poses facing any empty cell.

    A good cell is empty, not next to a door and not a cut point of the known floor: a key dropped in a
    doorway or a one-cell passage would block the next step of the plan. In a room too cramped for that,
    any empty cell will do.
    """
    goals = kn.memo.get("drop")
    if goals is None:
        walk = _layers(kn)["walk_cells"]
        types = kn.cells[:, :, 0]
        w, h = kn.width, kn.height
        region = _component(walk, kn.pos)  # the agent moves within it until knowledge changes
        empty = [c for c in region if types[c] == EMPTY]

        def good(c: tuple[int, int]) -> bool:
            if any(0 <= c[0] + DX[d] < w and 0 <= c[1] + DY[d] < h and types[c[0] + DX[d], c[1] + DY[d]] == DOOR
                   for d in range(4)):
                return False
            rest = next((r for r in region if r != c), None)
            return rest is None or len(_component(walk, rest, blocked=c)) == len(region) - 1

        goals = (_facing_goal(kn, [c for c in empty if good(c)]), _facing_goal(kn, empty))
        kn.memo["drop"] = goals
    return goals


def _drop_action(kn: Knowledge) -> int | None:
    here = _pose(kn, kn.pos[0], kn.pos[1], kn.dir)
    for goal in _drop_goals(kn):
        if goal[here]:
            return DROP
        action = _navigate(kn, goal, optimistic=False)
        if action is not None:
            return action
    return None


# ---- steps --------------------------------------------------------------------------------------------


def step_done(step: Step, kn: Knowledge, following: Step | None = None) -> bool:
    """Whether ``step`` is achieved in the current state (``following``: the plan's next step, for explore)."""
    verb, target = step.verb, step.target
    if verb == "explore":
        # Exploring is over once the next step has something to act on, or nothing is left to see.
        if following is not None and following.target is not None:
            if _locate(kn, following.target) or _holding(kn, following.target):
                return True
        return _explore_action(kn) is None
    if target is None:
        return False
    if verb == "go to":
        if split_target(target)[1] == "goal":
            return kn.pos in _locate(kn, target)
        return _facing(kn, target) or _holding(kn, target)
    if verb == "pick up":
        return _holding(kn, target)
    if verb == "drop":
        return not _holding(kn, target)
    if verb == "open":
        return any(kn.cells[x, y, 0] == DOOR and kn.cells[x, y, 2] == _OPEN for x, y in _locate(kn, target))
    return False


def step_action(step: Step, kn: Knowledge) -> int | None:
    """The primitive action that makes progress on ``step`` now; None if the skill cannot act."""
    verb, target = step.verb, step.target
    if verb == "explore":
        return _explore_action(kn)
    if target is None:
        return None
    if verb == "go to":
        return _approach(kn, target)
    if verb == "pick up":
        if kn.carrying is not None:
            return None  # MiniGrid holds one object: the plan has to drop first
        return PICKUP if _facing(kn, target) else _approach(kn, target)
    if verb == "drop":
        return _drop_action(kn)
    if verb == "open":
        return TOGGLE if _facing(kn, target) else _approach(kn, target)
    return None


def _first_unfinished(steps: Sequence[Step], kn: Knowledge) -> int:
    for i, step in enumerate(steps):
        if not step_done(step, kn, steps[i + 1] if i + 1 < len(steps) else None):
            return i
    return len(steps)


def first_unfinished_action(steps: Sequence[Step], kn: Knowledge) -> int | None:
    """Action of the first step not yet done (0 left, 1 right, 2 forward, 3 pickup, 4 drop, 5 toggle);
    None when the plan is finished or its current step cannot act."""
    i = _first_unfinished(steps, kn)
    return step_action(steps[i], kn) if i < len(steps) else None


def progress(steps: Sequence[Step], kn: Knowledge) -> tuple[int, int]:
    """(steps done before the first unfinished one, total steps)."""
    return _first_unfinished(steps, kn), len(steps)
