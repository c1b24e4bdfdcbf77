"""The MiniGrid tasks: LLM4Teach's four door-and-key rooms (written fresh) and the stock ones we reuse.

LLM4Teach's tasks put a room of random size (each side drawn from room_min..room_max) in the top-left
corner of a room_max x room_max grid, with a locked exit door in one of its walls. The episode ends with
reward ``1 - 0.9 * steps / max_steps`` as soon as the door is opened; the agent sees a small egocentric
view (3 cells by default) and must remember what it saw. TwoDoor is the large one: a room of side 20 with two
locked doors in opposite walls, either of which solves it.

Stock tasks (``MiniGrid-DoorKey-*``, ``BabyAI-GoToRedBallNoDists-v0``) are built with ``gymnasium.make``
and keep their own ``max_steps`` and 7-cell view: those are what published baselines use, so numbers stay
comparable, and their rooms are laid out for a 7-cell view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gymnasium
import minigrid  # noqa: F401 - importing it registers the stock MiniGrid and BabyAI ids
from minigrid.core.constants import COLOR_NAMES
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Door, Key, Lava
from minigrid.minigrid_env import MiniGridEnv

from llmrl.config import EnvConfig

# The wall the exit door goes in.
_WALLS = ("east", "south", "west", "north")
# Layout rejection sampling: a valid layout exists for every room of side >= 5, so this only bounds bad luck.
_MAX_LAYOUT_TRIES = 200


def _open_the_door() -> str:
    return "open the door"


@dataclass(frozen=True)
class TaskSpec:
    """How the adapter treats a task: what the text names colours as, and where the env comes from."""

    name: str
    gym_id: str | None  # stock tasks: the gymnasium id; None for LLM4Teach tasks built here
    colours: str  # "none": one key, one door, colours carry no information; "abstract": color1/color2; "real"


TASK_SPECS: dict[str, TaskSpec] = {
    "SimpleDoorKey": TaskSpec("SimpleDoorKey", None, "none"),
    "LavaDoorKey": TaskSpec("LavaDoorKey", None, "none"),
    "ColoredDoorKey": TaskSpec("ColoredDoorKey", None, "abstract"),
    "TwoDoor": TaskSpec("TwoDoor", None, "none"),
    "DoorKey-5x5": TaskSpec("DoorKey-5x5", "MiniGrid-DoorKey-5x5-v0", "none"),
    "DoorKey-8x8": TaskSpec("DoorKey-8x8", "MiniGrid-DoorKey-8x8-v0", "none"),
    "GoToRedBallNoDists": TaskSpec("GoToRedBallNoDists", "BabyAI-GoToRedBallNoDists-v0", "real"),
}


def _reachable(grid: Grid, start: tuple[int, int], passable: Callable[[int, int], bool]) -> set[tuple[int, int]]:
    """Cells 4-connected to ``start`` through cells where ``passable`` holds (start always counts)."""
    seen = {start}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < grid.width and 0 <= ny < grid.height and (nx, ny) not in seen and passable(nx, ny):
                seen.add((nx, ny))
                queue.append((nx, ny))
    return seen


def _neighbours(pos: tuple[int, int]) -> Iterable[tuple[int, int]]:
    x, y = pos
    return ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))


def _door_in(wall: str, w: int, h: int, offset: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(door cell, the room cell in front of it) for a door ``offset`` cells along ``wall`` of a w x h room."""
    if wall == "east":
        return (w - 1, offset), (w - 2, offset)
    if wall == "west":
        return (0, offset), (1, offset)
    if wall == "south":
        return (offset, h - 1), (offset, h - 2)
    return (offset, 0), (offset, 1)


