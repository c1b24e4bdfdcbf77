"""``llmrl eval``: a student from a checkpoint, or the teacher acting alone through its skills.

The teacher acting alone is ``teacher_alone`` over any ``AdviceSource``: the teacher service over Ray
(``evaluate_teacher``, what ``llmrl eval --teacher`` runs) or an in-process service (``bench.teacher_quality``),
so both play the same episodes with the same rule for steps without advice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from llmrl.config import Config, adapter_base_model, analyst_config
from llmrl.core import AdviceSource
from llmrl.envs.guided import TEACHER_PROBS, TeacherGuidedEnv
from llmrl.envs.registry import family_spec, make_task
from llmrl.messages import AdapterVersion, PromptBankSnapshot
from llmrl.rl.env import env_seed
from llmrl.training.checkpoint import config_of_checkpoint
from llmrl.training.teacher_state import initial_bank, install_teacher, teacher_of_checkpoint

logger = logging.getLogger(__name__)


def run_episodes(
    env: TeacherGuidedEnv, cfg: Config, episodes: int, act: Callable[[Any, dict], int], extra: dict[str, Any]
) -> dict[str, Any]:
    """Play ``episodes`` episodes on the evaluation seeds; ``act(obs, info)`` picks each action. A family with
    achievements (``FamilySpec.achievements``) also gets the percent of episodes that unlocked each, and its
    score of them (``FamilySpec.score``)."""
    spec = family_spec(cfg.env.name)
    successes, returns, lengths, unlocked, env_returns = [], [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=env_seed(cfg, 0, ep, evaluation=True))
        done, ret, n = False, 0.0, 0
        while not done:
            obs, r, term, trunc, info = env.step(act(obs, info))
            ret += float(r)
            n += 1
            done = term or trunc
        successes.append(bool(info.get("success")))
        returns.append(ret)
        lengths.append(n)
        unlocked.append(set(info.get("episode_achievements", ())))
        if "episode_env_return" in info:
            env_returns.append(float(info["episode_env_return"]))
    env.close()
    result = {
        "episodes": episodes,
        "success": float(np.mean(successes)) if successes else 0.0,
        "return_mean": float(np.mean(returns)) if returns else 0.0,
        "length_mean": float(np.mean(lengths)) if lengths else 0.0,
        **extra,
    }
    if env_returns:  # the env's own reward (``return_mean`` includes the intrinsic bonus)
        result["env_return_mean"] = float(np.mean(env_returns))
    if spec.achievements and episodes:
        rates = {name: 100.0 * sum(name in u for u in unlocked) / episodes for name in spec.achievements}
        result["achievements"] = rates
        if spec.score is not None:
            result["score"] = spec.score(rates)
    return result


@contextmanager
def teacher_client(cfg: Config, bank: PromptBankSnapshot, adapter: AdapterVersion | None = None) -> Iterator[Any]:
    """A running teacher service answering with ``bank`` (and the LoRA ``adapter``, if given; own local Ray
    unless one is up) and a client for it; stopped on exit."""
    import ray

    from llmrl.teacher.client import TeacherClient
    from llmrl.teacher.replicas import start_teacher_service
    from llmrl.training.graph import init_ray

    started = init_ray(cfg)
    handles: list[Any] = []
    try:
        namespace = ray.get_runtime_context().namespace
        # The run's analyst LM too (adapter.role=analyst): a checkpoint's analyst adapter goes on it.
        handles = start_teacher_service(cfg.teacher, cfg.teacher.seed, "", namespace,
                                        adapter=("", cfg.adapter.poll_s, adapter_base_model(cfg)),
                                        analyst=analyst_config(cfg))
        install_teacher(handles, bank, adapter)
        yield TeacherClient(cfg.teacher, namespace)
    finally:
        for h in handles:
            ray.kill(h, no_restart=True)
        if started:
            ray.shutdown()


def evaluate_student(checkpoint: Path, episodes: int, greedy: bool | None = None) -> dict[str, Any]:
    """Student episodes on evaluation seeds. Students act alone, unless their family conditions them on the
    teacher's options (``FamilySpec.eval_with_teacher``, Crafter's sub-goals): then the student is evaluated with
    the teacher it was trained with (as training's evaluation does), the student still choosing every action.
    ``greedy=None`` acts as training's evaluation does (``FamilySpec.eval_explore``: Crafter samples)."""
    from llmrl.rl.evaluate import load_student, student_action

    cfg = config_of_checkpoint(checkpoint)
    if greedy is None:
        greedy = not family_spec(cfg.env.name).eval_explore
    module = load_student(checkpoint)
    rng = np.random.default_rng(cfg.run.seed)
    extra = {"env": cfg.env.name, "actor": "student", "greedy": greedy}

    def act(obs: Any, info: dict) -> int:
        return student_action(module, obs, greedy, rng)

    if family_spec(cfg.env.name).eval_with_teacher and cfg.teacher.backend != "off":
        # The teacher as it was at this checkpoint (its prompt bank), as training's evaluation saw it.
        setup = teacher_of_checkpoint(checkpoint)
        with teacher_client(cfg, setup.bank, setup.adapter) as client:
            env = TeacherGuidedEnv(make_task(cfg.env, None), cfg, client, None, seed=cfg.run.seed)
            return run_episodes(env, cfg, episodes, act, {**extra, "teacher_backend": cfg.teacher.backend})
    return run_episodes(TeacherGuidedEnv(make_task(cfg.env, None), cfg, None, None), cfg, episodes, act, extra)


def teacher_alone(cfg: Config, episodes: int, source: AdviceSource) -> dict[str, Any]:
    """The teacher acting alone: each step takes an action from its advice (sampled from the teacher action
    distribution); steps without advice take a random action and are counted."""
    rng = np.random.default_rng(cfg.run.seed)
    unadvised = 0
    env = TeacherGuidedEnv(make_task(cfg.env, None), cfg, source, None, seed=cfg.run.seed)

    def act(obs: Any, info: dict) -> int:
        nonlocal unadvised
        probs = info[TEACHER_PROBS]
        if probs.sum() > 0:
            return int(rng.choice(len(probs), p=probs / probs.sum()))
        unadvised += 1
        return int(rng.integers(env.num_actions))

    result = run_episodes(env, cfg, episodes, act, {"env": cfg.env.name, "actor": "teacher",
                                                   "teacher_backend": cfg.teacher.backend,
                                                   "error_rate": cfg.teacher.error_rate})
    return {**result, "unadvised_steps": unadvised}


def evaluate_teacher(cfg: Config, episodes: int, bank: PromptBankSnapshot | None = None,
                     adapter: AdapterVersion | None = None) -> dict[str, Any]:
    """``teacher_alone`` through the teacher service over Ray, answering with ``bank`` (default: the initial
    bank, i.e. the teacher as training starts) and ``adapter`` (default: the base model);
    ``training.teacher_state`` gives a checkpoint's."""
    bank = initial_bank(cfg) if bank is None else bank
    with teacher_client(cfg, bank, adapter) as client:
        result = teacher_alone(cfg, episodes, client)
        return {**result, "bank_version": bank.version, "adapter_version": adapter.version if adapter else 0,
                "teacher_stats": client.stats()}
