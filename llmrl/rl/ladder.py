"""Timed pieces of one RLlib PPO algorithm, for ``llmrl bench throughput`` (every RLlib call of the bench lives here).

Each function times one phase of ``algo.train()`` on its own, with a wall clock (RLlib's own phase timers are
moving averages, not per-call times), and returns ``(units, seconds)``:

- ``time_sampling``: the env runners' ``sample()`` (real runners, connectors, guided env, teacher);
- ``time_learner``: ``learner_group.update`` on one fixed batch of episodes sampled beforehand, with the
  algorithm's own epochs and minibatch size (learner connectors, GAE, forward, backward, Adam);
- ``time_evaluation``: ``algo.evaluate()`` rounds (the configured eval episodes);
- ``time_train``: whole ``algo.train()`` iterations (what a user sees).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

from llmrl.rl.algo import env_steps_of


def _samples_on_runners(algo: Any, steps: int) -> int:
    cfg = algo.config
    remote = cfg.num_env_runners > 0
    per_runner = max(1, steps // max(1, cfg.num_env_runners))
    counts = algo.env_runner_group.foreach_env_runner(
        lambda runner: sum(len(e) for e in runner.sample(num_timesteps=per_runner, random_actions=False)),
        local_env_runner=not remote,
    )
    return int(sum(counts))


def time_sampling(algo: Any, steps: int) -> tuple[int, float]:
    """Env steps sampled by the training env runners, and the seconds they took (after a short warm-up)."""
    _samples_on_runners(algo, min(steps, 512))  # env construction, first teacher queries, torch kernels
    t0 = time.perf_counter()
    sampled = _samples_on_runners(algo, steps)
    return sampled, time.perf_counter() - t0


def time_learner(algo: Any, updates: int) -> tuple[int, float]:
    """Samples trained per second: ``updates`` PPO updates on one train batch sampled beforehand.

    The learner connectors extend episodes in place (the bootstrap step), so each update gets a fresh copy,
    made outside the timed part. The first update is a warm-up.
    """
    cfg = algo.config
    episodes = synchronous_parallel_sample(
        worker_set=algo.env_runner_group, max_env_steps=cfg.total_train_batch_size,
        _uses_new_env_runners=True, _return_metrics=False,
    )
    batch_steps = sum(len(e) for e in episodes)

    def update() -> float:
        fresh = copy.deepcopy(episodes)
        t0 = time.perf_counter()
        algo.learner_group.update(
            episodes=fresh, timesteps={}, num_epochs=cfg.num_epochs, minibatch_size=cfg.minibatch_size,
            shuffle_batch_per_epoch=cfg.shuffle_batch_per_epoch,
        )
        return time.perf_counter() - t0

    update()
    seconds = sum(update() for _ in range(max(1, updates)))
    return batch_steps * max(1, updates), seconds


def _eval_steps(result: dict[str, Any]) -> int:
    runners = result.get("env_runners", result.get("evaluation", {}).get("env_runners", {}))
    return int(runners.get("num_env_steps_sampled", 0))


def time_evaluation(algo: Any, rounds: int) -> tuple[int, float, int]:
    """(eval env steps, seconds, rounds) over ``rounds`` calls of ``algo.evaluate()`` (after one warm-up)."""
    algo.evaluate()
    steps = 0
    t0 = time.perf_counter()
    for _ in range(max(1, rounds)):
        steps += _eval_steps(algo.evaluate())
    return steps, time.perf_counter() - t0, max(1, rounds)


def time_train(algo: Any, iterations: int) -> tuple[int, float]:
    """Training env steps and seconds over ``iterations`` ``algo.train()`` calls (after one warm-up call)."""
    before = env_steps_of(algo.train())
    t0 = time.perf_counter()
    after = before
    for _ in range(max(1, iterations)):
        after = env_steps_of(algo.train())
    return after - before, time.perf_counter() - t0
