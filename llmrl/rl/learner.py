"""PPO learner with LLM4Teach's distillation term: loss = L_PPO + lambda(t) * CE(pi_teacher, pi_student).

The CE term counts only steps that carry advice (``teacher_probs`` sums to > 0) and uses the same
``Columns.LOSS_MASK`` as the PPO terms, so padded / artificial bootstrap steps never contribute. lambda(t) follows
``llmrl.schedule.distill_coef`` with t = learner updates so far; t is part of the learner state, so it is saved
in checkpoints and a resumed run continues the schedule where it stopped.

With ``ppo.overlap_sampling`` (batches sampled one update ago) the learner also appends
``ClipAroundUpdateStartPolicy`` to its connector pipeline after GAE; synchronous runs keep RLlib's pipeline.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

from llmrl.config import DistillConfig
from llmrl.envs.guided import TEACHER_PROBS
from llmrl.rl.connectors import ClipAroundUpdateStartPolicy
from llmrl.schedule import distill_coef

DISTILL_STATE = "llmrl_distill"


def distillation_loss(
    logits: torch.Tensor, teacher_probs: torch.Tensor, loss_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy -sum_a pi_T(a) log pi_S(a) over valid advised steps, and the number of such steps."""
    advised = teacher_probs.sum(-1) > 0
    if loss_mask is not None:
        advised = advised & loss_mask.bool()
    n = advised.sum()
    ce = -(teacher_probs * torch.log_softmax(logits, dim=-1)).sum(-1)
    mean = torch.where(n > 0, (ce * advised).sum() / n.clamp(min=1), torch.zeros((), device=logits.device))
    return mean, n


class DistillPPOTorchLearner(PPOTorchLearner):
    def build(self) -> None:
        super().build()
        self._distill_cfg = DistillConfig(**self.config.learner_config_dict["distill"])
        self._distill_updates = 0
        if self.config.learner_config_dict.get("overlap_sampling") and self._learner_connector is not None:
            # A batch sampled one update ago (ppo.overlap_sampling): clip around the policy the update starts
            # from, after GAE has written the advantages.
            self._learner_connector.append(ClipAroundUpdateStartPolicy())

    @property
    def distill_coef(self) -> float:
        return distill_coef(self._distill_updates, self._distill_cfg)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        coef = self.distill_coef
        if TEACHER_PROBS not in batch:
            return loss
        ce, n_advised = distillation_loss(
            fwd_out[Columns.ACTION_DIST_INPUTS], batch[TEACHER_PROBS], batch.get(Columns.LOSS_MASK)
        )
        self.metrics.log_dict(
            {
                "distill_ce": ce.detach(),
                "distill_coef": coef,
                "advised_frac": (n_advised.float() / max(1, batch[TEACHER_PROBS].shape[0])).detach(),
            },
            key=module_id,
            window=1,
        )
        return loss + coef * ce if coef > 0 else loss

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self._distill_updates += 1

    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(DISTILL_STATE, components, not_components):
            state[DISTILL_STATE] = {"updates": self._distill_updates}
        return state

    def set_state(self, state) -> None:
        distill = state.get(DISTILL_STATE)
        if distill is not None:
            self._distill_updates = int(distill["updates"])
        super().set_state({k: v for k, v in state.items() if k != DISTILL_STATE})
