"""PPO whose env runners sample the next train batch while the learner trains on the current one.

RLlib's PPO samples, then learns, in turn: on a small box one core idles in each phase (docs/benchmarks/
throughput.md). ``OverlappedPPO`` overrides ``Algorithm.training_step`` (RLlib's documented point for a custom
training loop) so that a remote env runner keeps sampling during the update.

This is not synchronous PPO any more: every batch is sampled by the policy one update older than the one it
trains (a policy lag of one update, as in IMPALA/APPO-style pipelines). The learner therefore clips around the
policy its update starts from and weights each advantage by a truncated importance ratio to the policy that
sampled it (``ClipAroundUpdateStartPolicy`` in ``connectors.py``, added by the learner in this mode). What is
learned can change, so the option is off by default (``ppo.overlap_sampling``) and both arms of a comparison
get the same setting.

Sequence in iteration k (the batch in flight was requested in iteration k-1, with the runners' weights then):

1. collect the batch in flight (the first iteration, or a runner that failed, samples synchronously instead);
2. request the next batch, which the runners sample with the weights they hold now (before this update);
3. update the learner on the collected batch;
4. send the new weights fire-and-forget: an actor runs calls in order, so a runner applies them after the
   sample in flight, before the next request.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.ppo import PPO
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

IN_FLIGHT_TAG = "llmrl_next_batch"


def _sample_with_metrics(runner: Any) -> tuple[list[Any], dict[str, Any]]:
    return runner.sample(), runner.get_metrics()


class OverlappedPPO(PPO):
    """PPO with sampling overlapped with learning (a one-update policy lag); see the module docstring."""

    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = self._collect_batch()
            if not episodes:
                return
            self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
            self.env_runner_group.foreach_env_runner_async(_sample_with_metrics, tag=IN_FLIGHT_TAG)

        # The update and the weight sync below are PPO.training_step's own (RLlib has no hook for sampling
        # alone); only the sync is fire-and-forget here.
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
                },
                num_epochs=self.config.num_epochs,
                minibatch_size=self.config.minibatch_size,
                shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(learner_results[0].keys()) - {ALL_MODULES},
                inference_only=True,
                timeout_seconds=0.0,  # fire-and-forget: queued behind the sample in flight
            )

    def _collect_batch(self) -> tuple[list[Any], list[dict[str, Any]]]:
        """The batch requested in the previous iteration, topped up synchronously to a full train batch when
        nothing was in flight (the first iteration, after a restore) or a runner failed or timed out."""
        episodes: list[Any] = []
        runner_metrics: list[dict[str, Any]] = []
        if self.env_runner_group.num_in_flight_async_reqs(tag=IN_FLIGHT_TAG):
            ready = self.env_runner_group.fetch_ready_async_reqs(
                tags=IN_FLIGHT_TAG, timeout_seconds=self.config.sample_timeout_s)
            for _, (runner_episodes, metrics) in ready:
                episodes.extend(runner_episodes)
                runner_metrics.append(metrics)
        missing = self.config.total_train_batch_size - sum(len(e) for e in episodes)
        if missing > 0:
            more, more_metrics = synchronous_parallel_sample(
                worker_set=self.env_runner_group, max_env_steps=missing,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True, _return_metrics=True,
            )
            episodes.extend(more)
            runner_metrics.extend(more_metrics)
        return episodes, runner_metrics
