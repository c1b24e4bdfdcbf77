"""``llmrl bench teacher-quality``: its arithmetic on hand-made advice, the bench end to end (scripted teacher of
known quality, the tiny local LM), and the teacher of a checkpoint (its run's prompt bank)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from llmrl.bench.teacher_quality import local_source, entropy, main, score_states
from llmrl.config import Config, ConfigError, load_config
from llmrl.feedback.bank import PromptBank
from llmrl.messages import Advice, AdviceOutcome, EpisodeSummary, TeacherQuery
from llmrl.teacher.prompting import build_prompt
from llmrl.training.checkpoint import BANK_STATE, LOOP_STATE
from llmrl.training.teacher_state import initial_bank, latest_checkpoint, teacher_of, teacher_of_checkpoint

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml")
KEY_STATE = "Agent sees <key>, holds <nothing>."


def _q(state: str, *options: str) -> TeacherQuery:
    return TeacherQuery("minigrid", "SimpleDoorKey", state, tuple(options))


def test_entropy_in_nats_of_renormalised_distributions():
    assert entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    assert entropy([1.0, 0.0, 0.0]) == 0.0
    assert entropy([2.0, 2.0, 2.0, 2.0]) == pytest.approx(math.log(4))  # unnormalised input


def test_accuracy_mass_and_entropy_per_distinct_state_and_per_visit():
    correct = {"a": "x", "b": "y", "c": "only", "d": "x"}
    rows = [
        (_q("a", "x", "y"), 3, Advice(("x", "y"), (0.7, 0.3))),  # right, mass 0.7
        (_q("b", "x", "y", "z"), 1, Advice(("x", "y", "z"), (0.5, 0.2, 0.3))),  # wrong top-1, mass 0.2
        (_q("c", "only"), 10, Advice(("only",), (1.0,))),  # no choice: not scored
        (_q("d", "x", "y"), 2, Advice.none(("x", "y"), "unparseable")),  # no advice: wrong, mass 0
    ]
    f = score_states(rows, lambda state, options: correct[state])
    assert (f["distinct_states"], f["visits"], f["states_with_choice"], f["visits_with_choice"]) == (4, 16, 3, 6)
    assert f["no_advice_states"] == 1
    assert f["top1_accuracy"] == pytest.approx(1 / 3)
    assert f["top1_accuracy_per_visit"] == pytest.approx(3 / 6)
    assert f["correct_mass"] == pytest.approx((0.7 + 0.2) / 3)
    assert f["correct_mass_per_visit"] == pytest.approx((0.7 * 3 + 0.2) / 6)
    h_a, h_b = entropy([0.7, 0.3]), entropy([0.5, 0.2, 0.3])
    assert f["entropy_nats"] == pytest.approx((h_a + h_b) / 2)  # over advised states only
    assert f["entropy_nats_per_visit"] == pytest.approx((3 * h_a + h_b) / 4)
    assert f["normalized_entropy"] == pytest.approx((h_a / math.log(2) + h_b / math.log(3)) / 2)


def test_no_state_with_a_choice_gives_nan_not_a_perfect_score():
    f = score_states([(_q("c", "only"), 4, Advice(("only",), (1.0,)))], lambda s, o: "only")
    assert f["states_with_choice"] == 0 and math.isnan(f["top1_accuracy"]) and math.isnan(f["correct_mass"])


def _bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "quality.json"
    assert main([CONFIG, *args, "--episodes", "3", "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("error_rate, expected", [(0.0, 1.0), (1.0, 0.0)])
def test_scripted_teacher_of_known_quality(tmp_path, error_rate, expected):
    report = _bench(tmp_path, f"teacher.error_rate={error_rate}")
    for name in ("planner", "teacher"):
        f = report["distributions"][name]
        assert f["states_with_choice"] > 0
        assert f["top1_accuracy"] == expected and f["top1_accuracy_per_visit"] == expected
        assert f["correct_mass"] == expected and f["entropy_nats"] == 0.0  # one-hot advice
    assert report["planner_alone"]["success"] == 1.0
    assert report["teacher_alone"]["success"] == expected  # always wrong: never opens the door
    assert report["lm"]["llm_calls"] >= report["distributions"]["planner"]["distinct_states"]


def test_success_alone_in_process_equals_the_ray_service_path(tmp_path, ray_local):
    # Same episodes, same (fixed, imperfect) teacher: the in-process service and llmrl eval --teacher agree.
    report = _bench(tmp_path, "teacher.error_rate=0.5", "--via-service")
    assert 0.0 < report["teacher_alone"]["success"] < 1.0
    assert report["teacher_alone_via_service"]["success"] == report["teacher_alone"]["success"]
    assert report["teacher_alone_via_service"]["unadvised_steps"] == report["teacher_alone"]["unadvised_steps"]


def test_tiny_lm_teacher_end_to_end(tmp_path, tiny_lm_dir):
    report = _bench(tmp_path, "teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}")
    assert report["teacher"] == f"hf ({tiny_lm_dir})" and report["teacher_of"] == f"config {CONFIG}"
    distinct = set()
    for name in ("planner", "teacher"):
        f = report["distributions"][name]
        assert 0.0 <= f["top1_accuracy"] <= 1.0 and 0.0 <= f["correct_mass"] <= 1.0
        assert 0.0 < f["normalized_entropy"] <= 1.0  # a random LM is unsure
        distinct.add(f["distinct_states"])
    lm = report["lm"]
    # Every distinct state costs one LM call, repeats come from the service cache.
    assert 0 < lm["llm_calls"] <= sum(distinct) and lm["cache_hits"] > 0 and lm["ms_per_call"] > 0
    assert 0.0 <= report["teacher_alone"]["success"] <= 1.0


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="CONFIG"):
        main([CONFIG, str(tmp_path), str(tmp_path), "--episodes", "1"])
    with pytest.raises(ConfigError, match="teacher.nope"):
        main([CONFIG, "teacher.nope=1"])


# -- the teacher of a checkpoint ---------------------------------------------------------------------------------


def _run_with_checkpoint(tmp_path: Path, cfg: Config, iterations: tuple[int, ...] = (3,)) -> Path:
    """A run folder as ``llmrl train`` leaves it: config.yaml and checkpoints whose prompt bank has feedback."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    bank = PromptBank(cfg.feedback, initial_bank(cfg).task_description)
    outcome = AdviceOutcome(KEY_STATE, "go to key, pick up key", 2, 2)
    bank.record([EpisodeSummary("minigrid", "SimpleDoorKey", True, 1.0, 10, (outcome,))] * 4)
    assert bank.snapshot().feedback_lines
    for it in iterations:
        ckpt = run / "checkpoints" / f"iter_{it:06d}"
        ckpt.mkdir(parents=True)
        (ckpt / LOOP_STATE).write_text("{}")
        (ckpt / BANK_STATE).write_text(json.dumps(bank.state_dict()))
    return run


