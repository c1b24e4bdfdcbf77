"""Plans: the options a MiniGrid teacher chooses among, as text and as parsed steps.

A plan is a comma-separated list of steps, e.g. ``"go to key, pick up key"``. Verbs: ``explore``,
``go to <obj>``, ``pick up <obj>``, ``drop <obj>``, ``open <obj>``; an object is ``[colour] type`` with a
MiniGrid colour or an abstract one (``color1``, ``color2``). ``parse_plan`` accepts what LLMs write
(LLM4Teach's ``Action: {go to <key>, pick up <key>}``, odd case and spacing, articles, "then");
``format_plan`` writes the one canonical spelling, which is what options are compared by.

Pure Python on purpose: the teacher service imports this without MiniGrid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERBS = ("explore", "go to", "pick up", "drop", "open")
OBJECT_TYPES = ("key", "door", "ball", "box", "goal")
REAL_COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
ABSTRACT_COLOUR = re.compile(r"^colou?r(\d+)$")

# Spellings LLMs use for our verbs, longest first so "go to" wins over "go".
_VERB_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("navigate to", "go to"),
    ("move to", "go to"),
    ("walk to", "go to"),
    ("go to", "go to"),
    ("goto", "go to"),
    ("reach", "go to"),
    ("approach", "go to"),
    ("pick up", "pick up"),
    ("pickup", "pick up"),
    ("pick", "pick up"),
    ("grab", "pick up"),
    ("take", "pick up"),
    ("put down", "drop"),
    ("drop", "drop"),
    ("release", "drop"),
    ("open", "open"),
    ("unlock", "open"),
    ("toggle", "open"),
)
# Words that qualify an object without changing which one is meant.
_FILLER = frozenset({"the", "a", "an", "locked", "closed", "unlocked", "exit", "square", "tile", "up"})
_EXPLORE_FILLER = frozenset({"the", "room", "around", "more", "further", "environment", "grid", "area"})


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a plan: a verb and (except for explore) a canonical object name like ``"color1 key"``."""

    verb: str
    target: str | None = None

    def __str__(self) -> str:
        return self.verb if self.target is None else f"{self.verb} {self.target}"


def split_target(target: str) -> tuple[str | None, str]:
    """``"color1 key"`` -> ``("color1", "key")``; ``"goal"`` -> ``(None, "goal")``."""
    colour, _, kind = target.rpartition(" ")
    return (colour or None), kind


def parse_target(text: str) -> str | None:
    """A canonical object name from free text (``"the Yellow  Key"`` -> ``"yellow key"``), or None."""
    words = [w for w in re.sub(r"\([^)]*\)", " ", text.lower()).split() if w not in _FILLER]
    if not words:
        return None
    kind = words[-1]
    if kind.endswith("s") and kind[:-1] in OBJECT_TYPES:
        kind = kind[:-1]
    if kind not in OBJECT_TYPES:
        return None
    if len(words) == 1:
        return kind
    if len(words) != 2:
        return None
    colour = words[0]
    match = ABSTRACT_COLOUR.match(colour)
    if match:
        colour = f"color{match.group(1)}"
    elif colour not in REAL_COLOURS:
        return None
    # Goals are always green in MiniGrid, so a colour only makes two spellings of one object.
    return kind if kind == "goal" else f"{colour} {kind}"


def _parse_step(text: str) -> Step | None:
    text = " ".join(text.split())
    if not text:
        return None
    if text == "explore" or text.startswith("explore "):
        rest = set(text.split()[1:])
        return Step("explore") if rest <= _EXPLORE_FILLER else None
    for spelling, verb in _VERB_SYNONYMS:
        if text == spelling or text.startswith(spelling + " "):
            rest = text[len(spelling):]
            if verb == "open":
                rest = rest.split(" with ")[0]  # "open door with key": the key is implied
            target = parse_target(rest)
            return Step(verb, target) if target is not None else None
    return None


def parse_plan(text: str) -> tuple[Step, ...] | None:
    """Parse a plan written by a person, an LLM or ``format_plan``; None if any part is not understood."""
    if not isinstance(text, str):
        return None
    body = text.strip().lower()
    action = re.search(r"actions?\s*:\s*(.*)", body, re.S)
    if action:
        body = action.group(1)
    braces = re.search(r"\{([^{}]*)\}", body)
    if braces:
        body = braces.group(1)
    body = re.sub(r"[<>{}\[\]\"'`*]", " ", body).strip().rstrip(".").strip()
    parts = re.split(r",|;|\bthen\b|\band\b", body)
    steps = []
    for part in parts:
        if not part.strip():
            continue
        step = _parse_step(part)
        if step is None:
            return None
        steps.append(step)
    return tuple(steps) if steps else None


def format_plan(steps: tuple[Step, ...] | list[Step]) -> str:
    """The canonical spelling: lower case, ``", "`` between steps, no brackets."""
    return ", ".join(str(s) for s in steps)


def canonical(text: str) -> str | None:
    """``format_plan(parse_plan(text))``, or None when it does not parse."""
    steps = parse_plan(text)
    return None if steps is None else format_plan(steps)
