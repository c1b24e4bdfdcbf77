"""The scripted Crafter teacher: a rule-based planner that reads only the state text.

Priorities, highest first:

1. asleep: "wake up" (crafter keeps a sleeping player asleep until rested or hurt);
2. a zombie adjacent: "defeat zombie"; near: "avoid zombie" when health is low, else "defeat zombie";
3. survival needs: "drink water" / "eat cow" / "eat plant" when drink or food is low and a source is in sight,
   "explore" when drink or food is critical and no source is in sight, "sleep" when energy is low and no
   zombie or skeleton is in sight (a zombie hits a sleeper for 7 of 9 health);
4. cheap achievements not unlocked yet whose target is in sight (eat cow, drink water, eat plant, place plant,
   collect sapling, and fights when healthy), and "wake up" once energy is below its maximum and no zombie or
   skeleton is in sight (a sleeper wakes when rested, ~10 steps per energy point, so one nap unlocks it);
5. the tech tree: for the first achievement of collect wood -> place table -> make wood pickaxe -> make wood
   sword -> collect stone -> place stone -> make stone pickaxe -> make stone sword -> place furnace -> collect
   coal -> collect iron -> make iron pickaxe -> make iron sword -> collect diamond that is not unlocked, the
   step it needs now (gather the missing items, place the missing table/furnace, then the achievement itself);
   targets whose next step needs something out of sight are skipped for later ones that can proceed;
6. "explore" when nothing in sight serves a goal.

``wrong_options`` lists the mistakes an imperfect LLM plausibly makes instead: ignoring a need or a threat,
rushing ahead to a later tech-tree step, wandering off although the target is in sight.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrl.envs.crafter.subgoals import (
    CLOSE_DISTANCES,
    DO_TARGETS,
    ITEM_MAX,
    MAKE,
    PLACE,
    TECH_TREE,
    is_admissible,
)
from llmrl.envs.crafter.text import StateView, parse_state_text

NEED_LEVEL = 6  # drink / food at or below this: top up when a source is in sight (sources come and go from view)
CRITICAL_LEVEL = 3  # drink / food at or below this with no source in sight: go and look for one
TIRED_LEVEL = 3  # energy at or below this: sleep
DANGER_HEALTH = 4  # health at or below this with a zombie close: run rather than fight

# Side achievements worth a detour whenever their target is in sight and they are not unlocked yet.
OPPORTUNISTIC: tuple[str, ...] = ("eat cow", "drink water", "eat plant", "place plant", "collect sapling")
FIGHTS: tuple[str, ...] = ("defeat zombie", "defeat skeleton")

# Which sub-goal yields an item: raw materials are collected, tools are made.
_SOURCE_OF: dict[str, str] = {
    "wood": "collect wood", "stone": "collect stone", "coal": "collect coal", "iron": "collect iron",
    "diamond": "collect diamond", "sapling": "collect sapling",
    **{item: subgoal for subgoal, (item, _, _) in MAKE.items()},
}


def _step_toward(subgoal: str, view: StateView) -> str:
    """The sub-goal to pursue now on the way to ``subgoal`` ("explore" when what it needs is out of sight)."""
    if subgoal in DO_TARGETS:
        kind, tools = DO_TARGETS[subgoal]
        for tool, n in tools.items():
            if view.count(tool) < n:
                return _step_toward(_SOURCE_OF[tool], view)
        return subgoal if view.sees(kind) else "explore"
    if subgoal in PLACE:
        _, uses, _ = PLACE[subgoal]
        for item, n in uses.items():
            if view.count(item) < n:
                return _step_toward(_SOURCE_OF[item], view)
        return subgoal if is_admissible(subgoal, view) else "explore"
    if subgoal in MAKE:
        _, uses, stations = MAKE[subgoal]
        missing = [s for s in stations if not view.sees(s)]
        needed = dict(uses)
        for station in missing:  # a station out of sight is placed anew, so its materials are needed too
            for item, n in PLACE[f"place {station}"][1].items():
                needed[item] = needed.get(item, 0) + n
        for item, n in needed.items():
            if view.count(item) < n:
                return _step_toward(_SOURCE_OF[item], view)
        return f"place {missing[0]}" if missing else subgoal
    return subgoal if is_admissible(subgoal, view) else "explore"


def _survival(view: StateView) -> str | None:
    if view.sleeping:
        return "wake up"
    zombie = view.distance("zombie")
    if zombie == "adjacent":
        return "defeat zombie"  # it follows as fast as the player walks: fleeing only collects more hits
    if zombie in CLOSE_DISTANCES:
        return "avoid zombie" if view.count("health") <= DANGER_HEALTH else "defeat zombie"
    drink = view.count("drink")
    if (drink <= NEED_LEVEL and view.sees("water")) or (drink < ITEM_MAX and view.distance("water") == "adjacent"):
        return "drink water"  # water nearby is the cheapest moment to fill up
    if view.count("food") <= NEED_LEVEL:
        for source in ("eat cow", "eat plant"):
            if is_admissible(source, view):
                return source
    if view.count("drink") <= CRITICAL_LEVEL or view.count("food") <= CRITICAL_LEVEL:
        return "explore"  # no source in sight (else a rule above fired): finding one beats the tech tree and sleep
    if view.count("energy") <= TIRED_LEVEL and not _threat_in_sight(view):
        return "sleep"
    return None


def _threat_in_sight(view: StateView) -> bool:
    """Whether lying down is unsafe: a zombie hits a sleeper for 7 of 9 health, and skeletons shoot."""
    return view.sees("zombie") or view.sees("skeleton")


def _progress(view: StateView) -> str:
    """Best sub-goal for unlocking achievements, ignoring survival needs and threats."""
    for subgoal in OPPORTUNISTIC:
        if not view.has_unlocked(subgoal) and is_admissible(subgoal, view):
            return subgoal
    # Cheapest achievement of all, and without it a distilled student unlearns the sleep action that a
    # near-random policy stumbles on (measured: wake_up 27 % guided vs 95 % teacher-off, docs/benchmarks/crafter.md).
    if not view.has_unlocked("wake up") and is_admissible("wake up", view) and not _threat_in_sight(view):
        return "wake up"
    if view.count("health") > DANGER_HEALTH:
        for subgoal in FIGHTS:
            if not view.has_unlocked(subgoal) and is_admissible(subgoal, view):
                return subgoal
    for target in TECH_TREE:
        if not view.has_unlocked(target):
            step = _step_toward(target, view)
            if step != "explore":
                return step
    if any(not view.has_unlocked(t) for t in TECH_TREE):
        return "explore"
    # Everything on the tech tree is done: keep the vital stats up while looking around.
    for subgoal, stat in (("drink water", "drink"), ("eat cow", "food"), ("eat plant", "food")):
        if view.count(stat) < ITEM_MAX and is_admissible(subgoal, view):
            return subgoal
    return "explore"


def _pick(preferred: Sequence[str], options: Sequence[str]) -> str:
    for subgoal in preferred:
        if subgoal in options:
            return subgoal
    return "explore" if "explore" in options else options[0]


def correct_option(state_text: str, options: Sequence[str]) -> str:
    """The scripted teacher's sub-goal for ``state_text``, one of ``options``."""
    if not options:
        raise ValueError("correct_option needs at least one option")
    view = parse_state_text(state_text)
    survival = _survival(view)
    return _pick([s for s in (survival, _progress(view)) if s is not None], options)


def wrong_options(state_text: str, options: Sequence[str], correct: str) -> list[str]:
    """Plausible mistakes, most plausible first; non-empty whenever there are two or more options."""
    view = parse_state_text(state_text)
    mistakes: list[str] = []
    if _survival(view) == correct:
        mistakes.append(_progress(view))  # ignoring the need or the threat
    start = TECH_TREE.index(correct) + 1 if correct in TECH_TREE else 0
    mistakes.extend(TECH_TREE[start:])  # rushing ahead along the tech tree
    if correct != "explore":
        mistakes.append("explore")  # wandering off although the target is in sight
    mistakes.extend(options)
    out: list[str] = []
    for m in mistakes:
        if m != correct and m in options and m not in out:
            out.append(m)
    return out
