"""RLlib callbacks: per-episode success / achievements, and the env-runner teacher-client counters."""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback

SUCCESS = "llmrl/success"
ACHIEVEMENT_PREFIX = "llmrl/ach/"
# Per-iteration sums, so a family's metrics can rate achievements over all training episodes (Crafter's protocol).
ACHIEVEMENT_COUNT_PREFIX = "llmrl/ach_count/"
ACHIEVEMENT_EPISODES = "llmrl/ach_episodes"
ENV_RETURN = "llmrl/env_return"  # episode return without the intrinsic bonus (tasks reporting achievements)
CLIENT_PREFIX = "llmrl/"

# Client counters are per process, and the driver can host both a training and an evaluation env runner (each
# with its own callbacks object): one record per process reports every increase exactly once.
_REPORTED: dict[str, float] = {}


class GuidanceCallbacks(RLlibCallback):
    """Windows are set from the config (see ``make_callbacks``) so eval success covers exactly one eval round;
    ``achievements`` are the family's (``FamilySpec.achievements``)."""

    window = 100
    achievements: tuple[str, ...] = ()

    def on_episode_end(self, *, episode, metrics_logger=None, env=None, env_index=0, **kwargs) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1) if len(episode.infos) else {}
        metrics_logger.log_value(SUCCESS, float(bool(info.get("success", False))), window=self.window)
        unlocked = info.get("episode_achievements")
        if unlocked is not None:
            for name in self.achievements:
                metrics_logger.log_value(ACHIEVEMENT_PREFIX + name, float(name in unlocked), window=self.window)
                metrics_logger.log_value(ACHIEVEMENT_COUNT_PREFIX + name, float(name in unlocked), reduce="sum")
            metrics_logger.log_value(ACHIEVEMENT_EPISODES, 1.0, reduce="sum")
            metrics_logger.log_value(ENV_RETURN, float(info["episode_env_return"]), window=self.window)

    def on_sample_end(self, *, env_runner=None, metrics_logger=None, samples=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        from llmrl.envs.guided import feedback_sender_stats
        from llmrl.teacher.client import all_client_stats

        # Counters are cumulative per process; report the increase since the last sample as a per-iteration sum.
        current = {**all_client_stats(), **feedback_sender_stats()}
        for key, value in current.items():
            delta = value - _REPORTED.get(key, 0.0)
            _REPORTED[key] = value
            metrics_logger.log_value(CLIENT_PREFIX + key, delta, reduce="sum")


def forget_process_counters() -> None:
    """End of a run: forget this process's teacher clients and feedback senders and what was reported of them,
    so the next run in the same process starts from zero with fresh handles."""
    from llmrl.envs.guided import forget_feedback_senders
    from llmrl.teacher.client import forget_shared_clients

    forget_shared_clients()
    forget_feedback_senders()
    _REPORTED.clear()


def make_callbacks(window: int, achievements: tuple[str, ...] = ()) -> type[GuidanceCallbacks]:
    return type("GuidanceCallbacksW", (GuidanceCallbacks,), {"window": window, "achievements": tuple(achievements)})
