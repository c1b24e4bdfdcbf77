"""Checks of a built config tree beyond its types (choices, ranges, rules across sections), and what a tree
implies (the adapter's base model, the chat template the teacher renders). Errors name the key."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from llmrl.config.schema import PROMPT_STYLES, TEACHER_BACKENDS, AdapterConfig, Config, ConfigError

_CHOICES: dict[str, tuple[str, ...]] = {
    "teacher.backend": TEACHER_BACKENDS,
    "teacher.mode": ("soft", "hard"),
    "teacher.routing": ("least_pending", "affinity"),
    "teacher.hf.selection": ("score", "sample"),
    "teacher.hf.chat_template": ("auto", "on", "off"),
    "teacher.prompt_style": PROMPT_STYLES,
    "teacher.vllm.selection": ("choice", "score"),
    "teacher.openai.selection": ("sample", "choice"),
    "feedback.credit": ("plan", "episode"),
    "teacher.replay.fallback": ("none", "scripted", "hf", "vllm", "openai"),
    "adapter.role": ("teacher", "analyst"),
    "adapter.pair_label": ("advised", "achieved"),
    "adapter.loss": ("nll", "choice"),
    "adapter.accept": ("heldout_loss", "plan_accuracy"),
    "feedback.comprehension_embedder": ("bag_of_words", "sentence_transformers", "lm_mean_hidden"),
}
_NON_NEGATIVE = {
    "teacher.error_rate", "teacher.max_wait_ms", "teacher.advice_timeout_s", "teacher.retry_after_s", "teacher.bank_refresh_s", "feedback.max_restarts",
    "feedback.flush_s",
    "teacher.bank_min_interval_s", "teacher.rescore_recent", "teacher.hf.torch_threads",
    "teacher.num_gpus", "teacher.num_cpus", "teacher.max_restarts", "distill.coef_start", "distill.coef_decrement",
    "distill.coef_floor", "distill.cutoff_updates", "env.intrinsic_reward", "resources.num_env_runners",
    "resources.num_gpus", "resources.num_learners", "resources.learner_torch_threads", "resources.num_gpus_per_learner", "ppo.entropy_coeff",
    "teacher.openai.max_retries", "teacher.openai.backoff_s", "run.seed", "teacher.seed", "env.max_steps",
    "teacher.log_hash_weights_max_mb",
    "adapter.dropout", "adapter.poll_s", "adapter.num_cpus", "adapter.num_gpus", "adapter.max_restarts",
    "adapter.seed", "adapter.analysis_temperature",
}
_POSITIVE = {
    "env.room_min", "env.room_max", "env.agent_view_size", "env.ask_every_k",
    "teacher.max_batch_size", "teacher.cache_size", "teacher.client_cache_size", "teacher.num_replicas",
    "teacher.rescore_batch_size", "teacher.rescore_max_busy",
    "teacher.hf.num_samples", "teacher.hf.max_new_tokens", "teacher.vllm.num_samples", "teacher.vllm.max_model_len",
    "teacher.vllm.tensor_parallel_size", "teacher.openai.timeout_s", "teacher.openai.max_concurrency",
    "teacher.openai.num_samples", "feedback.publish_every", "feedback.flush_every", "feedback.max_tracked_states",
    "feedback.compact_every",
    "ppo.lr", "ppo.num_epochs", "ppo.minibatch_size", "ppo.train_batch_size", "resources.num_cpus",
    "resources.num_envs_per_env_runner", "run.max_env_steps", "run.eval_every", "run.eval_episodes",
    "run.checkpoint_every", "teacher.log_flush_s", "teacher.log_max_mb", "teacher.log_queue_size",
    "model.grid_first_stride", "model.mission_embed_dim", "adapter.r", "adapter.alpha", "adapter.lr", "adapter.epochs", "adapter.batch_size",
    "adapter.train_every_episodes", "adapter.min_new_pairs", "adapter.min_label_votes", "adapter.max_pairs", "adapter.torch_threads",
    "adapter.analysis_tokens", "adapter.analysis_cache_size",
}
_UNIT_INTERVAL = {"teacher.error_rate", "teacher.rescore_max_busy", "run.success_threshold", "adapter.heldout_frac",
                  "adapter.dropout", "teacher.vllm.gpu_memory_utilization", "ppo.gamma", "ppo.gae_lambda"}


def _flat_items(obj: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            yield from _flat_items(v, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", v


def validate(cfg: Config) -> Config:
    for key, v in _flat_items(cfg):
        if key in _CHOICES and v not in _CHOICES[key]:
            raise ConfigError(f"{key}: must be one of {', '.join(_CHOICES[key])}, got {v!r}")
        if key in _NON_NEGATIVE and v < 0:
            raise ConfigError(f"{key}: must be >= 0, got {v!r}")
        if key in _POSITIVE and v <= 0:
            raise ConfigError(f"{key}: must be > 0, got {v!r}")
        if key in _UNIT_INTERVAL and not 0.0 <= v <= 1.0:
            raise ConfigError(f"{key}: must be within [0, 1], got {v!r}")
    from llmrl.envs.registry import check_env_config

    # env.name names a known task or a user's factory, and its family's own rules hold.
    spec = check_env_config(cfg.env)
    if cfg.teacher.backend == "scripted" and spec.planner is None:
        raise ConfigError(f"teacher.backend: scripted needs a scripted planner, and {cfg.env.name} has none "
                          "(family_spec.planner)")
    if cfg.env.max_steps == 0 and not spec.env_step_limit:
        raise ConfigError(f"env.max_steps: 0 (the environment's own limit) is only for families that keep one "
                          f"(registered MiniGrid-*/BabyAI-* ids); {cfg.env.name} needs a limit > 0")
    if cfg.env.room_min > cfg.env.room_max:
        raise ConfigError(f"env.room_min: must be <= env.room_max ({cfg.env.room_max}), got {cfg.env.room_min}")
    style = cfg.teacher.prompt_style
    if style != "plain" and style not in spec.prompt_styles:
        raise ConfigError(f"teacher.prompt_style: {cfg.env.name} has no {style!r} task prompt "
                          f"(its family writes: {', '.join(spec.prompt_styles)})")
    if cfg.ppo.overlap_sampling and cfg.resources.num_env_runners == 0:
        raise ConfigError("ppo.overlap_sampling: needs resources.num_env_runners >= 1 (sampling in the driver "
                          "cannot overlap the learner there)")
    if cfg.ppo.minibatch_size > cfg.ppo.train_batch_size:
        raise ConfigError("ppo.minibatch_size: must be <= ppo.train_batch_size")
    if not 0 <= cfg.teacher.cpu_nice <= 19:
        raise ConfigError(f"teacher.cpu_nice: must be within 0..19 (Unix niceness), got {cfg.teacher.cpu_nice}")
    if 2 * cfg.teacher.rescore_recent > cfg.teacher.cache_size:
        # Re-scored answers and the previous version's must fit in the service cache together.
        raise ConfigError(f"teacher.rescore_recent: must be <= teacher.cache_size / 2 ({cfg.teacher.cache_size // 2}), "
                          f"got {cfg.teacher.rescore_recent}")
    # A replay run builds its fallback backend from the same teacher config, so that one needs its settings too.
    backends = {cfg.teacher.backend}
    if cfg.teacher.backend == "replay":
        backends.add(cfg.teacher.replay.fallback)
        if not cfg.teacher.replay.log:
            raise ConfigError("teacher.replay.log: required when teacher.backend=replay (a run's teacher_log.jsonl)")
    if "hf" in backends and not cfg.teacher.hf.model:
        raise ConfigError("teacher.hf.model: required when teacher.backend=hf")
    if "vllm" in backends and not cfg.teacher.vllm.model:
        raise ConfigError("teacher.vllm.model: required when teacher.backend=vllm")
    if "openai" in backends and not (cfg.teacher.openai.base_url and cfg.teacher.openai.model):
        raise ConfigError("teacher.openai.base_url: base_url and model are required when teacher.backend=openai")
    if cfg.feedback.comprehension_embedder != "bag_of_words" and not cfg.feedback.comprehension_model:
        raise ConfigError(f"feedback.comprehension_model: required with feedback.comprehension_embedder="
                          f"{cfg.feedback.comprehension_embedder} (a local model folder)")
    _validate_adapter(cfg)
    return cfg


def adapter_base_model(cfg: Config) -> str:
    """The model the adapter is trained on and loaded onto (the teacher LM, or the analyst LM with
    adapter.role=analyst): adapter.base_model, else the teacher LM's model."""
    if cfg.adapter.base_model:
        return cfg.adapter.base_model
    return {"hf": cfg.teacher.hf.model, "vllm": cfg.teacher.vllm.model}.get(cfg.teacher.backend, "")


