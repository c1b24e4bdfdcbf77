"""``llmrl eval``: a student from a checkpoint, or the teacher acting alone through its skills."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from llmrl.config import Config, config_from_dict
from llmrl.envs.guided import TEACHER_PROBS, TeacherGuidedEnv
from llmrl.envs.registry import make_task
from llmrl.rl.env import env_seed

logger = logging.getLogger(__name__)


def config_of_checkpoint(checkpoint: Path) -> Config:
    cfg_file = checkpoint.resolve().parent.parent / "config.yaml"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no config.yaml in the run folder of '{checkpoint}'")
    return config_from_dict(yaml.safe_load(cfg_file.read_text()))


def _episode_stats(successes: list[bool], returns: list[float], lengths: list[int], extra: dict) -> dict[str, Any]:
    return {
        "episodes": len(successes),
        "success": float(np.mean(successes)) if successes else 0.0,
        "return_mean": float(np.mean(returns)) if returns else 0.0,
        "length_mean": float(np.mean(lengths)) if lengths else 0.0,
        **extra,
    }


def evaluate_student(checkpoint: Path, episodes: int, greedy: bool = True, seed_offset: int = 0) -> dict[str, Any]:
    """Greedy student episodes on evaluation seeds, no teacher (MiniGrid)."""
    from llmrl.rl.evaluate import load_student, student_action

    cfg = config_of_checkpoint(checkpoint)
    module = load_student(checkpoint)
    rng = np.random.default_rng(cfg.run.seed)
    successes, returns, lengths = [], [], []
    env = TeacherGuidedEnv(make_task(cfg.env, None), cfg, None, None)
    for ep in range(episodes):
        obs, _ = env.reset(seed=env_seed(cfg, 0, seed_offset + ep, evaluation=True))
        done, ret, n, info = False, 0.0, 0, {}
        while not done:
            obs, r, term, trunc, info = env.step(student_action(module, obs, greedy, rng))
            ret += float(r)
            n += 1
            done = term or trunc
        successes.append(bool(info.get("success")))
        returns.append(ret)
        lengths.append(n)
    env.close()
    return _episode_stats(successes, returns, lengths, {"env": cfg.env.name, "actor": "student"})


def evaluate_teacher(cfg: Config, episodes: int) -> dict[str, Any]:
    """The teacher acting alone: each step takes an action from its advice (sampled from the teacher action
    distribution); steps without advice take a random action and are counted."""
    import ray

    from llmrl.teacher.client import TeacherClient
    from llmrl.teacher.service import start_teacher_service
    from llmrl.training.graph import init_ray

    started = init_ray(cfg)
    handles: list[Any] = []
    try:
        namespace = ray.get_runtime_context().namespace
        handles = start_teacher_service(cfg.teacher, cfg.teacher.seed, "", namespace)
        client = TeacherClient(cfg.teacher, namespace)
        rng = np.random.default_rng(cfg.run.seed)
        env = TeacherGuidedEnv(make_task(cfg.env, None), cfg, client, None, seed=cfg.run.seed)
        successes, returns, lengths, unadvised = [], [], [], 0
        for ep in range(episodes):
            obs, info = env.reset(seed=env_seed(cfg, 0, ep, evaluation=True))
            done, ret, n = False, 0.0, 0
            while not done:
                probs = info[TEACHER_PROBS]
                if probs.sum() > 0:
                    action = int(rng.choice(len(probs), p=probs / probs.sum()))
                else:
                    unadvised += 1
                    action = int(rng.integers(env.num_actions))
                obs, r, term, trunc, info = env.step(action)
                ret += float(r)
                n += 1
                done = term or trunc
            successes.append(bool(info.get("success")))
            returns.append(ret)
            lengths.append(n)
        env.close()
        extra = {"env": cfg.env.name, "actor": "teacher", "teacher_backend": cfg.teacher.backend,
                 "error_rate": cfg.teacher.error_rate, "unadvised_steps": unadvised,
                 "teacher_stats": client.stats()}
        return _episode_stats(successes, returns, lengths, extra)
    finally:
        for h in handles:
            ray.kill(h, no_restart=True)
        if started:
            ray.shutdown()
