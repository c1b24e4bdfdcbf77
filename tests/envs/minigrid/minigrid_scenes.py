"""Hand-built MiniGrid scenes for the skill and text tests (ASCII in, a reset ``MiniGridTask`` out)."""

from __future__ import annotations

from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Door, Goal, Key, Lava, Wall

from llmrl.config import EnvConfig
from llmrl.envs.minigrid.adapter import MiniGridTask, make_task

AGENT = ">v<^"  # facing east, south, west, north (MiniGrid's direction order)
OBJECTS = {
    "#": lambda: Wall(),
    ".": lambda: None,
    "k": lambda: Key("yellow"),
    "r": lambda: Key("red"),
    "D": lambda: Door("yellow", is_locked=True),
    "R": lambda: Door("red", is_locked=True),
    "d": lambda: Door("yellow"),  # closed, unlocked
    "o": lambda: Door("yellow", is_open=True),
    "L": lambda: Lava(),
    "G": lambda: Goal(),
    "b": lambda: Ball("red"),
}


def scene(rows: list[str], task: str = "SimpleDoorKey", carrying=None, reveal: bool = True) -> MiniGridTask:
    """A task whose grid is ``rows`` (missing cells are walls). ``reveal``: the agent knows the whole grid;
    otherwise it knows only what it sees from its starting pose."""
    side = max(5, len(rows), max(len(r) for r in rows))
    t = make_task(EnvConfig(name=task, room_min=5, room_max=side), seed=0)
    t.reset()
    raw = t.raw
    side = raw.width  # stock tasks keep their own size; the scene is padded with walls
    grid = Grid(side, side)
    for y in range(side):
        for x in range(side):
            ch = rows[y][x] if y < len(rows) and x < len(rows[y]) else "#"
            if ch in AGENT:
                raw.agent_pos, raw.agent_dir = (x, y), AGENT.index(ch)
                ch = "."
            obj = OBJECTS[ch]()
            grid.set(x, y, obj)
            if isinstance(obj, Door):
                raw.door = obj
    raw.grid = grid
    raw.doors = [obj for obj in grid.grid if isinstance(obj, Door)]
    raw.carrying = carrying
    raw.step_count = 0
    t.knowledge.reset()
    if reveal:
        t.knowledge.observe_all(raw)
    else:
        t.knowledge.observe(raw, raw.gen_obs()["image"])
    return t


def follow(t: MiniGridTask, option: str, limit: int = 60) -> tuple[list[int], list[tuple[int, int]]]:
    """Take the option's actions until it has none; return them and the cells the agent stood on.
    Fails on a forward move into a blocked cell."""
    actions, cells = [], [tuple(t.raw.agent_pos)]
    for _ in range(limit):
        a = t.option_action(option)
        if a is None:
            return actions, cells
        before = tuple(t.raw.agent_pos)
        t.step(a)
        if a == 2:
            assert tuple(t.raw.agent_pos) != before, f"bumped into something at {before} following {option!r}"
        actions.append(a)
        cells.append(tuple(t.raw.agent_pos))
    raise AssertionError(f"{option!r} still acting after {limit} steps")
