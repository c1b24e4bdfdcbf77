"""How many CPUs and GPUs a config asks for, where the teacher's go, and whether a cluster can give them.

``plan_resources(cfg)`` turns the config into a ``ResourcePlan``; ``check_resources(plan, available)`` is
called before any actor is created, with ``ray.cluster_resources()``, so a request the cluster can never
satisfy fails at once with one line naming the config keys, instead of leaving actors pending forever.

Accounting rules (RLlib 2.60 new API stack, vLLM in Ray actors):

* Learner. ``resources.num_learners = 0`` puts one learner in the driver process; with
  ``num_gpus_per_learner > 0`` it trains on one local GPU. Ray does not reserve that GPU (the driver is not
  a Ray task), so under ``ray job submit`` pass ``--entrypoint-num-gpus`` to land the driver on a GPU node;
  the plan still counts the GPU, because the cluster must have it. With ``num_learners = N > 0`` RLlib
  starts N learner actors of ``num_gpus_per_learner`` GPUs each and, RLlib's "auto" rule, 1 CPU each when
  they have no GPU and 0 CPUs otherwise.
* Env runners. ``num_env_runners x num_cpus_per_env_runner`` CPUs; 0 runners sample in the driver.
* Teacher. ``teacher.num_replicas`` replicas (none when ``teacher.backend = off``). A vLLM replica needs
  ``max(teacher.num_gpus, teacher.vllm.tensor_parallel_size)`` GPUs: tensor parallelism needs one whole GPU
  per shard. Other backends take ``teacher.num_gpus`` (fractions allowed, e.g. a small HF model sharing a
  GPU). Each replica gets its own placement group: for vLLM one bundle per TP shard with
  ``GPU = gpus / tp`` (vLLM's Ray executor starts one worker per GPU bundle), with the replica's
  ``teacher.num_cpus`` on bundle 0, where the replica actor itself runs. Strategy PACK keeps a TP group
  on one node when it fits (NVLink/PCIe instead of the network) and still schedules on clusters of
  one-GPU nodes, where STRICT_PACK would wait forever.
* The driver and the small singleton actors (feedback) reserve nothing, as in the rest of llmrl.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmrl.config import Config


class ResourceError(ValueError):
    """The cluster cannot satisfy the config's request. The message is one line naming the keys."""


def _n(x: float) -> str:
    """1.0 -> "1", 0.5 -> "0.5": resource counts read as people write them."""
    return f"{x:g}"


@dataclass(frozen=True)
class ResourcePlan:
    """Resources the run asks for. ``teacher_bundles`` describes ONE replica's placement group."""

    num_learners: int  # 0 = one learner inside the driver
    learner_gpus_each: float
    learner_cpus_each: float
    env_runners: int
    env_runner_cpus_each: float
    teacher_backend: str
    teacher_replicas: int
    teacher_gpus_each: float
    teacher_cpus_each: float
    teacher_bundles: tuple[Mapping[str, float], ...]  # () = no placement group needed (no GPU, no CPU)
    teacher_strategy: str
    tensor_parallel_size: int = 1

    @property
    def learner_local(self) -> bool:
        return self.num_learners == 0

    @property
    def learner_gpus(self) -> float:
        return max(self.num_learners, 1) * self.learner_gpus_each

    @property
    def learner_cpus(self) -> float:
        # A local learner lives in the driver, which reserves nothing.
        return self.num_learners * self.learner_cpus_each

    @property
    def teacher_gpus(self) -> float:
        return self.teacher_replicas * self.teacher_gpus_each

    @property
    def teacher_cpus(self) -> float:
        return self.teacher_replicas * self.teacher_cpus_each

    @property
    def env_runner_cpus(self) -> float:
        return self.env_runners * self.env_runner_cpus_each

    @property
    def total_gpus(self) -> float:
        return self.learner_gpus + self.teacher_gpus

    @property
    def total_cpus(self) -> float:
        return self.learner_cpus + self.teacher_cpus + self.env_runner_cpus

    def placement_group_bundles(self) -> list[dict[str, float]]:
        """Fresh dicts for ``ray.util.placement_group(bundles, strategy=plan.teacher_strategy)``, per replica."""
        return [dict(b) for b in self.teacher_bundles]


def plan_resources(cfg: Config) -> ResourcePlan:
    """The resources ``cfg`` asks for (see the module docstring for the rules)."""
    r, t = cfg.resources, cfg.teacher
    learner_gpus_each = float(r.num_gpus_per_learner)
    learner_cpus_each = 0.0 if learner_gpus_each > 0 else 1.0  # RLlib's num_cpus_per_learner="auto"

    replicas = 0 if t.backend == "off" else int(t.num_replicas)
    tp = int(t.vllm.tensor_parallel_size) if t.backend == "vllm" else 1
    gpus_each = max(float(t.num_gpus), float(tp)) if t.backend == "vllm" else float(t.num_gpus)
    cpus_each = float(t.num_cpus)

    bundles: list[dict[str, float]] = []
    if replicas and (gpus_each > 0 or cpus_each > 0):
        shards = tp if gpus_each > 0 else 1
        for k in range(shards):
            b = {"GPU": gpus_each / shards} if gpus_each > 0 else {}
            if k == 0 and cpus_each > 0:
                b["CPU"] = cpus_each
            bundles.append(b)

    return ResourcePlan(
        num_learners=int(r.num_learners),
        learner_gpus_each=learner_gpus_each,
        learner_cpus_each=learner_cpus_each,
        env_runners=int(r.num_env_runners),
        env_runner_cpus_each=float(r.num_cpus_per_env_runner),
        teacher_backend=t.backend,
        teacher_replicas=replicas,
        teacher_gpus_each=gpus_each,
        teacher_cpus_each=cpus_each,
        teacher_bundles=tuple(bundles),
        teacher_strategy="PACK",
        tensor_parallel_size=tp,
    )


