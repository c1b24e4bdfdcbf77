"""The teacher service's replicas as named Ray async actors: how they are named, created and checked at start.

``TeacherService`` (``llmrl.teacher.service``) stays a plain class, unit-tested without Ray; this module is the
only place that turns it into actors.
"""

from __future__ import annotations

from typing import Any

from llmrl.config import AdapterConfig, TeacherConfig
from llmrl.teacher.service import TeacherService


def replica_name(cfg: TeacherConfig, index: int) -> str:
    return cfg.actor_name if index == 0 else f"{cfg.actor_name}_{index}"


def start_teacher_service(
    cfg: TeacherConfig, seed: int, feedback_actor: str = "", namespace: str | None = None, log_dir: str = "",
    adapter: tuple[str, float, str] = ("", 5.0, ""), analyst: AdapterConfig | None = None,
) -> list[Any]:
    """Create (or reuse) the named teacher replicas as Ray async actors; returns their handles.

    ``log_dir`` (the run folder) is where each replica writes its teacher log ("" = no log). ``adapter``: (trainer
    actor name, poll period, base model) to hot-load LoRA versions from; "" = none. ``analyst``: the adapter config
    with role=analyst (the analyst LM is ``adapter``'s base model), None = no analyst."""
    import ray

    handles = []
    for i in range(cfg.num_replicas):
        actor_cls = ray.remote(TeacherService).options(
            name=replica_name(cfg, i),
            namespace=namespace,
            get_if_exists=True,
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            max_restarts=cfg.max_restarts,
            # Callers handle failures themselves (no-advice fallback), so Ray must not replay calls.
            max_task_retries=0,
            max_concurrency=max(64, 4 * cfg.max_batch_size),
            lifetime=None,
        )
        handles.append(actor_cls.remote(cfg, seed + i, feedback_actor, namespace, replica=i, log_dir=log_dir,
                                        adapter_source=adapter[0], adapter_poll_s=adapter[1],
                                        adapter_base_model=adapter[2], analyst=analyst, own_process=True))
    # Fail fast, with the backend's own one-line error (a missing model, no vllm), instead of at the first env step.
    try:
        ray.get([h.ping.remote() for h in handles])
    except Exception as exc:  # noqa: BLE001 - Ray wraps the constructor's error in an actor-died error
        from llmrl.teacher.backends import BackendError

        for h in handles:
            ray.kill(h, no_restart=True)
        cause = next((line for line in reversed(str(exc).splitlines()) if "BackendError:" in line), None)
        reason = cause.split("BackendError:", 1)[-1].strip() if cause else f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise BackendError(f"teacher service could not start: {reason}") from None
    return handles
