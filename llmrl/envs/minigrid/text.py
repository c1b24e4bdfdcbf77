"""The words a MiniGrid teacher reads: the state text, and each task's prompt.

State text follows LLM4Teach: ``"Agent sees <key>, <door (locked)>, holds <nothing>."``. It lists the
objects the agent has seen so far (walls, floor and lava are left out: no plan depends on them; the skills
avoid lava by themselves) and what it carries. Door state is always written because stock DoorKey's
correct plan depends on it (an open door means "find the goal").

Colours are written per task (see ``tasks.TaskSpec.colours``): not at all where there is one key and one
door of the same colour (SimpleDoorKey, LavaDoorKey, DoorKey: colours would only multiply the number of
distinct states the LLM is asked about), as abstract ``color1``/``color2`` in ColoredDoorKey (the names are
given in the order the agent first saw each colour, so they are stable within an episode and the plan
"pick up the key matching the door" reads the same whatever the real colours are), and for real in BabyAI,
whose mission names a colour. Objects are listed in a fixed order, so equal knowledge gives equal strings.

Pure Python: the planner parses these strings back (``parse_state_text``) without MiniGrid.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TYPE_ORDER = ("key", "ball", "box", "door", "goal")
_TOKEN = re.compile(r"^(?:(\S+) )?(\w+)(?: \((\w+)\))?$")
_STATE_TEXT = re.compile(r"^Agent sees (.*), holds <([^<>]*)>\.$")


class ObjRef(NamedTuple):
    """An object as the text names it: type, colour word (None when colours are not written), door state."""

    type: str
    colour: str | None = None
    state: str | None = None  # doors only: "open" | "closed" | "locked"

    @property
    def name(self) -> str:
        """What plans call it: ``"color1 key"``, ``"door"``, ``"red ball"``."""
        return f"{self.colour} {self.type}" if self.colour else self.type

    @property
    def label(self) -> str:
        return f"{self.name} ({self.state})" if self.state else self.name


class Facts(NamedTuple):
    """Everything the state text says, in canonical order."""

    seen: tuple[ObjRef, ...]
    held: ObjRef | None

    @staticmethod
    def make(seen: list[ObjRef] | tuple[ObjRef, ...], held: ObjRef | None) -> Facts:
        def order(o: ObjRef) -> tuple[int, str, str]:
            rank = _TYPE_ORDER.index(o.type) if o.type in _TYPE_ORDER else len(_TYPE_ORDER)
            return rank, o.colour or "", o.state or ""

        return Facts(tuple(sorted(set(seen), key=order)), held)


def render_state_text(facts: Facts) -> str:
    seen = ", ".join(f"<{o.label}>" for o in facts.seen) or "<nothing>"
    held = facts.held.name if facts.held is not None else "nothing"
    return f"Agent sees {seen}, holds <{held}>."


def _parse_token(token: str) -> ObjRef | None:
    match = _TOKEN.match(token.strip())
    if match is None:
        return None
    colour, kind, state = match.groups()
    return ObjRef(kind, colour, state)


def parse_state_text(text: str) -> Facts | None:
    """The inverse of ``render_state_text``; None for text it did not write."""
    match = _STATE_TEXT.match(text.strip())
    if match is None:
        return None
    seen = []
    for token in re.findall(r"<([^<>]*)>", match.group(1)):
        if token == "nothing":
            continue
        obj = _parse_token(token)
        if obj is None:
            return None
        seen.append(obj)
    held_text = match.group(2)
    held = None if held_text == "nothing" else _parse_token(held_text)
    return Facts.make(seen, held)


_VOCABULARY = (
    "The agent can perform the following actions: explore, go to <object>, pick up <object>, drop <object>, "
    "or open <object>. The agent can hold only one object at a time. Answer with a plan: one or more of these "
    "actions separated by commas inside braces, for example Action: {go to <key>, pick up <key>}."
)
_EXAMPLE = (
    "Example: Agent sees <key>, <door (locked)>, holds <nothing>. 1. What the agent sees and holds: a key and "
    "a locked door; it holds nothing. 2. What it should do: it cannot open the locked door without the key, so "
    "it should go to the key and pick it up. 3. Action: {go to <key>, pick up <key>}"
)
_DOOR_ROOM = (
    "In a locked 2D grid room, there is an agent whose task is to open the door. The door can only be opened "
    "while the agent holds the key. "
)

TASK_DESCRIPTIONS: dict[str, str] = {
    "SimpleDoorKey": _DOOR_ROOM + _VOCABULARY + " " + _EXAMPLE,
    "LavaDoorKey": _DOOR_ROOM
    + "The room also has a lava tile; stepping on it ends the episode, and the agent's skills walk around it. "
    + _VOCABULARY
    + " "
    + _EXAMPLE,
    "ColoredDoorKey": (
        "In a locked 2D grid room, there is an agent whose task is to open the door. The door can only be opened "
        "while the agent holds the key of the same colour as the door. There are two keys of different colours. "
        "Colours are named color1, color2 in the order the agent first saw them. "
        + _VOCABULARY
        + " Example: Agent sees <color1 key>, <color2 door (locked)>, holds <nothing>. 1. The agent sees a color1 "
        "key and a locked color2 door; it holds nothing. 2. The color1 key does not open the color2 door, so the "
        "agent should look for the color2 key. 3. Action: {explore}"
    ),
}
TASK_DESCRIPTIONS["TwoDoor"] = (
    "In a locked 2D grid room, there is an agent whose task is to open a door. The large room has two locked doors "
    "of the same colour in opposite walls, and one key that opens either of them. A door can only be opened while "
    "the agent holds the key; opening either door completes the task. "
    + _VOCABULARY
    + " "
    + _EXAMPLE
)
_GOAL_ROOM = (
    "In a 2D grid world of two rooms, there is an agent whose task is to reach the goal square. The goal is in "
    "the second room, behind a locked door that can only be opened while the agent holds the key. "
    + _VOCABULARY
    + " To walk onto the goal, use go to <goal>. "
    + _EXAMPLE
)
TASK_DESCRIPTIONS["DoorKey-5x5"] = _GOAL_ROOM
TASK_DESCRIPTIONS["DoorKey-8x8"] = _GOAL_ROOM
TASK_DESCRIPTIONS["GoToRedBallNoDists"] = (
    "In a 2D grid room, there is an agent whose task is to go to the red ball: stand next to it and face it. "
    "The agent can perform the following actions: explore, or go to <object>. Answer with a plan inside braces, "
    "for example Action: {go to <red ball>}. Example: Agent sees <nothing>, holds <nothing>. 1. The agent has "
    "not seen the ball yet. 2. It should look for it. 3. Action: {explore}"
)


def task_description(task_name: str) -> str:
    return TASK_DESCRIPTIONS[task_name]
