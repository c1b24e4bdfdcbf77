"""The Crafter family's spec (``llmrl.core.FamilySpec``), with its metrics-row and summary fields.

Light on purpose (config validation, the teacher service and prompts import it): crafter itself is imported only
when a task is built. The metrics follow the Crafter benchmark's protocol: success rates over every training
episode within the step budget, combined into the Crafter score.
"""

from __future__ import annotations

import math
from typing import Any

from llmrl.core import ASK_EVERY_K_OR_DONE, FamilySpec
from llmrl.envs.crafter.score import ACHIEVEMENTS, crafter_score

CRAFTER_TASKS = ("Crafter",)
NUM_ACTIONS = 17  # crafter.constants.actions; a test checks it against the installed crafter


def _names() -> tuple[str, ...]:
    return CRAFTER_TASKS


def _make_task(cfg: Any, seed: int | None) -> Any:
    from llmrl.envs.crafter.adapter import make_task

    return make_task(cfg, seed)


def _running(state: Any) -> dict[str, Any]:
    """This family's running totals in ``LoopState.family_state``: training episodes so far, and in how many
    each achievement was unlocked."""
    fs = state.family_state
    fs.setdefault("train_episodes", 0)
    fs.setdefault("train_achievements", {})
    return fs


def _percent(counts: dict[str, float], episodes: int) -> dict[str, float]:
    return {name: 100.0 * counts.get(name, 0.0) / episodes if episodes else 0.0 for name in ACHIEVEMENTS}


def crafter_metrics(result: dict[str, Any], state: Any) -> dict[str, Any]:
    """Crafter scores (percent) for the metrics row: ``crafter_score`` from the last evaluation (as the summary),
    ``train_crafter_score`` from every training episode so far, which is how the Crafter benchmark scores an
    agent (success rates over all episodes within the step budget), per-achievement training rates, and the
    return of Crafter's own reward (``episode_return_mean`` includes the intrinsic bonus)."""
    from llmrl.rl.callbacks import ACHIEVEMENT_COUNT_PREFIX, ACHIEVEMENT_EPISODES, ENV_RETURN

    runners = result.get("env_runners", {})
    totals = _running(state)
    totals["train_episodes"] += int(runners.get(ACHIEVEMENT_EPISODES, 0))
    unlocked = totals["train_achievements"]
    for key, value in runners.items():
        if key.startswith(ACHIEVEMENT_COUNT_PREFIX):
            name = key[len(ACHIEVEMENT_COUNT_PREFIX):]
            unlocked[name] = unlocked.get(name, 0.0) + float(value)
    evaluated = state.last_eval.get("eval_achievements", {})
    episodes = totals["train_episodes"]
    train_rates = _percent(unlocked, episodes)
    row: dict[str, Any] = {
        "crafter_score": crafter_score({n: 100.0 * r for n, r in evaluated.items()}) if evaluated else math.nan,
        "train_crafter_score": crafter_score(train_rates) if episodes else math.nan,
        "train_episodes": episodes,
        "env_return_mean": float(runners.get(ENV_RETURN, math.nan)),
    }
    row.update({f"train_ach/{name}": rate / 100.0 for name, rate in train_rates.items()})
    return row


def crafter_summary(state: Any) -> dict[str, Any]:
    """Summary fields: the last evaluation's achievement rates and Crafter score (null when the run never
    evaluated: no score is not a score of 0), and the same over every training episode."""
    totals = _running(state)
    evaluated = state.last_eval.get("eval_achievements", {})
    rates = {name: 100.0 * evaluated.get(name, 0.0) for name in ACHIEVEMENTS} if evaluated else None
    train_rates = _percent(totals["train_achievements"], totals["train_episodes"])
    return {
        "achievements": rates,
        "crafter_score": crafter_score(rates) if rates is not None else None,
        "train_episodes": totals["train_episodes"],
        "train_achievements": train_rates,
        "train_crafter_score": crafter_score(train_rates),
    }


def _raw_stepper(cfg: Any, seed: int) -> tuple[Any, Any, int]:
    import crafter

    from llmrl.envs.crafter.adapter import VIEW, WORLD_AREA

    env = crafter.Env(area=WORLD_AREA, view=VIEW, size=(cfg.crafter_size, cfg.crafter_size), length=cfg.max_steps,
                      seed=seed)
    return env.reset, (lambda a: bool(env.step(a)[2])), int(env.action_space.n)


SPEC = FamilySpec(
    name="crafter",
    num_actions=NUM_ACTIONS,
    encoder="image_subgoal",
    names=_names,
    make_task=_make_task,
    planner="llmrl.envs.crafter.planner",
    ask=ASK_EVERY_K_OR_DONE,
    # Crafter scores the stochastic policy, as its benchmark does: a greedy student repeats the same action for
    # as long as its view does not change (e.g. walking into a tree).
    eval_explore=True,
    # The student is conditioned on the teacher's sub-goals, so it keeps its teacher at evaluation (AdaRefiner).
    eval_with_teacher=True,
    option_word=("sub-goal", "sub-goals"),
    achievements=ACHIEVEMENTS,
    score=crafter_score,
    metrics=crafter_metrics,
    summary=crafter_summary,
    raw_stepper=_raw_stepper,
)
