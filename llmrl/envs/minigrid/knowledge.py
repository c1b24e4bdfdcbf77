"""The agent's historical map: every cell it has seen, as it last saw it, plus where it is and what it holds.

Updated after every env step from the observation MiniGrid already computed. ``obs["image"]`` is
``grid.encode(vis_mask)`` of the egocentric view, with the visibility mask of ``gen_obs_grid()``
(see_through_walls=False), so a cell the agent cannot see is encoded with type 0 ("unseen") and every visible
cell has type >= 1. Reading visibility from it instead of calling ``gen_obs_grid()`` again halves the cost.
View cell (vx, vy) lies at world ``agent + f * (V - 1 - vy) + r * (vx - V // 2)`` (f: facing vector, r: its
right-hand vector, V: view size), the same mapping MiniGrid's renderer uses; offsets are precomputed per
direction so an update is a handful of numpy operations on V*V cells.

The map is also the state skills plan on and text is derived from. ``version`` counts changes of what
is known (cells or the carried object, not the agent's pose), so text and option lists are recomputed
only when it changes; ``memo`` and ``pose_memo`` hold such derived values until the version, respectively
the pose, changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, DIR_TO_VEC, IDX_TO_COLOR, IDX_TO_OBJECT, OBJECT_TO_IDX

from llmrl.envs.minigrid.text import Facts, ObjRef

UNSEEN = OBJECT_TO_IDX["unseen"]
EMPTY = OBJECT_TO_IDX["empty"]
WALL = OBJECT_TO_IDX["wall"]
DOOR = OBJECT_TO_IDX["door"]
GOAL = OBJECT_TO_IDX["goal"]
DOOR_STATES = ("open", "closed", "locked")  # MiniGrid's state index order
_EMPTY_CELL = (EMPTY, 0, 0)
# Object types the state text mentions: door, key, ball, box, goal are MiniGrid's consecutive indices 4..8.
_DESCRIBED = (DOOR, GOAL)
# Types whose colour gets an abstract name: door, key, ball, box, MiniGrid's consecutive indices 4..7.
_COLOURED = (DOOR, OBJECT_TO_IDX["box"])


class Knowledge:
    """What the agent knows: a (width, height) map of last-seen encodings, its pose and what it carries."""

    def __init__(self, width: int, height: int, side: int, view_size: int, colours: str):
        if side < max(width, height):
            raise ValueError(f"observation side {side} is smaller than the grid ({width}x{height})")
        self.width, self.height, self.side = width, height, side
        self.colours = colours  # "none" | "abstract" | "real", see text.py
        # Known encodings (type 0 = unseen) live in a map with a margin of one view size on every side, so
        # view cells beyond the grid land in the margin instead of needing a bounds check. ``cells`` is the
        # grid part of it; row-major flat index of world (x, y): (x + margin) * padded_height + y + margin.
        margin = view_size
        self._padded = np.zeros((width + 2 * margin, height + 2 * margin, 3), dtype=np.uint8)
        self._flat = self._padded.reshape(-1, 3)
        self._margin, self._stride = margin, height + 2 * margin
        self.cells = self._padded[margin : margin + width, margin : margin + height]
        # The student's copy: channels 0-2 mirror ``cells``, channel 3 stays 0 except at the agent's cell;
        # padding beyond a smaller grid stays unseen.
        self._obs = np.zeros((side, side, 4), dtype=np.uint8)
        self.pos: tuple[int, int] = (0, 0)
        self.dir = 0
        self.carrying: tuple[int, int, int] | None = None
        self.version = 0
        self.memo: dict[Any, Any] = {}
        self.pose_memo: dict[Any, Any] = {}
        self.alias_of: dict[int, str] = {}  # colour idx -> "color1", ... (abstract colours only)
        self.colour_of: dict[str, int] = {}  # "color1" -> colour idx
        self._view_idx = self._view_offsets(view_size, self._stride)
        self._agent_view_cell = (view_size // 2) * view_size + (view_size - 1)

    @staticmethod
    def _view_offsets(view: int, stride: int) -> np.ndarray:
        """(4, view*view): flat-index offset from the agent of each view cell, in ``image.reshape(-1, 3)`` order."""
        vx, vy = np.meshgrid(np.arange(view), np.arange(view), indexing="ij")
        ahead, side = (view - 1 - vy).ravel(), (vx - view // 2).ravel()
        out = np.empty((4, view * view), dtype=np.intp)
        for d in range(4):
            fx, fy = (int(v) for v in DIR_TO_VEC[d])
            rx, ry = -fy, fx
            out[d] = (fx * ahead + rx * side) * stride + (fy * ahead + ry * side)
        return out

    def reset(self) -> None:
        self._padded[:] = 0
        self._obs[:] = 0
        self.carrying = None
        self.alias_of.clear()
        self.colour_of.clear()
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self.memo.clear()
        self.pose_memo.clear()

    def observe(self, env: Any, image: np.ndarray) -> None:
        """Fold in the view ``image`` (``obs["image"]``) that ``env`` (the unwrapped MiniGridEnv) just returned."""
        ax, ay = int(env.agent_pos[0]), int(env.agent_pos[1])
        d = int(env.agent_dir)
        view = image.reshape(-1, 3)
        idx = self._view_idx[d] + ((ax + self._margin) * self._stride + ay + self._margin)
        old = self._flat.take(idx, axis=0)
        new = np.where(view[:, :1].astype(bool), view, old)  # type 0 (unseen) <=> not visible
        # The agent's own view cell shows what it carries; the map records what it stands on.
        under = env.grid.get(ax, ay)
        new[self._agent_view_cell] = under.encode() if under is not None else _EMPTY_CELL
        changed = new.tobytes() != old.tobytes()
        if changed:
            self._flat[idx] = new
        carrying = env.carrying.encode() if env.carrying is not None else None
        if carrying != self.carrying:
            self.carrying = carrying
            changed = True
        if changed:
            if self.colours == "abstract":
                self._name_colours(new)
            self._obs[: self.width, : self.height, :3] = self.cells
            self._changed()
        elif (ax, ay) != self.pos or d != self.dir:
            self.pose_memo.clear()
        self.pos, self.dir = (ax, ay), d

    def observe_all(self, env: Any) -> None:
        """Mark every cell of ``env.grid`` as seen (hand-built test scenes, debugging)."""
        encoded = env.grid.encode()
        self.cells[:] = encoded
        self.pos, self.dir = (int(env.agent_pos[0]), int(env.agent_pos[1])), int(env.agent_dir)
        under = env.grid.get(*self.pos)
        self.cells[self.pos] = under.encode() if under is not None else _EMPTY_CELL
        self.carrying = env.carrying.encode() if env.carrying is not None else None
        if self.colours == "abstract":
            self._name_colours(encoded.reshape(-1, 3))
        self._obs[: self.width, : self.height, :3] = self.cells
        self._changed()

    def _name_colours(self, vals: np.ndarray) -> None:
        """Give each newly seen colour the next abstract name, in the order the agent saw it."""
        kinds = vals[:, 0]
        coloured = vals[(kinds >= _COLOURED[0]) & (kinds <= _COLOURED[1]), 1].tolist()
        if self.carrying is not None:
            coloured.append(self.carrying[1])
        for colour in coloured:
            if colour not in self.alias_of:
                name = f"color{len(self.alias_of) + 1}"
                self.alias_of[colour] = name
                self.colour_of[name] = colour

    def egocentric_obs(self) -> np.ndarray:
        """(2*side-1, 2*side-1, 4): the student map translated to put the agent at the centre and rotated so
        that it always faces +x. Skill actions depend on where things lie relative to the agent; in this frame
        the same relative layout always looks the same, and the student imitates the teacher far faster."""
        return egocentric_view(self.student_obs(), self.pos, self.dir)

    def student_obs(self) -> np.ndarray:
        """(side, side, 4) uint8: known cells, with the carried object and direction+1 at the agent's cell."""
        grid = self._obs.copy()
        ax, ay = self.pos
        grid[ax, ay, :3] = self.carrying if self.carrying is not None else _EMPTY_CELL
        grid[ax, ay, 3] = self.dir + 1
        return grid

    # ---- names <-> encodings -------------------------------------------------------------------------

    def colour_word(self, colour: int) -> str | None:
        if self.colours == "none":
            return None
        if self.colours == "abstract":
            return self.alias_of.get(colour)
        return IDX_TO_COLOR[colour]

    def colour_index(self, word: str) -> int | None:
        """A colour word of a plan -> MiniGrid colour index (abstract names resolve through this episode)."""
        if word in COLOR_TO_IDX:
            return COLOR_TO_IDX[word]
        return self.colour_of.get(word)

    def facts(self) -> Facts:
        """What the state text says, recomputed only when the version changes."""
        cached = self.memo.get("facts")
        if cached is not None:
            return cached
        types = self.cells[:, :, 0]
        seen = []
        for x, y in zip(*np.nonzero((types >= _DESCRIBED[0]) & (types <= _DESCRIBED[1]))):
            kind, colour, state = (int(v) for v in self.cells[x, y])
            seen.append(self._ref(kind, colour, state))
        held = None
        if self.carrying is not None:
            held = self._ref(*self.carrying)._replace(state=None)
        facts = Facts.make(seen, held)
        self.memo["facts"] = facts
        return facts

    def _ref(self, kind: int, colour: int, state: int) -> ObjRef:
        name = IDX_TO_OBJECT[kind]
        return ObjRef(
            name,
            None if kind == GOAL else self.colour_word(colour),
            DOOR_STATES[state] if kind == DOOR else None,
        )


def egocentric_view(grid: np.ndarray, pos: tuple[int, int], direction: int) -> np.ndarray:
    """Place ``grid`` (side, side, C) on a (2*side-1)^2 canvas with ``pos`` at the centre, then rotate so the
    cell in front of the agent is always at centre + (1, 0). np.rot90 by k maps an offset (dx, dy) to
    (-dy, dx) k times; MiniGrid's direction d faces (1,0),(0,1),(-1,0),(0,-1) for d=0..3, so k = -d mod 4."""
    side = grid.shape[0]
    canvas = np.zeros((2 * side - 1, 2 * side - 1, grid.shape[2]), dtype=grid.dtype)
    x, y = pos
    canvas[side - 1 - x : 2 * side - 1 - x, side - 1 - y : 2 * side - 1 - y] = grid
    return np.ascontiguousarray(np.rot90(canvas, k=(-direction) % 4, axes=(0, 1)))
