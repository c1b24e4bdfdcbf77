"""Env-to-module connector that carries the teacher's action distribution into the train batch.

The guided env puts ``info["teacher_probs"]`` on every step. This connector copies the latest one of each
episode into the forward batch with ``add_batch_item`` (assigning a tensor to the batch directly would break
RLlib's default batching connector). The RLModule returns it unchanged from ``_forward``, RLlib stores it as an
extra model output on the episode, and it reaches the learner's loss as ``batch["teacher_probs"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2

from llmrl.envs.guided import TEACHER_PROBS


class TeacherProbsToBatch(ConnectorV2):
    def __init__(self, input_observation_space=None, input_action_space=None, *, num_actions: int = 0, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self._zeros = np.zeros(num_actions, dtype=np.float32)

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None, shared_data=None, **kwargs):
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=True):
            info = episode.get_infos(-1) if len(episode.infos) else {}
            probs = info.get(TEACHER_PROBS, self._zeros) if isinstance(info, dict) else self._zeros
            self.add_batch_item(batch, TEACHER_PROBS, np.asarray(probs, dtype=np.float32), single_agent_episode=episode)
        return batch
