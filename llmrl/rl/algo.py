"""Build RLlib's ``PPOConfig`` from an llmrl ``Config`` (new API stack)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from llmrl.config import Config
from llmrl.envs.registry import family_spec
from llmrl.rl.callbacks import make_callbacks
from llmrl.rl.connectors import TeacherProbsToBatch
from llmrl.rl.env import ENV_ID, build_guided_env
from llmrl.rl.learner import DistillPPOTorchLearner
from llmrl.rl.module import GuidedStudentModule
from llmrl.rl.overlap import OverlappedPPO


def build_ppo_config(cfg: Config, namespace: str | None = None) -> PPOConfig:
    register_env(ENV_ID, build_guided_env)
    env_config = {"llmrl": cfg.to_dict(), "namespace": namespace, "evaluation": False}
    spec = family_spec(cfg.env.name)
    n_actions = spec.num_actions
    res = cfg.resources
    ppo = cfg.ppo
    config = (
        PPOConfig(algo_class=OverlappedPPO if ppo.overlap_sampling else None)
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(ENV_ID, env_config=env_config)
        .framework("torch")
        .env_runners(
            num_env_runners=res.num_env_runners,
            num_envs_per_env_runner=res.num_envs_per_env_runner,
            num_cpus_per_env_runner=res.num_cpus_per_env_runner,
            env_to_module_connector=lambda env, spaces=None, device=None: TeacherProbsToBatch(num_actions=n_actions),
        )
        .learners(
            num_learners=res.num_learners,
            num_gpus_per_learner=res.num_gpus_per_learner,
            learner_class=DistillPPOTorchLearner,
            learner_config_dict={"distill": dataclasses.asdict(cfg.distill), "overlap_sampling": ppo.overlap_sampling},
        )
        .training(
            lr=ppo.lr,
            gamma=ppo.gamma,
            lambda_=ppo.gae_lambda,
            clip_param=ppo.clip_param,
            vf_loss_coeff=ppo.vf_loss_coeff,
            entropy_coeff=ppo.entropy_coeff,
            num_epochs=ppo.num_epochs,
            minibatch_size=ppo.minibatch_size,
            train_batch_size_per_learner=ppo.train_batch_size,
            grad_clip=ppo.grad_clip,
            use_kl_loss=False,
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=GuidedStudentModule,
                model_config={
                    "encoder": spec.encoder,
                    "embed_dim": cfg.model.embed_dim,
                    "hidden": cfg.model.hidden,
                    "conv_channels": list(cfg.model.conv_channels),
                    "grid_channels": list(cfg.model.grid_channels),
                    "grid_first_stride": cfg.model.grid_first_stride,
                    "subgoal_embed_dim": cfg.model.subgoal_embed_dim,
                    "mission_embed_dim": cfg.model.mission_embed_dim,
                },
            )
        )
        .callbacks(make_callbacks(cfg.run.eval_episodes, spec.achievements))
        .evaluation(
            evaluation_interval=cfg.run.eval_every,
            evaluation_duration=cfg.run.eval_episodes,
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=1 if cfg.run.parallel_eval else 0,
            evaluation_parallel_to_training=cfg.run.parallel_eval,
            # Evaluation episodes run side by side in one vector env: one batched forward per step instead of
            # one per episode (sequential eval episodes cost more than training on a small box).
            evaluation_config=PPOConfig.overrides(
                env_config={**env_config, "evaluation": True},
                explore=spec.eval_explore,
                num_envs_per_env_runner=min(cfg.run.eval_episodes, 10),
                num_cpus_per_env_runner=0 if cfg.run.parallel_eval else res.num_cpus_per_env_runner,
            ),
        )
        .fault_tolerance(restart_failed_env_runners=True)
        .reporting(metrics_num_episodes_for_smoothing=cfg.run.eval_episodes)
        .debugging(seed=cfg.run.seed, log_level="WARN")
    )
    if ppo.overlap_sampling:
        # RLlib gathers and re-broadcasts the runners' connector states after each iteration, a blocking call
        # that would wait for the sample in flight. Ours are stateless (no observation filters), so an
        # overlapped run skips it; a synchronous one keeps RLlib's defaults.
        config.env_runners(merge_env_runner_states=False, broadcast_env_runner_states=False)
    return config


def env_steps_of(result: dict[str, Any]) -> int:
    """Lifetime env steps sampled, from an RLlib result dict."""
    runners = result.get("env_runners", {})
    return int(runners.get("num_env_steps_sampled_lifetime", 0))