def teacher_chat_template(cfg: Config) -> str:
    """How the teacher LM renders its prompts (teacher.hf.chat_template: auto|on|off), which the adapter's
    training pairs must match: only the hf backend renders a chat template; vllm and openai send plain text."""
    return cfg.teacher.hf.chat_template if cfg.teacher.backend == "hf" else "off"


def analyst_config(cfg: Config) -> AdapterConfig | None:
    """The adapter config when the online adapter runs as the analyst (adapter.role=analyst), else None; the
    analyst LM is ``adapter_base_model(cfg)``."""
    return cfg.adapter if cfg.adapter.enabled and cfg.adapter.role == "analyst" else None


def _validate_adapter(cfg: Config) -> None:
    a = cfg.adapter
    if not 0.0 < a.heldout_frac < 1.0:
        raise ConfigError(f"adapter.heldout_frac: must be within (0, 1), got {a.heldout_frac!r}")
    if not a.enabled:
        return
    if cfg.teacher.backend not in ("hf", "vllm", "openai"):
        raise ConfigError(f"adapter.enabled: needs an LM teacher (teacher.backend hf, vllm or openai), "
                          f"got teacher.backend={cfg.teacher.backend}")
    if not cfg.feedback.enabled:
        raise ConfigError("adapter.enabled: needs feedback.enabled=true (its training pairs come from the feedback "
                          "actor)")
    if not adapter_base_model(cfg):
        raise ConfigError("adapter.base_model: required with teacher.backend=openai (the local folder of the "
                          "model the server runs; with adapter.role=analyst, of the analyst LM)")
    if not a.target_modules:
        raise ConfigError("adapter.target_modules: must name at least one module")
    if a.role == "analyst" and a.loss != "nll":
        raise ConfigError(f"adapter.loss: only 'nll' with adapter.role=analyst (an analysis has no options to "
                          f"choose among), got {a.loss!r}")
    if a.role == "analyst" and a.accept != "heldout_loss":
        raise ConfigError(f"adapter.accept: only 'heldout_loss' with adapter.role=analyst (an analysis has no plan "
                          f"to be top), got {a.accept!r}")
    if a.min_label_votes > 1 and a.pair_label != "achieved":
        raise ConfigError(f"adapter.min_label_votes: only with adapter.pair_label=achieved (votes pick a state's "
                          f"hindsight label), got {a.min_label_votes!r}")
    if a.role == "analyst" and a.pair_label != "advised":
        raise ConfigError("adapter.pair_label: only 'advised' with adapter.role=analyst (its training targets are "
                          f"the analyses, not plans), got {a.pair_label!r}")
    if a.role == "analyst":
        return  # the teacher LM stays frozen: the LoRA-serving settings of its backend do not apply
    if cfg.teacher.backend == "vllm" and not cfg.teacher.vllm.enable_lora:
        raise ConfigError("teacher.vllm.enable_lora: must be true with adapter.enabled")
    if cfg.teacher.backend == "vllm" and a.r > cfg.teacher.vllm.max_lora_rank:
        raise ConfigError(f"adapter.r: must be <= teacher.vllm.max_lora_rank ({cfg.teacher.vllm.max_lora_rank}), "
                          f"got {a.r}")