class RoomDoorKeyEnv(MiniGridEnv):
    """A walled room with locked exit doors (one by default); subclasses put keys (and lava) inside.

    The episode is solved, and ends, when a door is opened: toggling it while holding the key of its colour.
    """

    # A task whose room always has this side ignores room_min/room_max (TwoDoor).
    fixed_side: int | None = None

    def __init__(self, room_min: int, room_max: int, agent_view_size: int, max_steps: int, **kwargs: Any):
        if not 5 <= room_min <= room_max:
            raise ValueError(f"room sides must satisfy 5 <= room_min <= room_max, got {room_min}, {room_max}")
        self.room_min = room_min
        self.room_max = room_max
        self.door: Door | None = None  # the first door; every door of a task has its colour
        self.door_access: tuple[int, int] = (0, 0)  # the one room cell from which the first door can be toggled
        self.doors: list[Door] = []
        self.door_accesses: list[tuple[int, int]] = []
        self.keys: list[Key] = []
        super().__init__(
            mission_space=MissionSpace(mission_func=_open_the_door),
            width=room_max,
            height=room_max,
            agent_view_size=agent_view_size,
            max_steps=max_steps,
            see_through_walls=False,
            **kwargs,
        )

    def _gen_grid(self, width: int, height: int) -> None:
        for _ in range(_MAX_LAYOUT_TRIES):
            if self._try_layout(width, height):
                self.mission = _open_the_door()
                return
        raise RuntimeError(f"{type(self).__name__}: no valid layout after {_MAX_LAYOUT_TRIES} tries")

    def _try_layout(self, width: int, height: int) -> bool:
        self.grid = Grid(width, height)
        self.keys = []
        w = self._rand_int(self.room_min, self.room_max + 1)
        h = self._rand_int(self.room_min, self.room_max + 1)
        self.grid.wall_rect(0, 0, w, h)
        # Draw order (walls, offsets, then colour) keeps the layouts of every seed from before TwoDoor existed.
        cells = [_door_in(wall, w, h, self._rand_int(1, (h if wall in ("east", "west") else w) - 1))
                 for wall in self._door_walls()]
        colour = self._door_colour()
        self.doors, self.door_accesses = [], []
        for pos, access in cells:
            door = Door(colour, is_locked=True)
            self.grid.set(*pos, door)
            self.doors.append(door)
            self.door_accesses.append(access)
        self.door, self.door_access = self.doors[0], self.door_accesses[0]
        self.place_agent(top=(0, 0), size=(w, h), rand_dir=True)
        self._place_contents((0, 0), (w, h))
        return self._solvable()

    def _door_walls(self) -> tuple[str, ...]:
        """The walls that get a door: one, at random."""
        return (self._rand_elem(_WALLS),)

    def _door_colour(self) -> str:
        return self._rand_elem(COLOR_NAMES)

    def _place_contents(self, top: tuple[int, int], size: tuple[int, int]) -> None:
        """Abstract: each task (SimpleDoorKey, LavaDoorKey, ColoredDoorKey) places its own keys and lava."""
        raise NotImplementedError(f"{type(self).__name__} must place its contents")

    def _matching_key(self) -> Key:
        return next(k for k in self.keys if k.color == self.door.color)

    def _solvable(self) -> bool:
        """The agent can stand next to the right key, and from the key's cell reach the door's access cell.

        Placement is random, so lava or a distractor key may wall off a corner; we check instead of reasoning
        about every case. Keys count as obstacles on the way to the key (they are there then), but the
        matching key's own cell is free once it is picked up.
        """
        key_pos = tuple(self._matching_key().cur_pos)
        start = (int(self.agent_pos[0]), int(self.agent_pos[1]))
        near_agent = _reachable(self.grid, start, lambda x, y: self.grid.get(x, y) is None)
        if not any(n in near_agent for n in _neighbours(key_pos)):
            return False
        from_key = _reachable(self.grid, key_pos, lambda x, y: self.grid.get(x, y) is None)
        return any(access in from_key for access in self.door_accesses)

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        if action == self.actions.toggle and any(door.is_open for door in self.doors):
            reward = self._reward()
            terminated = True
        return obs, reward, terminated, truncated, info


class SimpleDoorKeyEnv(RoomDoorKeyEnv):
    """LLM4Teach's SimpleDoorKey: one key, of the door's colour, somewhere in the room."""

    def _place_contents(self, top: tuple[int, int], size: tuple[int, int]) -> None:
        key = Key(self.door.color)
        self.place_obj(key, top, size)
        self.keys.append(key)


class LavaDoorKeyEnv(SimpleDoorKeyEnv):
    """SimpleDoorKey plus one lava tile; stepping on it ends the episode with reward 0 (MiniGrid's rule)."""

    def _place_contents(self, top: tuple[int, int], size: tuple[int, int]) -> None:
        super()._place_contents(top, size)
        self.place_obj(Lava(), top, size)


class ColoredDoorKeyEnv(RoomDoorKeyEnv):
    """LLM4Teach's ColoredDoorKey: two keys of different colours; only the one matching the door opens it.

    Upstream fixes the colours (blue door, red distractor); here both are random, which the colour
    abstraction in the state text (color1/color2) makes invisible to the teacher anyway.
    """

    def _place_contents(self, top: tuple[int, int], size: tuple[int, int]) -> None:
        distractor_colour = self._rand_elem([c for c in COLOR_NAMES if c != self.door.color])
        # A key on the door's access cell would have to be carried away before the door can be reached.
        def at_door(_env: MiniGridEnv, pos: tuple[int, int]) -> bool:
            return tuple(pos) == self.door_access

        for colour in (self.door.color, distractor_colour):
            key = Key(colour)
            self.place_obj(key, top, size, reject_fn=at_door)
            self.keys.append(key)


class TwoDoorEnv(RoomDoorKeyEnv):
    """LLM4Teach's TwoDoor: a room of side 20, two locked doors of one colour in opposite walls (east and west, or
    north and south), and their key in the 2x2 cells at the centre. Opening either door solves it."""

    fixed_side = 20

    def _door_walls(self) -> tuple[str, ...]:
        return self._rand_elem([("east", "west"), ("south", "north")])

    def _place_contents(self, top: tuple[int, int], size: tuple[int, int]) -> None:
        key = Key(self.door.color)
        w, h = size
        self.place_obj(key, (top[0] + w // 2 - 1, top[1] + h // 2 - 1), (2, 2))
        self.keys.append(key)


_CUSTOM = {"SimpleDoorKey": SimpleDoorKeyEnv, "LavaDoorKey": LavaDoorKeyEnv, "ColoredDoorKey": ColoredDoorKeyEnv,
           "TwoDoor": TwoDoorEnv}


def build_env(cfg: EnvConfig) -> tuple[gymnasium.Env, TaskSpec]:
    """The raw MiniGrid env for ``cfg.name`` (not yet reset) and its spec."""
    if cfg.name not in TASK_SPECS:
        raise ValueError(f"env.name: {cfg.name!r} is not a MiniGrid task ({', '.join(TASK_SPECS)})")
    spec = TASK_SPECS[cfg.name]
    if spec.gym_id is None:
        cls = _CUSTOM[cfg.name]
        room_min, room_max = (cls.fixed_side, cls.fixed_side) if cls.fixed_side else (cfg.room_min, cfg.room_max)
        env = cls(room_min=room_min, room_max=room_max, agent_view_size=cfg.agent_view_size, max_steps=cfg.max_steps)
        return env, spec
    # The passive env checker only inspects the first calls; it is noise in a training loop.
    return gymnasium.make(spec.gym_id, disable_env_checker=True), spec
