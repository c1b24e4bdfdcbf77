"""A snapshot of what the Crafter player sees: the local view's cells, the creatures in it, and the player.

The text view, the admissible sub-goals, the scripted skills and sub-goal completion all read this snapshot, so
the teacher knows exactly what the student's image shows and nothing more. It reads crafter's world arrays
(``_mat_map``, ``_obj_map``, ``_objects``) directly: going through ``world[pos]`` cell by cell would cost more
than the rest of the step's text work, and crafter is pinned (1.8.x) in this project.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from llmrl.envs.crafter.subgoals import ITEMS
from llmrl.envs.crafter.text import TEXT_KINDS, StateView, direction_word, distance_word

Pos = tuple[int, int]

WALKABLE: frozenset[str] = frozenset(("grass", "sand", "path"))  # where the player can safely step (not lava)
# Unit steps in a fixed order (up, right, down, left) so every tie is broken the same way.
STEPS: tuple[Pos, ...] = ((0, -1), (1, 0), (0, 1), (-1, 0))
MOVE_ACTION: dict[Pos, str] = {(0, -1): "move_up", (1, 0): "move_right", (0, 1): "move_down", (-1, 0): "move_left"}


def _creature_kind(obj: object) -> str:
    name = type(obj).__name__.lower()
    if name == "plant" and getattr(obj, "ripe", False):
        return "ripe plant"
    return name


class LocalWindow:
    """The cells of the player's local view (crafter: 9 wide, 7 high), keyed by world position."""

    def __init__(self, world, player, grid: tuple[int, int]):
        px, py = (int(v) for v in player.pos)
        self.player: Pos = (px, py)
        self.facing: Pos = (int(player.facing[0]), int(player.facing[1]))
        self.sleeping: bool = bool(player.sleeping)
        self.inventory: dict[str, int] = {i: int(player.inventory.get(i, 0)) for i in ITEMS}
        w, h = grid
        x0, y0 = px - w // 2, py - h // 2
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + w, world.area[0]), min(y0 + h, world.area[1])
        names = world._mat_names
        mats = world._mat_map[xa:xb, ya:yb].tolist()
        self.material: dict[Pos, str] = {
            (xa + i, ya + j): names[m] for i, col in enumerate(mats) for j, m in enumerate(col)
        }
        self.creature: dict[Pos, str] = {}
        obj_ids = world._obj_map[xa:xb, ya:yb]
        for i, j in zip(*obj_ids.nonzero()):
            obj = world._objects[obj_ids[i, j]]
            if obj is not None and obj is not player:
                self.creature[(xa + int(i), ya + int(j))] = _creature_kind(obj)
        self._bfs: dict[Pos, tuple[int, Pos]] | None = None

    # -- cells ---------------------------------------------------------------------------------------------

    def kind_at(self, pos: Pos) -> str | None:
        """The creature on ``pos`` if any, else its material; None outside the view."""
        return self.creature.get(pos) or self.material.get(pos)

    def passable(self, pos: Pos) -> bool:
        return self.material.get(pos) in WALKABLE and pos not in self.creature

    def front(self) -> Pos:
        return (self.player[0] + self.facing[0], self.player[1] + self.facing[1])

    def cells_by_distance(self) -> Iterator[tuple[Pos, str]]:
        """(position, kind) of every cell but the player's, nearest first (ties: fixed row-major order)."""
        px, py = self.player
        order = sorted(self.material, key=lambda p: (abs(p[0] - px) + abs(p[1] - py), p[1], p[0]))
        for pos in order:
            if pos != self.player:
                yield pos, self.kind_at(pos)

    def cells_of(self, kind: str) -> list[Pos]:
        return [p for p in self.material if p != self.player and self.kind_at(p) == kind]

    def visible_kinds(self) -> frozenset[str]:
        return frozenset(self.creature.values()) | frozenset(
            k for p, k in self.material.items() if p not in self.creature and p != self.player
        )

    def nearest(self) -> dict[str, Pos]:
        """Offset (dx, dy) from the player to the nearest cell of each text kind in view."""
        px, py = self.player
        found: dict[str, Pos] = {}
        for (x, y), kind in self.cells_by_distance():
            if kind in TEXT_KINDS and kind not in found:
                found[kind] = (x - px, y - py)
        return found

    def state_view(self, unlocked: set[str] | frozenset[str] | tuple[str, ...]) -> StateView:
        seen = {k: (distance_word(*d), direction_word(*d)) for k, d in self.nearest().items()}
        return StateView.build(seen, self.inventory, self.sleeping, unlocked)

    def distance_to_nearest(self, kind: str) -> int | None:
        px, py = self.player
        cells = [abs(x - px) + abs(y - py) for x, y in self.cells_of(kind)]
        return min(cells) if cells else None

    # -- paths ---------------------------------------------------------------------------------------------

    def paths(self) -> dict[Pos, tuple[int, Pos]]:
        """Breadth-first search over safe walkable cells in view: position -> (steps, first unit step).

        Computed once per snapshot: every skill asked about this step shares it.
        """
        if self._bfs is None:
            start = self.player
            found: dict[Pos, tuple[int, Pos]] = {start: (0, (0, 0))}
            queue = deque([start])
            while queue:
                cur = queue.popleft()
                dist, first = found[cur]
                for step in STEPS:
                    nxt = (cur[0] + step[0], cur[1] + step[1])
                    if nxt not in found and self.passable(nxt):
                        found[nxt] = (dist + 1, step if cur == start else first)
                        queue.append(nxt)
            self._bfs = found
        return self._bfs
