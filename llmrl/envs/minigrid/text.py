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



# LLM4Teach's prompt (teacher.prompt_style=llm4teach): its task sentence and action list, then one worked
# chain-of-thought example in the layout of a query (the state, what the agent sees, what it should do, the
# plan in braces), which is what the paper's teacher LLM read before each state.
_LLM4TEACH_ACTIONS = (
    "The agent can perform the following actions: explore, go to <object>, pick up <object>, drop <object>, "
    "or open <object>. The agent can hold only one object at a time. For each state, think step by step about "
    "what the agent sees and what it should do, then answer with a plan in braces."
)


def _llm4teach(task: str, state: str, sees: str, should: str, action: str) -> str:
    return (f"{task} {_LLM4TEACH_ACTIONS}\n\nExample:\nState: {state}\nWhat the agent sees and holds: {sees}\n"
            f"What it should do: {should}\nAction: {{{action}}}")


_LLM4TEACH_DOOR = ("In a locked 2D grid room, there is an agent whose task is to open the door. The door can only "
                   "be opened while agent holds the key.")
_LLM4TEACH_KEY_EXAMPLE = (
    "Agent sees <key>, <door (locked)>, holds <nothing>.",
    "a key and a locked door; it holds nothing.",
    "the door is locked and the agent has no key, so it should first go to the key and pick it up.",
    "go to <key>, pick up <key>",
)
LLM4TEACH_PROMPTS: dict[str, str] = {
    "SimpleDoorKey": _llm4teach(_LLM4TEACH_DOOR, *_LLM4TEACH_KEY_EXAMPLE),
    "LavaDoorKey": _llm4teach(_LLM4TEACH_DOOR + " Stepping on lava ends the episode; the agent's skills walk "
                              "around it.", *_LLM4TEACH_KEY_EXAMPLE),
    "ColoredDoorKey": _llm4teach(
        "In a locked 2D grid room, there is an agent whose task is to open the door. The door can only be opened "
        "while agent holds the key of the same colour as the door; the other key does not fit. Colours are named "
        "color1, color2 in the order the agent first saw them.",
        "Agent sees <color1 key>, <color2 door (locked)>, holds <nothing>.",
        "a color1 key and a locked color2 door; it holds nothing.",
        "the color1 key does not open the color2 door, so the agent should explore to find the color2 key.",
        "explore",
    ),
    "GoToRedBallNoDists": _llm4teach(
        "In a 2D grid room, there is an agent whose task is to go to the red ball: stand next to it and face it.",
        "Agent sees <nothing>, holds <nothing>.",
        "nothing yet; it holds nothing.",
        "it has not seen the red ball, so it should explore to find it.",
        "explore",
    ),
}
LLM4TEACH_PROMPTS["TwoDoor"] = _llm4teach(
    "In a locked 2D grid room, there is an agent whose task is to open one of the two doors. A door can only be "
    "opened while agent holds the key.", *_LLM4TEACH_KEY_EXAMPLE)
LLM4TEACH_PROMPTS["DoorKey-5x5"] = LLM4TEACH_PROMPTS["DoorKey-8x8"] = _llm4teach(
    "In a 2D grid world of two rooms, there is an agent whose task is to reach the goal square behind a locked "
    "door. The door can only be opened while agent holds the key. To walk onto the goal, use go to <goal>.",
    *_LLM4TEACH_KEY_EXAMPLE,
)

# teacher.prompt_style -> the task prompts written in that style (config.PROMPT_STYLES names them).
PROMPTS_BY_STYLE: dict[str, dict[str, str]] = {"plain": TASK_DESCRIPTIONS, "llm4teach": LLM4TEACH_PROMPTS}


def task_description(task_name: str, style: str = "plain") -> str:
    """The task prompt of ``task_name`` in ``style`` (``teacher.prompt_style``)."""
    return PROMPTS_BY_STYLE[style][task_name]
