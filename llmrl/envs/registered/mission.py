"""Mission text -> BabyAI instructions (``minigrid.envs.babyai.core.verifier``), the tree BabyAIBot plans on.

BabyAI levels carry their instructions (``env.instrs``); the MiniGrid envs whose mission is one of the same
forms (KeyCorridor "pick up the red ball", Unlock "open the door", GoToDoor, Fetch "get a red key", PutNear
"put the red ball near the blue box") get theirs from this parser, so that one planner, the bot, serves both.

Grammar (BabyAI's, ``levelgen``): ``A, then B`` and ``A after you B`` join clauses that may themselves be
``C and D``; a clause is ``go to D``, ``pick up D``, ``open D`` or ``put D next to D``; an object
description D is ``the|a [colour] (key|ball|box|door|object) [in front of you|behind you|on your left|on your
right]``. Pure Python apart from the verifier classes (no env is built).
"""

from __future__ import annotations

import re

import numpy as np

from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    AndInstr,
    BeforeInstr,
    GoToInstr,
    Instr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
_LOCS = {"in front of you": "front", "behind you": "behind", "on your left": "left", "on your right": "right"}
_OBJECT = re.compile(
    r"^(?:the|a|an)\s+(?:(%s)\s+)?(key|ball|box|door|object)(?:\s+(%s))?$" % ("|".join(COLOURS), "|".join(_LOCS))
)
# Verb spellings -> instruction; MiniGrid's Fetch says "get a", "go get a", "fetch a", "go fetch a", "you must
# fetch a"; PutNear says "near" for "next to".
_CLAUSES = (
    (re.compile(r"^go to (.+)$"), GoToInstr),
    (re.compile(r"^(?:pick up|(?:go |you must )?(?:get|fetch)) (.+)$"), PickupInstr),
    (re.compile(r"^open (.+)$"), OpenInstr),
)
_PUT = re.compile(r"^put (.+?) (?:next to|near) (.+)$")
# MiniGrid's RedBlueDoors: "open the red door then the blue door" (BabyAI would say "..., then open the blue door").
_OPEN_THEN = re.compile(r"^open (.+?) then (.+)$")


def parse_object(text: str) -> ObjDesc | None:
    match = _OBJECT.match(text.strip())
    if match is None:
        return None
    colour, kind, loc = match.groups()
    return ObjDesc(None if kind == "object" else kind, colour, _LOCS.get(loc) if loc else None)


def _clause(text: str) -> Instr | None:
    text = text.strip()
    put = _PUT.match(text)
    if put:
        move, fixed = parse_object(put.group(1)), parse_object(put.group(2))
        return PutNextInstr(move, fixed) if move is not None and fixed is not None else None
    for pattern, instr in _CLAUSES:
        match = pattern.match(text)
        if match:
            desc = parse_object(match.group(1))
            return instr(desc) if desc is not None else None
    return None


def _conjunction(text: str) -> Instr | None:
    parts = text.split(" and ")
    if len(parts) == 1:
        return _clause(text)
    if len(parts) != 2:
        return None
    a, b = _clause(parts[0]), _clause(parts[1])
    return AndInstr(a, b) if a is not None and b is not None else None


def parse_mission(mission: str) -> Instr | None:
    """The instruction tree of ``mission``; None for a mission of another form ("get to the goal")."""
    text = " ".join(mission.lower().strip().rstrip(".").split())
    both = _OPEN_THEN.match(text)
    if both and "," not in text:
        first, second = parse_object(both.group(1)), parse_object(both.group(2))
        return BeforeInstr(OpenInstr(first), OpenInstr(second)) if first is not None and second is not None else None
    for sep, seq in ((", then ", BeforeInstr), (" after you ", AfterInstr)):
        if sep in text:
            a, b = text.split(sep, 1)
            first, second = _conjunction(a), _conjunction(b)
            return seq(first, second) if first is not None and second is not None else None
    return _conjunction(text)


def describe(desc: ObjDesc) -> str:
    """A plan's object name for a description: ``"red ball"``, ``"door"``."""
    kind = desc.type or "object"
    return f"{desc.color} {kind}" if desc.color else kind


def clauses(instr: Instr) -> list[str]:
    """The mission's steps as plan text, in the order they must be done (``A after you B``: B first)."""
    if isinstance(instr, BeforeInstr | AndInstr):
        return clauses(instr.instr_a) + clauses(instr.instr_b)
    if isinstance(instr, AfterInstr):
        return clauses(instr.instr_b) + clauses(instr.instr_a)
    if isinstance(instr, PutNextInstr):
        return [f"put {describe(instr.desc_move)} next to {describe(instr.desc_fixed)}"]
    verb = {GoToInstr: "go to", PickupInstr: "pick up", OpenInstr: "open"}[type(instr)]
    return [f"{verb} {describe(instr.desc)}"]


# -- the mission as the student reads it ------------------------------------------------------------------------
# Every word of the missions of minigrid 3.0's registered ids (8 seeded resets of each id), in a fixed order so
# that a token id means the same word in every run and checkpoint. Index 0 is padding, 1 an unknown word.
MISSION_WORDS = (
    "a", "after", "and", "at", "avoid", "ball", "behind", "blue", "box", "door", "end", "fetch", "find", "from",
    "front", "get", "go", "goal", "green", "grey", "hallway", "in", "key", "lava", "left", "matching", "must", "near",
    "next", "object", "of", "on", "open", "opening", "pick", "purple", "put", "reach", "red", "right", "room",
    "rooms", "square", "the", "then", "to", "traverse", "unlock", "up", "use", "yellow", "you", "your", "an",
)
PAD, UNKNOWN = 0, 1
MISSION_VOCAB = len(MISSION_WORDS) + 2
# The longest mission seen had 37 words (a BossLevel one); longer ones keep their first MISSION_LENGTH words.
MISSION_LENGTH = 48
_WORD_ID = {w: i + 2 for i, w in enumerate(MISSION_WORDS)}


def mission_tokens(mission: str) -> np.ndarray:
    """``mission`` as MISSION_LENGTH word ids (int64), padded with PAD: the student's "mission" observation."""
    ids = [_WORD_ID.get(w, UNKNOWN) for w in re.findall(r"[a-z]+", mission.lower())][:MISSION_LENGTH]
    out = np.zeros(MISSION_LENGTH, dtype=np.int64)
    out[: len(ids)] = ids
    return out
