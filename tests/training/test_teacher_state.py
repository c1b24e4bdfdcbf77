"""The teacher of a config, installed in a real teacher-service actor (the Ray path of ``llmrl eval --teacher``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.messages import TeacherQuery
from llmrl.teacher.replicas import start_teacher_service
from llmrl.training.teacher_state import install_teacher, teacher_of

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"


def test_a_config_teacher_reads_the_task_description_from_the_start():
    setup = teacher_of(CONFIG)
    assert setup.bank.version == 0 and "door" in setup.bank.task_description
    assert setup.cfg == load_config(CONFIG) and setup.origin == f"config {CONFIG}"


def test_installed_bank_is_the_one_the_service_answers_with(ray_local):
    setup = teacher_of(CONFIG)
    bank = dataclasses.replace(setup.bank, version=5, feedback_lines=("a line",))
    handles = start_teacher_service(setup.cfg.teacher, 0, "", "llmrl")
    try:
        install_teacher(handles, bank)
        assert ray_local.get(handles[0].bank_version.remote()) == 5
        query = TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <nothing>, holds <nothing>.", ("explore",))
        (advice,) = ray_local.get(handles[0].advise.remote([query]))
        assert advice.bank_version == 5 and advice.has_advice
    finally:
        for h in handles:
            ray_local.kill(h, no_restart=True)


def test_installed_adapter_is_the_one_the_service_answers_with(ray_local, tiny_lm_dir, tmp_path):
    # The Ray path of `llmrl eval --teacher CHECKPOINT` for a run with the online adapter.
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from llmrl.adapter.versions import AdapterError, model_config_hash, write_version

    model = str(tiny_lm_dir)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    good = write_version(tmp_path / "run", lora.save_pretrained, base_model=model,
                         base_hash=model_config_hash(model), heldout_loss=1.0, pairs_used=8)
    setup = teacher_of(CONFIG, ["teacher.backend=hf", f"teacher.hf.model={model}"])
    handles = start_teacher_service(setup.cfg.teacher, 0, "", "llmrl")
    try:
        install_teacher(handles, setup.bank, good)
        query = TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>, holds <nothing>.",
                             ("explore", "go to key, pick up key"))
        (advice,) = ray_local.get(handles[0].advise.remote([query]))
        assert advice.adapter_version == 1
        other = dataclasses.replace(good, version=2, base_hash="0" * 16)  # trained on another model
        with pytest.raises(AdapterError, match="v2"):
            install_teacher(handles, setup.bank, other)
        assert ray_local.get(handles[0].advise.remote([query]))[0].adapter_version == 1  # v1 stays in service
    finally:
        for h in handles:
            ray_local.kill(h, no_restart=True)


def test_the_adapters_base_model_resolves_like_the_teachers(tmp_path):
    from llmrl.teacher.backends import BackendError
    from llmrl.training.graph import resolved_adapter_base

    cfg = load_config(CONFIG, ["teacher.backend=hf", f"teacher.hf.model={tmp_path}", "adapter.enabled=true",
                               "feedback.credit=episode", f"adapter.base_model={tmp_path / 'nowhere'}"])
    with pytest.raises(BackendError, match="adapter.base_model: cannot load"):
        resolved_adapter_base(cfg)


@pytest.mark.model
def test_the_short_name_of_the_teacher_is_the_adapters_cached_folder():
    from llmrl.models import resolve_model
    from llmrl.training.graph import resolved_adapter_base

    cfg = load_config(CONFIG, ["teacher.backend=hf", "teacher.hf.model=smollm2-135m", "adapter.enabled=true",
                               "feedback.credit=episode"])
    assert resolved_adapter_base(cfg) == resolve_model("smollm2-135m") != "smollm2-135m"


def test_cpu_nice_lowers_the_replicas_process_priority_only(ray_local):
    import os

    cfg = load_config(CONFIG, ["teacher.cpu_nice=2"])
    mine = os.nice(0)
    # Ray starts its workers at a niceness of its own (worker_niceness, 15 by default); the teacher adds to it.
    worker = ray_local.get(ray_local.remote(lambda: os.nice(0)).remote())
    handles = start_teacher_service(cfg.teacher, 0, "", "llmrl")
    try:
        replica = ray_local.get(handles[0].__ray_call__.remote(lambda self: os.nice(0)))
        assert replica == min(19, worker + 2)
        from llmrl.teacher.service import TeacherService

        TeacherService(cfg.teacher)  # in process (benchmarks): the caller's priority stays
        assert os.nice(0) == mine
    finally:
        for h in handles:
            ray_local.kill(h, no_restart=True)
