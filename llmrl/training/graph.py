"""The one place where llmrl's components connect (after Sample Factory's single wiring function).

    env runners (RLlib, CPU)  --TeacherQuery-->  teacher service replicas (named async actors, GPU or CPU)
          |        ^                                   ^ polls PromptBankSnapshot
          |        +--------- Advice ------------------+
          |                                            |
          +--EpisodeSummary-->  feedback actor (named) -+
          |                          |  TrainingPair        ^ polls AdapterVersion (hot-loads the LoRA)
          |                          v                      |
          |                     adapter trainer (named, adapter.enabled): LoRA fine-tunes -> <run>/adapters/v<N>
          |
          +--episodes (with teacher_probs)-->  PPO learner (+ lambda * CE distillation)

The local single-node mode and the ``ray job submit`` entry point both call ``build_graph``; only the Ray
address differs. Env runners find the teacher and the feedback actor by name, so nothing but the config
crosses into RLlib.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrl.config import (Config, ConfigError, TeacherConfig, adapter_base_model, analyst_config,
                          teacher_chat_template)
from llmrl.training.stopping import own_process_group

logger = logging.getLogger(__name__)

NAMESPACE = "llmrl"
FEEDBACK_DIR = "feedback"  # in the run folder: the feedback actor's journal (feedback.persist)


@dataclass
class Graph:
    cfg: Config
    namespace: str
    algo: Any
    teachers: list[Any] = field(default_factory=list)
    feedback: Any = None
    task_description: str = ""
    adapter_trainer: Any = None  # the adapter trainer actor (adapter.enabled), else None
    run_dir: Path | None = None

    def restartable_actors(self) -> dict[str, Any]:
        """Stateful singleton actors whose Ray restarts the loop counts (``training.restarts``), by metric name."""
        return {"feedback": self.feedback, "adapter_trainer": self.adapter_trainer}

    def stop(self) -> None:
        import ray

        try:
            self.algo.stop()
        except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
            logger.warning("stopping the algorithm failed: %s", exc)
        self.flush_teacher_logs()
        if self.feedback is not None:
            try:  # write the feedback journal's last buffered summaries before the actor goes
                ray.get(self.feedback.close.remote(), timeout=10)
            except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
                logger.warning("closing the feedback actor failed: %s", exc)
        for handle in [*self.teachers, self.feedback, self.adapter_trainer]:
            if handle is not None:
                try:
                    ray.kill(handle, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass

    def flush_teacher_logs(self, timeout_s: float = 30.0) -> None:
        """Put every teacher answer on disk before the replicas are killed (killing skips their shutdown)."""
        import ray

        try:
            ray.get([h.flush_log.remote(timeout_s) for h in self.teachers], timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - a dead replica's log ends at its last flush
            logger.warning("teacher log flush failed: %s", exc)


def task_description_for(cfg: Config) -> str:
    """The task's prompt, from one env built and reset in the driver; also where an env that cannot be built or
    reset, or whose observation the student cannot read, fails in one line (``ConfigError``), before any RLlib
    actor starts."""
    from llmrl.envs.registry import family_spec, make_task
    from llmrl.rl.module import check_observation_space

    task = make_task(cfg.env, seed=cfg.run.seed)
    try:
        task.reset(seed=cfg.run.seed)
        check_observation_space(family_spec(cfg.env.name).encoder, task.observation_space, cfg.env.name)
        style = cfg.teacher.prompt_style
        # A family that writes only the plain prompt need not take the argument (a user's own Guidable env).
        return task.task_description(style) if style != "plain" else task.task_description()
    finally:
        task.close()


def init_ray(cfg: Config) -> bool:
    """Connect to (``resources.address``) or start a small local Ray. Returns True if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if cfg.resources.address:
        ray.init(address=cfg.resources.address, namespace=NAMESPACE, log_to_driver=True)
        return True
    # The local GCS and raylet in their own process group: a signal to the driver's group must reach only the
    # driver, which stops gracefully, not the Ray it needs to write its final checkpoint.
    with own_process_group():
        ray.init(
            num_cpus=cfg.resources.num_cpus,
            num_gpus=cfg.resources.num_gpus,
            object_store_memory=cfg.resources.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            namespace=NAMESPACE,
            log_to_driver=True,
            logging_level=logging.WARNING,
        )
    return True


