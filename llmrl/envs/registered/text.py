"""The generic state text of any MiniGrid grid: the mission, then what the historical map holds.

``"Mission: pick up the red ball. Agent sees <red ball>, <blue door (locked)>, <goal>, <lava>, holds
<nothing>."``: every key, ball, box, door (open, closed or locked) and goal the agent has seen, with real
colours (missions name them), lava tiles (one entry: the skills route around them), and what the agent carries.
The object part is ``llmrl.envs.minigrid.text``'s format, so its parser and planner read it unchanged.
"""

from __future__ import annotations

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from llmrl.envs.minigrid.knowledge import Knowledge
from llmrl.envs.minigrid.text import Facts, ObjRef, parse_state_text, render_state_text

LAVA = OBJECT_TO_IDX["lava"]
_PREFIX = "Mission: "


def facts(kn: Knowledge) -> Facts:
    """The map's facts (``Knowledge.facts``) plus lava, which MiniGrid's door-and-key texts leave out."""
    base = kn.facts()
    if not np.any(kn.cells[:, :, 0] == LAVA):
        return base
    return Facts.make((*base.seen, ObjRef("lava")), base.held)


def render(mission: str, known: Facts) -> str:
    return f"{_PREFIX}{mission.rstrip('.')}. {render_state_text(known)}"


def parse(text: str) -> tuple[str | None, Facts | None]:
    """(mission, facts) of a text ``render`` wrote; (None, facts) for a text without a mission."""
    if not text.startswith(_PREFIX):
        return None, parse_state_text(text)
    mission, sep, rest = text[len(_PREFIX):].partition(". Agent sees ")
    if not sep:
        return None, None
    return mission, parse_state_text("Agent sees " + rest)


TASK_DESCRIPTION = (
    "In a 2D grid world of one or more rooms, an agent must carry out the mission given with each state. "
    "Rooms are joined by doors; a locked door opens only while the agent holds the key of its colour, and "
    "stepping on lava ends the episode. The agent can hold one object at a time. The agent can perform the "
    "following actions: explore, go to <object>, pick up <object>, drop <object>, open <object>, put <object> next "
    "to <object>, or carry out the whole mission. Answer with one of the listed plans inside braces, for example "
    "Action: {go to <red key>, pick up <red key>}. Example: Mission: open the blue door. Agent sees <blue key>, "
    "<blue door (locked)>, holds <nothing>. 1. The blue door is locked and the agent holds nothing. 2. It needs "
    "the blue key first. 3. Action: {go to blue key, pick up blue key}"
)
