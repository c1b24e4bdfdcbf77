"""The env creator RLlib's env runners call: a task from the registry wrapped in ``TeacherGuidedEnv``."""

from __future__ import annotations

from typing import Any

from llmrl.config import Config, config_from_dict
from llmrl.envs.guided import TeacherGuidedEnv, shared_feedback_sender
from llmrl.envs.registry import family_spec, make_task

ENV_ID = "llmrl-guided"


def env_seed(cfg: Config, worker_index: int, vector_index: int, evaluation: bool) -> int:
    # Distinct, reproducible streams per (run seed, runner, vector slot); evaluation uses its own range.
    return cfg.run.seed * 100_003 + (50_000 if evaluation else 0) + worker_index * 1_000 + vector_index


def build_guided_env(env_config: dict[str, Any]) -> TeacherGuidedEnv:
    cfg = config_from_dict(env_config["llmrl"])
    evaluation = bool(env_config.get("evaluation", False))
    namespace = env_config.get("namespace")
    worker = int(getattr(env_config, "worker_index", 0))
    vector = int(getattr(env_config, "vector_index", 0))
    seed = env_seed(cfg, worker, vector, evaluation)
    task = make_task(cfg.env, seed)
    # Evaluation measures the student alone, unless the family's student is conditioned on the teacher's options
    # (Crafter's sub-goals, as in AdaRefiner); evaluation never sends feedback.
    spec = family_spec(cfg.env.name)
    guided = cfg.teacher.backend != "off" and (not evaluation or spec.eval_with_teacher)
    advice = None
    feedback = None
    if guided:
        from llmrl.teacher.client import shared_client

        advice = shared_client(cfg.teacher, namespace)
        if cfg.feedback.enabled and not evaluation:
            feedback = shared_feedback_sender(cfg.feedback.actor_name, cfg.feedback.flush_every, namespace)
    return TeacherGuidedEnv(task, cfg, advice, feedback, seed=seed, spec=spec)