def _absolute_log_paths(teacher: TeacherConfig) -> TeacherConfig:
    """The replay log as an absolute path: the teacher actor need not share the driver's working directory."""
    if not teacher.replay.log:
        return teacher
    return dataclasses.replace(teacher, replay=dataclasses.replace(teacher.replay,
                                                                   log=os.path.abspath(teacher.replay.log)))


def resolved_adapter_base(cfg: Config) -> str:
    """The adapter's base model as a loadable folder: a short name (``smollm2-135m``) becomes its cached folder,
    fetched on first use, as the teacher's own model does; a missing folder is one ``BackendError`` now, rather
    than a fine-tune that fails at every attempt."""
    from llmrl.teacher.backends import local_model

    key = "adapter.base_model" if cfg.adapter.base_model else f"teacher.{cfg.teacher.backend}.model"
    return local_model(adapter_base_model(cfg), key)


def build_graph(cfg: Config, run_dir: str | Path | None = None) -> Graph:
    """Start every component for ``cfg``; ``run_dir`` (the run folder) holds what they persist themselves: the
    teacher replicas' logs and the feedback journal (None = nothing persisted)."""
    import ray

    from llmrl.rl.algo import build_ppo_config
    from llmrl.training.placement import check_resources, describe, plan_resources

    if cfg.resources.learner_torch_threads > 0:
        import torch

        torch.set_num_threads(cfg.resources.learner_torch_threads)
    plan = plan_resources(cfg)
    # Fail before anything starts if the cluster cannot hold what the config asks for (no silent hang).
    check_resources(plan, ray.cluster_resources())
    logger.info("placement: %s", describe(plan))
    namespace = ray.get_runtime_context().namespace
    description = task_description_for(cfg)
    feedback = None
    trainer = None
    teachers: list[Any] = []
    if cfg.teacher.backend != "off":
        if cfg.feedback.enabled:
            from llmrl.feedback.actor import start_feedback_actor

            persist = str(Path(run_dir) / FEEDBACK_DIR) if cfg.feedback.persist and run_dir else ""
            max_pairs = cfg.adapter.max_pairs if cfg.adapter.enabled else 0
            feedback = start_feedback_actor(cfg.feedback, description, namespace=namespace, persist_dir=persist,
                                            max_pairs=max_pairs, pair_role=cfg.adapter.role,
                                            pair_label=cfg.adapter.pair_label,
                                            min_label_votes=cfg.adapter.min_label_votes)
        adapter_source = ("", cfg.adapter.poll_s, "")
        if cfg.adapter.enabled:
            from llmrl.adapter.trainer import start_adapter_trainer

            if run_dir is None:
                raise ConfigError("adapter.enabled: needs a run folder for its versions (use llmrl train)")
            base = resolved_adapter_base(cfg)
            trainer = start_adapter_trainer(cfg.adapter, base, str(run_dir), cfg.feedback.actor_name, namespace,
                                            cfg.teacher.hf.max_prompt_tokens, teacher_chat_template(cfg))
            adapter_source = (cfg.adapter.actor_name, cfg.adapter.poll_s, base)
        from llmrl.messages import PromptBankSnapshot
        from llmrl.teacher.replicas import start_teacher_service
        from llmrl.training.teacher_state import install_teacher

        teachers = start_teacher_service(
            _absolute_log_paths(cfg.teacher), cfg.teacher.seed, cfg.feedback.actor_name if feedback is not None else "",
            namespace, log_dir=str(Path(run_dir).resolve()) if run_dir else "",
            adapter=adapter_source, analyst=analyst_config(cfg),
        )
        # The service starts with an empty bank and only takes versions above 0 from the feedback actor, so
        # without this an LM teacher would read no task description until the bank's first publication.
        install_teacher(teachers, PromptBankSnapshot(version=0, task_description=description))
    algo = build_ppo_config(cfg, namespace).build_algo()
    return Graph(cfg=cfg, namespace=namespace, algo=algo, teachers=teachers, feedback=feedback,
                 task_description=description, adapter_trainer=trainer, run_dir=run_dir)
