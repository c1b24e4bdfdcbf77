"""Admissible plans for any MiniGrid/BabyAI state, and the scripted teacher's choice among them.

Plans come from the mission and from what has been seen (``text.parse``): the whole mission (carried out by
BabyAIBot, see ``adapter``), each of its steps on its own ("pick up red ball", "put red ball next to blue box"),
go to / pick up every seen key, ball and box, plus what ``llmrl.envs.minigrid.planner`` offers (explore, fetch
a key, drop, open a door, go to the goal).

The scripted teacher picks the whole mission when the mission has BabyAI's form (the bot solves those);
otherwise (goal-reaching tasks: DoorKey, MultiRoom, LavaCrossing, ...) it follows MiniGrid's door-key-goal rules.
Pure Python apart from the mission parser: imported in the teacher service.
"""

from __future__ import annotations

from llmrl.envs.minigrid import planner as minigrid_planner
from llmrl.envs.minigrid.text import Facts, render_state_text
from llmrl.envs.registered.mission import clauses, parse_mission
from llmrl.envs.registered.text import parse

EXPLORE = minigrid_planner.EXPLORE
_CARRIABLE = ("key", "ball", "box")


def mission_option(mission: str | None) -> str | None:
    """The plan that carries out the whole mission: the mission itself, when it has BabyAI's form."""
    if mission is None or parse_mission(mission) is None:
        return None
    return " ".join(mission.lower().rstrip(".").split())


def admissible_options(mission: str | None, facts: Facts) -> tuple[str, ...]:
    options = []
    whole = mission_option(mission)
    if whole is not None:
        options.append(whole)
        steps = clauses(parse_mission(whole))
        if len(steps) > 1:
            options += steps
    options += minigrid_planner.admissible_options(facts)
    for obj in facts.seen:
        if obj.type in _CARRIABLE:
            options.append(f"go to {obj.name}")
            if facts.held is None:
                options.append(f"go to {obj.name}, pick up {obj.name}")
    return tuple(dict.fromkeys(options))


def correct_option(state_text: str, options: tuple[str, ...]) -> str:
    mission, facts = parse(state_text)
    whole = mission_option(mission)
    if whole is not None and whole in options:
        return whole
    if facts is None:
        return EXPLORE if EXPLORE in options or not options else options[0]
    # MiniGrid's rules go to a ball first (GoToRedBall); in a goal-reaching task balls are only in the way.
    known = Facts.make([o for o in facts.seen if o.type != "ball"], facts.held)
    return minigrid_planner.correct_option(render_state_text(known), options)


def wrong_options(state_text: str, options: tuple[str, ...], correct: str) -> list[str]:
    return minigrid_planner.wrong_options(state_text, options, correct)
