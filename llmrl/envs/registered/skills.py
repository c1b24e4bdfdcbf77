"""Plan steps on the historical map: MiniGrid's skills (``llmrl.envs.minigrid.skills``) plus put-next.

A plan is MiniGrid's comma-separated steps, where a step may also be ``put X next to Y``: carry X (picking
it up first, dropping anything else) to a pose facing an empty cell beside Y, and drop it there. Done when X
lies on a cell next to Y (up, down, left or right: BabyAI's ``pos_next_to``) and is no longer carried. Works in
any layout the map knows (multi-room: navigation goes through open doors and searches unseen cells optimistically).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmrl.envs.minigrid import skills as mg
from llmrl.envs.minigrid.knowledge import DOOR, EMPTY, Knowledge
from llmrl.envs.minigrid.plans import Step, parse_plan, parse_target

_OPEN = 0  # MiniGrid's door state index of an open door
_PUT = re.compile(r"^\s*put (.+?) (?:next to|near) (.+?)\s*$")


@dataclass(frozen=True, slots=True)
class PutNext:
    """``put <move> next to <fixed>``; both canonical object names (``"red ball"``)."""

    move: str
    fixed: str


def parse(plan: str) -> tuple[Step | PutNext, ...] | None:
    """MiniGrid's ``parse_plan`` per step, with ``put X next to Y`` steps; None if a step is not understood."""
    steps: list[Step | PutNext] = []
    for part in plan.lower().split(","):
        put = _PUT.match(part.replace("<", " ").replace(">", " "))
        if put:
            move, fixed = parse_target(put.group(1)), parse_target(put.group(2))
            if move is None or fixed is None:
                return None
            steps.append(PutNext(move, fixed))
            continue
        parsed = parse_plan(part)
        if parsed is None:
            return None
        steps += parsed
    return tuple(steps) or None


def _beside(kn: Knowledge, target: str) -> set[tuple[int, int]]:
    return {(x + dx, y + dy) for x, y in mg._locate(kn, target) for dx, dy in zip(mg.DX, mg.DY)}


def put_done(step: PutNext, kn: Knowledge) -> bool:
    return not mg._holding(kn, step.move) and bool(mg._locate(kn, step.move) & _beside(kn, step.fixed))


def put_action(step: PutNext, kn: Knowledge) -> int | None:
    if put_done(step, kn):
        return None
    if not mg._holding(kn, step.move):
        if kn.carrying is not None:
            return mg.step_action(Step("drop", "object"), kn)  # the drop skill ignores its target
        return mg.step_action(Step("pick up", step.move), kn)
    free = [(x, y) for x, y in _beside(kn, step.fixed)
            if 0 <= x < kn.width and 0 <= y < kn.height and kn.cells[x, y, 0] == EMPTY and (x, y) != kn.pos]
    goal = mg._facing_goal(kn, free)
    if goal[mg._pose(kn, kn.pos[0], kn.pos[1], kn.dir)]:
        return mg.DROP
    return mg._navigate(kn, goal) if any(goal) else None


def _shut(kn: Knowledge, target: str) -> list[tuple[int, int]]:
    return [(x, y) for x, y in mg._locate(kn, target) if kn.cells[x, y, 0] == DOOR and kn.cells[x, y, 2] != _OPEN]


def open_done(step: Step, kn: Knowledge) -> bool:
    """Every known door of the name is open. MiniGrid's "any is open" would stop at the first of two doors of one
    colour (MultiRoom) and its skill could walk back to toggle the open one shut."""
    return bool(mg._locate(kn, step.target)) and not _shut(kn, step.target)


def open_action(step: Step, kn: Knowledge) -> int | None:
    shut = _shut(kn, step.target)
    if mg._front(kn) in shut:
        return mg.TOGGLE
    goal = mg._facing_goal(kn, shut)
    return mg._navigate(kn, goal) if any(goal) else None


def _done(steps: tuple[Step | PutNext, ...], i: int, kn: Knowledge) -> bool:
    step = steps[i]
    if isinstance(step, PutNext):
        return put_done(step, kn)
    if step.verb == "open" and step.target is not None:
        return open_done(step, kn)
    following = steps[i + 1] if i + 1 < len(steps) else None
    if step.verb == "go to" and isinstance(following, Step) and following.verb == "open" and following.target == step.target:
        # The open skill walks to a shut door itself; "go to" would pick the nearest door of the name, maybe an open
        # one, and the two steps would pull the agent back and forth.
        return True
    following = steps[i + 1] if i + 1 < len(steps) and isinstance(steps[i + 1], Step) else None
    return mg.step_done(step, kn, following)


def _first_unfinished(steps: tuple[Step | PutNext, ...], kn: Knowledge) -> int:
    # Steps are judged on the current state, so an earlier one ("pick up the ball") looks undone again once the
    # last one is done (the ball lies next to the box): a plan whose last step is done is finished.
    if _done(steps, len(steps) - 1, kn):
        return len(steps)
    return next((i for i in range(len(steps)) if not _done(steps, i, kn)), len(steps))


def first_unfinished_action(steps: tuple[Step | PutNext, ...], kn: Knowledge) -> int | None:
    i = _first_unfinished(steps, kn)
    if i >= len(steps):
        return None
    step = steps[i]
    if isinstance(step, PutNext):
        return put_action(step, kn)
    return open_action(step, kn) if step.verb == "open" and step.target is not None else mg.step_action(step, kn)


def progress(steps: tuple[Step | PutNext, ...], kn: Knowledge) -> tuple[int, int]:
    return _first_unfinished(steps, kn), len(steps)