def test_checkpoint_bank_changes_the_prompt_the_teacher_sees(tmp_path, tiny_lm_dir):
    cfg = load_config(CONFIG, ["teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}", "feedback.publish_every=2",
                               "feedback.min_trials=2"])
    run = _run_with_checkpoint(tmp_path, cfg)
    fresh, trained = teacher_of(CONFIG, ["teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}"]), teacher_of(run)
    assert trained.origin.startswith("checkpoint ") and trained.bank.version == 2
    assert fresh.bank.version == 0 and fresh.bank.task_description == trained.bank.task_description != ""
    query = _q(KEY_STATE, "explore", "go to key, pick up key")
    line = trained.bank.feedback_lines[0]
    assert line in build_prompt(query, trained.bank) and line not in build_prompt(query, fresh.bank)
    answers = []
    for setup in (fresh, trained):
        source = local_source(setup.cfg, setup.bank)
        answers.append(source.advise(query))
        source.close()
    assert answers[0].probs != answers[1].probs  # the LM read a different prompt
    assert (answers[0].bank_version, answers[1].bank_version) == (0, 2)


def test_run_folder_means_its_newest_checkpoint_and_overrides_apply(tmp_path):
    run = _run_with_checkpoint(tmp_path, load_config(CONFIG, ["feedback.publish_every=2"]), iterations=(2, 10))
    half_written = run / "checkpoints" / "iter_000011.tmp"
    half_written.mkdir()
    (half_written / LOOP_STATE).write_text("{}")
    assert latest_checkpoint(run).name == "iter_000010"
    setup = teacher_of_checkpoint(run, ["teacher.error_rate=0.5"])
    assert setup.cfg.teacher.error_rate == 0.5 and setup.bank.version == 2
    with pytest.raises(ConfigError, match="feedback.credit"):
        teacher_of_checkpoint(run, ["feedback.credit=episode"])
    with pytest.raises(FileNotFoundError, match="run folder"):
        teacher_of_checkpoint(tmp_path)


def test_bench_with_a_checkpoint_uses_its_bank_and_checks_the_env(tmp_path):
    run = _run_with_checkpoint(tmp_path, load_config(CONFIG, ["feedback.publish_every=2"]))
    report = _bench(tmp_path, str(run))
    assert report["bank_version"] == 2 and report["bank_feedback_lines"] > 0
    assert "with the prompt bank of checkpoint" in report["teacher_of"]
    lava = str(Path(CONFIG).with_name("lava_doorkey.yaml"))
    with pytest.raises(ConfigError, match="env.name"):
        main([lava, str(run), "--episodes", "1"])


def _checkpoint_with_adapter(tmp_path: Path, model: str, base_hash: str | None = None) -> Path:
    """A run checkpoint whose teacher had a LoRA (random, non-zero, so that it changes the advice) in service."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from llmrl.adapter.versions import copy_into_checkpoint, model_config_hash, write_version

    cfg = load_config(CONFIG, ["teacher.backend=hf", f"teacher.hf.model={model}", "feedback.publish_every=2"])
    run = _run_with_checkpoint(tmp_path, cfg)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model),
                          LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    version = write_version(run, lora.save_pretrained, base_model=model,
                            base_hash=base_hash or model_config_hash(model), heldout_loss=1.0, pairs_used=8)
    copy_into_checkpoint(version, run / "checkpoints" / "iter_000003")
    return run


def test_the_teacher_of_a_checkpoint_serves_its_adapter(tmp_path, tiny_lm_dir):
    run = _checkpoint_with_adapter(tmp_path, str(tiny_lm_dir))
    setup = teacher_of(run)
    assert setup.adapter is not None and setup.adapter_version == 1
    assert Path(setup.adapter.path).is_relative_to(run / "checkpoints" / "iter_000003")  # the checkpoint's copy
    query = _q(KEY_STATE, "explore", "go to key, pick up key")
    answers = []
    for adapter in (None, setup.adapter):
        source = local_source(setup.cfg, setup.bank, adapter)
        answers.append(source.advise(query))
        source.close()
    assert [a.adapter_version for a in answers] == [0, 1]
    assert answers[0].probs != answers[1].probs  # the adapter is in the forward pass


def test_an_adapter_of_another_base_model_is_a_one_line_error(tmp_path, tiny_lm_dir):
    from llmrl.adapter.versions import AdapterError

    run = _checkpoint_with_adapter(tmp_path, str(tiny_lm_dir), base_hash="0" * 16)
    setup = teacher_of(run)
    with pytest.raises(AdapterError, match="v1 .* refused"):
        local_source(setup.cfg, setup.bank, setup.adapter)
