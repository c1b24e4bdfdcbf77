"""Admissible options and the rule-based (scripted) MiniGrid planner.

Both work only from what the state text says (``text.Facts``), so equal strings always give equal options
and equal advice. The rules are the plans a sensible LLM gives in LLM4Teach's tasks; ``wrong_options``
lists the mistakes such an LLM makes (go to the locked door without its key, pick up the distractor, keep
exploring when the target is in sight), for the scripted teacher's ``error_rate``.

Pure Python: ``llmrl.envs.registry.planner_module("minigrid")`` imports this in the teacher service.
"""

from __future__ import annotations

from llmrl.envs.minigrid.text import Facts, ObjRef, parse_state_text

EXPLORE = "explore"


def _fetch(key: ObjRef) -> str:
    return f"go to {key.name}, pick up {key.name}"


def _swap(held: ObjRef, key: ObjRef) -> str:
    return f"drop {held.name}, go to {key.name}, pick up {key.name}"


def _open(door: ObjRef) -> str:
    return f"go to {door.name}, open {door.name}"


def admissible_options(facts: Facts) -> tuple[str, ...]:
    """The plans that make sense given what the agent knows, in a stable order (at most ~7)."""
    options = [EXPLORE]
    held = facts.held
    for obj in facts.seen:
        if obj.type == "key":
            options.append(_fetch(obj) if held is None else _swap(held, obj))
    if held is not None:
        options.append(f"drop {held.name}")
    for obj in facts.seen:
        if obj.type == "door" and obj.state != "open":
            options.append(_open(obj))
        elif obj.type == "ball":
            options.append(f"go to {obj.name}")
        elif obj.type == "goal":
            options.append("go to goal")
    return tuple(dict.fromkeys(options))


def _rule(facts: Facts) -> str:
    """The correct plan for this knowledge."""
    seen, held = facts.seen, facts.held
    balls = [o for o in seen if o.type == "ball"]
    if balls:
        return f"go to {balls[0].name}"
    keys = [o for o in seen if o.type == "key"]
    doors = [o for o in seen if o.type == "door"]
    shut = [d for d in doors if d.state != "open"]
    # In every task with a goal square (DoorKey) it lies behind the one door: open that first.
    if not shut and any(o.type == "goal" for o in seen):
        return "go to goal"
    if doors and not shut:
        return EXPLORE  # DoorKey: the door is open, the goal is somewhere behind it
    for door in shut:
        if door.state == "closed":
            return _open(door)  # unlocked: no key needed
        if held is not None and held.type == "key" and held.colour == door.colour:
            return _open(door)
        matching = [k for k in keys if k.colour == door.colour]
        if matching:
            return _fetch(matching[0]) if held is None else _swap(held, matching[0])
        return EXPLORE  # the key for this door has not been seen yet
    if held is None and keys:
        return _fetch(keys[0])  # no door in sight: any key is the best guess
    return EXPLORE


def correct_option(state_text: str, options: tuple[str, ...]) -> str:
    """The scripted teacher's plan for ``state_text``; always one of ``options`` when options is non-empty."""
    facts = parse_state_text(state_text)
    plan = _rule(facts) if facts is not None else EXPLORE
    if plan in options or not options:
        return plan
    return EXPLORE if EXPLORE in options else options[0]


def wrong_options(state_text: str, options: tuple[str, ...], correct: str) -> list[str]:
    """Plausible mistakes: every other admissible option, target-directed ones before plain exploring.

    Admissible options are all things an LLM could sensibly say in this state, so each wrong one is a
    mistake an LLM actually makes; exploring while a target is in sight is the mildest, so it goes last.
    """
    wrong = [o for o in options if o != correct]
    return sorted(wrong, key=lambda o: o == EXPLORE)
