"""Connectors: the teacher's action distribution into the train batch, and PPO's clip for a lagged batch.

``TeacherProbsToBatch`` (env-to-module) carries the teacher's action distribution into the train batch.

The guided env puts ``info["teacher_probs"]`` on every step. This connector copies the latest one of each
episode into the forward batch with ``add_batch_item`` (assigning a tensor to the batch directly would break
RLlib's default batching connector). The RLModule returns it unchanged from ``_forward``, RLlib stores it as an
extra model output on the episode, and it reaches the learner's loss as ``batch["teacher_probs"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

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


class ClipAroundUpdateStartPolicy(ConnectorV2):
    """Learner connector for a lagged batch (``ppo.overlap_sampling``): PPO's clip taken around the policy at the
    start of the update instead of the older policy that sampled the batch ("decoupled" PPO, Hilton et al. 2021,
    *Batch size-invariance for policy optimization*).

    Runs after GAE. It replaces the stored log-probs with the current policy's, so the first minibatch starts at
    ratio 1 as in synchronous PPO, and multiplies each advantage by the importance weight pi_now / pi_sampled of
    the taken action, truncated at ``max_weight`` (V-trace's rho-bar) to bound its variance. PPO's own loss then
    computes ``w * min(r * A, clip(r) * A)`` with ``r = pi / pi_now``, so its code stays as RLlib has it.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *, max_weight: float = 1.0, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.max_weight = max_weight

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs):
        for module_id, module_batch in batch.items():
            module = rl_module[module_id]
            with torch.no_grad():
                logits = module.forward_train(module_batch)[Columns.ACTION_DIST_INPUTS]
                logp_now = module.get_train_action_dist_cls().from_logits(logits).logp(module_batch[Columns.ACTIONS])
            weight = torch.exp(logp_now - module_batch[Columns.ACTION_LOGP]).clamp(max=self.max_weight)
            module_batch[Postprocessing.ADVANTAGES] = module_batch[Postprocessing.ADVANTAGES] * weight
            module_batch[Columns.ACTION_LOGP] = logp_now
        return batch
