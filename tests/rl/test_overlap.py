"""``ppo.overlap_sampling``: the env runners sample the next batch while the learner trains (llmrl/rl/overlap.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrl.config import load_config
from llmrl.config.schema import ConfigError, PPOConfig
from llmrl.rl.algo import build_ppo_config
from llmrl.rl.overlap import IN_FLIGHT_TAG, OverlappedPPO

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"
TINY = ["ppo.train_batch_size=256", "ppo.num_epochs=1", "ppo.minibatch_size=128", "run.eval_episodes=2",
        "resources.num_envs_per_env_runner=2", "resources.learner_torch_threads=1"]


def test_overlap_is_off_by_default_and_synchronous_ppo_keeps_rllib_defaults():
    assert PPOConfig().overlap_sampling is False
    ppo = build_ppo_config(load_config(CONFIG, []))
    assert ppo.algo_class is not OverlappedPPO
    assert ppo.merge_env_runner_states == "training_only" and ppo.broadcast_env_runner_states


def test_overlap_builds_the_overlapped_algorithm_without_blocking_connector_state_syncs():
    ppo = build_ppo_config(load_config(CONFIG, ["ppo.overlap_sampling=true"]))
    assert ppo.algo_class is OverlappedPPO
    assert ppo.merge_env_runner_states is False and ppo.broadcast_env_runner_states is False


def test_overlap_without_remote_env_runners_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"^ppo\.overlap_sampling: needs resources\.num_env_runners >= 1"):
        load_config(CONFIG, ["ppo.overlap_sampling=true", "resources.num_env_runners=0"])


def _weights(state: dict) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in state.items()}


@pytest.mark.integration
def test_each_iteration_trains_one_batch_and_leaves_the_next_in_flight_then_the_runner_gets_the_new_weights(
        ray_local):
    from llmrl.training.graph import build_graph

    cfg = load_config(CONFIG, TINY + ["run.parallel_eval=false", "ppo.overlap_sampling=true"])
    graph = build_graph(cfg)
    try:
        algo = graph.algo
        assert isinstance(algo, OverlappedPPO)
        group = algo.env_runner_group
        steps = []
        for _ in range(3):
            result = algo.train()
            steps.append(result["env_runners"]["num_env_steps_sampled_lifetime"])
            assert group.num_in_flight_async_reqs(tag=IN_FLIGHT_TAG) == 1
        # One train batch collected per iteration (the first sampled synchronously, the rest were in flight).
        assert all(b - a >= 256 for a, b in zip([0] + steps, steps))
        updates = algo.learner_group.foreach_learner(lambda learner: learner._distill_updates)
        assert [r.get() for r in updates] == [3]
        pieces = algo.learner_group.foreach_learner(
            lambda learner: [type(c).__name__ for c in learner._learner_connector.connectors])
        assert [r.get() for r in pieces][0][-2:] == ["GeneralAdvantageEstimation", "ClipAroundUpdateStartPolicy"]
        # The weights were sent fire-and-forget behind the sample in flight: once that sample is done, the
        # runner holds the learner's newest weights.
        runner_state = group.foreach_env_runner(lambda r: r.module.get_state(inference_only=True),
                                                local_env_runner=False)[0]
        learner_state = algo.learner_group.get_weights()["default_policy"]
        for name, value in _weights(learner_state).items():
            assert torch.equal(_weights(runner_state)[name], value), name
    finally:
        graph.stop()


@pytest.mark.integration
@pytest.mark.parametrize("parallel_eval", [True, False])
def test_success_is_dated_with_the_batch_that_was_sampled_while_the_scored_policy_trained(
        tmp_path, ray_local, parallel_eval):
    from llmrl.training.loop import train

    cfg = load_config(CONFIG, TINY + ["run.max_env_steps=512", "run.success_threshold=0.0",
                                      f"run.parallel_eval={str(parallel_eval).lower()}",
                                      "ppo.overlap_sampling=true", f"run.out_dir={tmp_path}"])
    summary = train(cfg, stream=None)
    # Threshold 0 is met by the first evaluation. A parallel one scored the initial policy, which existed
    # while the first batch in flight was sampled (256 steps); a sequential one scored the policy after the
    # first update, during which the second batch was sampled (512).
    assert summary["steps_to_success"] == (256 if parallel_eval else 512)


class _FixedPolicy:
    """Stands in for the learner's RLModule: fixed logits (the connector only needs forward_train and the dist)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def forward_train(self, batch):
        from ray.rllib.core.columns import Columns
        return {Columns.ACTION_DIST_INPUTS: self.logits}

    def get_train_action_dist_cls(self):
        from ray.rllib.models.torch.torch_distributions import TorchCategorical
        return TorchCategorical


def test_the_lagged_batch_is_clipped_around_the_update_start_policy_with_a_truncated_importance_weight():
    from ray.rllib.core.columns import Columns
    from ray.rllib.evaluation.postprocessing import Postprocessing

    from llmrl.rl.connectors import ClipAroundUpdateStartPolicy

    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    actions = torch.tensor([0, 0, 0])
    logp_now = torch.log_softmax(logits, -1)[torch.arange(3), actions]
    # Sampled by a policy that gave action 0: the same probability, less (weight > 1), more (weight < 1).
    logp_sampled = logp_now + torch.tensor([0.0, -0.5, 0.7])
    advantages = torch.tensor([1.0, -2.0, 3.0])
    batch = {"default_policy": {Columns.ACTIONS: actions, Columns.ACTION_LOGP: logp_sampled.clone(),
                                Postprocessing.ADVANTAGES: advantages.clone()}}
    out = ClipAroundUpdateStartPolicy()(rl_module={"default_policy": _FixedPolicy(logits)}, batch=batch,
                                        episodes=[])["default_policy"]
    assert torch.allclose(out[Columns.ACTION_LOGP], logp_now)
    expected = advantages * torch.tensor([1.0, 1.0, float(torch.exp(torch.tensor(-0.7)))])
    assert torch.allclose(out[Postprocessing.ADVANTAGES], expected)
