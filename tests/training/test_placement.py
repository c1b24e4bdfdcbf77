import pytest

from llmrl.config import load_config
from llmrl.training.placement import ResourceError, check_resources, describe, plan_resources


def _cfg(*overrides):
    return load_config(None, list(overrides))


def test_gpu_learner_and_two_tp2_vllm_replicas_need_five_gpus():
    cfg = _cfg("teacher.backend=vllm", "teacher.vllm.model=tiny", "teacher.num_replicas=2",
               "teacher.vllm.tensor_parallel_size=2", "teacher.num_cpus=1",
               "resources.num_learners=0", "resources.num_gpus_per_learner=1", "resources.num_env_runners=4")
    plan = plan_resources(cfg)
    assert plan.teacher_gpus_each == 2 and plan.teacher_gpus == 4
    assert plan.learner_local and plan.learner_gpus == 1
    assert plan.total_gpus == 5
    # One bundle per TP shard (vLLM starts a worker per GPU bundle); the replica's CPU sits on bundle 0.
    assert plan.placement_group_bundles() == [{"GPU": 1.0, "CPU": 1.0}, {"GPU": 1.0}]
    assert plan.teacher_strategy == "PACK"
    assert plan.total_cpus == 4 * 1.0 + 2 * 1.0  # env runners + teacher; the local learner reserves none
    check_resources(plan, {"GPU": 5, "CPU": 8})
    text = describe(plan)
    assert "5 GPU" in text and "--entrypoint-num-gpus" in text


def test_vllm_replica_takes_at_least_its_tensor_parallel_size():
    cfg = _cfg("teacher.backend=vllm", "teacher.vllm.model=tiny", "teacher.num_gpus=0")
    assert plan_resources(cfg).teacher_gpus == 1
    cfg = _cfg("teacher.backend=vllm", "teacher.vllm.model=tiny", "teacher.num_gpus=4",
               "teacher.vllm.tensor_parallel_size=2")
    assert plan_resources(cfg).teacher_gpus_each == 4


def test_remote_learners_and_fractional_hf_teacher():
    cfg = _cfg("teacher.backend=hf", "teacher.hf.model=tiny", "teacher.num_gpus=0.5", "teacher.num_replicas=2",
               "resources.num_learners=2", "resources.num_gpus_per_learner=1")
    plan = plan_resources(cfg)
    assert plan.total_gpus == 3.0
    assert plan.learner_cpus == 0  # RLlib "auto": GPU learners get no CPU
    assert plan.placement_group_bundles() == [{"GPU": 0.5}]
    cpu_learners = plan_resources(_cfg("resources.num_learners=3"))
    assert cpu_learners.learner_cpus == 3 and cpu_learners.total_gpus == 0


def test_cpu_only_config_needs_no_gpu():
    plan = plan_resources(_cfg("teacher.backend=scripted", "resources.num_env_runners=2"))
    assert plan.total_gpus == 0
    assert plan.teacher_bundles == ()  # nothing to reserve: no placement group
    assert plan.total_cpus == 2
    check_resources(plan, {"CPU": 2})
    off = plan_resources(_cfg("teacher.backend=off", "teacher.num_gpus=1"))
    assert off.teacher_replicas == 0 and off.total_gpus == 0


def test_gpu_shortfall_names_the_keys_on_one_line():
    plan = plan_resources(_cfg("teacher.backend=hf", "teacher.hf.model=tiny", "teacher.num_replicas=2",
                               "teacher.num_gpus=1"))
    with pytest.raises(ResourceError) as e:
        check_resources(plan, {"CPU": 16})
    msg = str(e.value)
    assert msg == ("needs 2 GPU (teacher: 2 replicas x 1 GPU [teacher.num_replicas, teacher.num_gpus]; "
                   "learner: 0), cluster has 0 GPU")
    assert isinstance(e.value, ValueError)


def test_cpu_and_gpu_shortfalls_together_stay_one_line():
    plan = plan_resources(_cfg("teacher.backend=vllm", "teacher.vllm.model=tiny", "resources.num_env_runners=8",
                               "resources.num_gpus_per_learner=1"))
    with pytest.raises(ResourceError) as e:
        check_resources(plan, {"CPU": 2, "GPU": 1})
    msg = str(e.value)
    assert "\n" not in msg
    assert "teacher.vllm.tensor_parallel_size" in msg and "resources.num_gpus_per_learner" in msg
    assert "resources.num_env_runners" in msg and "cluster has 2 CPU" in msg


def test_per_node_check_catches_a_bundle_no_node_can_hold():
    plan = plan_resources(_cfg("teacher.backend=hf", "teacher.hf.model=tiny", "teacher.num_gpus=2"))
    two_one_gpu_nodes = [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}]
    check_resources(plan, {"CPU": 16, "GPU": 2})  # totals alone look fine
    with pytest.raises(ResourceError, match="fits on no single node"):
        check_resources(plan, {"CPU": 16, "GPU": 2}, nodes=two_one_gpu_nodes)
    check_resources(plan, {"CPU": 16, "GPU": 2}, nodes=[{"CPU": 16, "GPU": 2}])