# -- explaining a plan -------------------------------------------------------------------------------------


def _teacher_gpu_keys(plan: ResourcePlan) -> str:
    keys = ["teacher.num_replicas", "teacher.num_gpus"]
    if plan.teacher_backend == "vllm":
        keys.append("teacher.vllm.tensor_parallel_size")
    return ", ".join(keys)


def _gpu_terms(plan: ResourcePlan) -> str:
    if plan.teacher_replicas and plan.teacher_gpus_each:
        teacher = (f"teacher: {plan.teacher_replicas} replicas x {_n(plan.teacher_gpus_each)} GPU "
                   f"[{_teacher_gpu_keys(plan)}]")
    else:
        teacher = "teacher: 0"
    if not plan.learner_gpus:
        learner = "learner: 0"
    elif plan.learner_local:
        learner = f"learner: 1 local x {_n(plan.learner_gpus_each)} GPU [resources.num_gpus_per_learner]"
    else:
        learner = (f"learner: {plan.num_learners} x {_n(plan.learner_gpus_each)} GPU "
                   "[resources.num_learners, resources.num_gpus_per_learner]")
    return f"{teacher}; {learner}"


def _cpu_terms(plan: ResourcePlan) -> str:
    terms = []
    if plan.env_runner_cpus:
        terms.append(f"env runners: {plan.env_runners} x {_n(plan.env_runner_cpus_each)} CPU "
                     "[resources.num_env_runners, resources.num_cpus_per_env_runner]")
    if plan.teacher_cpus:
        terms.append(f"teacher: {plan.teacher_replicas} replicas x {_n(plan.teacher_cpus_each)} CPU "
                     "[teacher.num_replicas, teacher.num_cpus]")
    if plan.learner_cpus:
        terms.append(f"learner: {plan.num_learners} x {_n(plan.learner_cpus_each)} CPU [resources.num_learners]")
    return "; ".join(terms) or "nothing reserved"


def describe(plan: ResourcePlan) -> str:
    """A few lines for the run log: what is reserved, for whom, and how the teacher is placed."""
    lines = [
        f"resources: {_n(plan.total_gpus)} GPU ({_gpu_terms(plan)})",
        f"resources: {_n(plan.total_cpus)} CPU ({_cpu_terms(plan)})",
    ]
    if plan.teacher_bundles:
        lines.append(f"teacher placement: {plan.teacher_replicas} group(s) of {plan.placement_group_bundles()} "
                     f"strategy {plan.teacher_strategy}")
    if plan.learner_local and plan.learner_gpus:
        lines.append("learner: runs in the driver on a local GPU; under `ray job submit` pass "
                     "--entrypoint-num-gpus so the driver lands on a GPU node")
    return "\n".join(lines)


def check_resources(
    plan: ResourcePlan,
    available: Mapping[str, float],
    nodes: Sequence[Mapping[str, float]] | None = None,
) -> None:
    """Raise ``ResourceError`` if the cluster can never satisfy ``plan``.

    ``available`` is the cluster's total, ``ray.cluster_resources()``. ``nodes`` (optional) is each node's
    total, e.g. ``[n["Resources"] for n in ray.nodes() if n["Alive"]]``; with it, every single bundle and
    learner must also fit on some one node, since Ray never splits a bundle across nodes.
    On an autoscaling cluster the totals are what is up now, so keep GPU worker ``min_workers`` at the size
    the run needs (cluster/ray-cluster.yaml does).
    """
    have_gpu = float(available.get("GPU", 0.0))
    have_cpu = float(available.get("CPU", 0.0))
    problems = []
    eps = 1e-9  # fractional GPUs add up with rounding error
    if plan.total_gpus > have_gpu + eps:
        problems.append(f"needs {_n(plan.total_gpus)} GPU ({_gpu_terms(plan)}), cluster has {_n(have_gpu)} GPU")
    if plan.total_cpus > have_cpu + eps:
        problems.append(f"needs {_n(plan.total_cpus)} CPU ({_cpu_terms(plan)}), cluster has {_n(have_cpu)} CPU")
    if not problems and nodes is not None:
        problems.extend(_node_fit_problems(plan, nodes))
    if problems:
        raise ResourceError("; and ".join(problems))


def _fits(need: Mapping[str, float], nodes: Sequence[Mapping[str, float]]) -> bool:
    return any(all(float(node.get(k, 0.0)) + 1e-9 >= v for k, v in need.items()) for node in nodes)


def _node_fit_problems(plan: ResourcePlan, nodes: Sequence[Mapping[str, float]]) -> list[str]:
    out = []
    biggest = max((float(n.get("GPU", 0.0)) for n in nodes), default=0.0)
    for b in plan.teacher_bundles:
        if not _fits(b, nodes):
            out.append(f"a teacher bundle {dict(b)} fits on no single node "
                       f"[teacher.num_gpus, teacher.num_cpus], largest node has {_n(biggest)} GPU")
            break
    if plan.learner_gpus_each and not _fits({"GPU": plan.learner_gpus_each}, nodes):
        out.append(f"a learner needs {_n(plan.learner_gpus_each)} GPU on one node "
                   f"[resources.num_gpus_per_learner], largest node has {_n(biggest)} GPU")
    return out
