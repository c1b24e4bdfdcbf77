"""RLlib callbacks: per-episode success / achievements, and the env-runner teacher-client counters."""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback

SUCCESS = "llmrl/success"
ACHIEVEMENT_PREFIX = "llmrl/ach/"
CLIENT_PREFIX = "llmrl/"


class GuidanceCallbacks(RLlibCallback):
    """Windows are set from the config (see ``make_callbacks``) so eval success covers exactly one eval round."""

    window = 100

    def __init__(self):
        super().__init__()
        self._reported: dict[str, float] = {}

    def on_episode_end(self, *, episode, metrics_logger=None, env=None, env_index=0, **kwargs) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1) if len(episode.infos) else {}
        metrics_logger.log_value(SUCCESS, float(bool(info.get("success", False))), window=self.window)
        unlocked = info.get("episode_achievements")
        if unlocked is not None:
            from llmrl.envs.crafter.score import ACHIEVEMENTS

            for name in ACHIEVEMENTS:
                metrics_logger.log_value(ACHIEVEMENT_PREFIX + name, float(name in unlocked), window=self.window)

    def on_sample_end(self, *, env_runner=None, metrics_logger=None, samples=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        from llmrl.envs.guided import feedback_sender_stats
        from llmrl.teacher.client import all_client_stats

        # Counters are cumulative per process; report the increase since the last sample as a per-iteration sum.
        current = {**all_client_stats(), **feedback_sender_stats()}
        for key, value in current.items():
            delta = value - self._reported.get(key, 0.0)
            self._reported[key] = value
            metrics_logger.log_value(CLIENT_PREFIX + key, delta, reduce="sum")


def make_callbacks(window: int) -> type[GuidanceCallbacks]:
    return type("GuidanceCallbacksW", (GuidanceCallbacks,), {"window": window})
