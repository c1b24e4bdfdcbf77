"""The adapter trainer in-process on the tiny LM: it fine-tunes a real LoRA on the feedback actor's pairs, keeps a
version only when the held-out loss improves, counts every fault and keeps the version in service."""

from __future__ import annotations

import json
import math

import pytest
import torch
from adapter_episodes import DOOR_STATE, KEY_STATE, OPTIONS, episode, outcome

from llmrl.adapter.trainer import ATTEMPTS_FILE, AdapterTrainer, read_attempts
from llmrl.adapter.versions import ADAPTERS_DIR, latest_adapter, read_version
from llmrl.config import AdapterConfig, FeedbackConfig
from llmrl.feedback.actor import FeedbackService

# Small and fast: the tiny LM has width 64; a high learning rate so one epoch moves the held-out loss.
CFG = AdapterConfig(enabled=True, r=4, alpha=8, lr=3e-2, epochs=3, batch_size=4, min_new_pairs=1,
                    train_every_episodes=1, heldout_frac=0.3, dropout=0.0)
STATES = [f"Agent sees <key>, holds <nothing>. Agent is at row {i} column {j}." for i in range(3) for j in range(3)]


def feedback_with_successes(n_states: int = 9) -> FeedbackService:
    """Successful episodes in which the student completed "go to key, pick up key" in every state."""
    fb = FeedbackService(FeedbackConfig(credit="episode", publish_every=1), "Open the door.", max_pairs=100)
    fb.record([episode(True, outcome(s, OPTIONS[1], 2)) for s in STATES[:n_states]])
    return fb


def make_trainer(tmp_path, tiny_lm_dir, fb, cfg=CFG) -> AdapterTrainer:
    return AdapterTrainer(cfg, tiny_lm_dir, str(tmp_path), fb, autostart=False)


def attempts(run_dir) -> list[dict]:
    journal = [json.loads(line) for line in (run_dir / ADAPTERS_DIR / ATTEMPTS_FILE).read_text().splitlines()]
    assert read_attempts(run_dir) == journal
    return journal


def test_a_fine_tune_that_improves_becomes_version_1(tmp_path, tiny_lm_dir):
    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes())
    assert trainer.poll_once() == 9 and trainer.due()
    assert trainer.train_now() == "accepted"
    v1 = latest_adapter(tmp_path)
    assert v1 is not None and v1.version == 1 and trainer.latest() == v1
    assert v1.base_model == tiny_lm_dir and v1.pairs_used == 6 and math.isfinite(v1.heldout_loss)
    stats = trainer.stats()
    assert (stats.attempts, stats.accepted, stats.version, stats.pairs) == (1, 1, 1, 9)
    # A restarted trainer continues from the version on disk, with its counters.
    again = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes())
    assert again.latest() == v1 and again.stats().version == 1
    assert (again.stats().attempts, again.stats().accepted) == (1, 1) and again.stats().train_s > 0


def test_a_choice_fine_tune_is_judged_on_the_held_out_choice_loss_too(tmp_path, tiny_lm_dir):
    from dataclasses import replace

    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes(), replace(CFG, loss="choice"))
    trainer.poll_once()
    assert trainer.train_now() == "accepted" and latest_adapter(tmp_path).pairs_used == 6


def test_plan_accuracy_keeps_a_fine_tune_that_gets_more_top_plans_right_or_as_many_with_a_lower_choice_loss():
    """adapter.accept=plan_accuracy on (top plan right, choice loss) per example, the held-out ones first."""
    from llmrl.adapter.trainer import _plan_accuracy_verdict as verdict

    before = [(False, 1.0), (True, 0.5), (False, 1.2)]
    assert verdict(before, [(False, 0.9), (True, 0.6), (True, 0.7)], 1) == ""  # one more state right
    assert verdict(before, [(False, 0.9), (True, 0.5), (False, 1.1)], 1) == ""  # as many, lower choice loss
    # A held-out state lost its plan and a trained one gained it: a tie on the count, kept on the lower loss.
    assert verdict([(True, 0.5), (False, 1.0), (False, 1.0)], [(False, 0.8), (True, 0.4), (False, 0.9)], 1) == ""
    why = verdict(before, [(False, 1.0), (True, 0.5), (False, 1.3)], 1)
    assert why == "top plan right in 1 -> 1 of 3 labelled states (held out: 0 -> 0 of 1), choice loss 0.9000 -> 0.9333"
    assert "1 -> 0 of 3" in verdict(before, [(False, 0.1), (False, 0.1), (False, 0.1)], 1)  # fewer right


def test_plan_accuracy_accepts_a_choice_fine_tune_and_rejects_one_that_changes_nothing(
        tmp_path, tiny_lm_dir, monkeypatch):
    from dataclasses import replace

    from llmrl.adapter.finetune import LoraFineTuner

    cfg = replace(CFG, loss="choice", accept="plan_accuracy")
    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes(), cfg)
    trainer.poll_once()
    assert trainer.train_now() == "accepted" and latest_adapter(tmp_path).version == 1
    # A fine-tune that leaves the weights as they are gets exactly the same top plans and choice loss.
    monkeypatch.setattr(LoraFineTuner, "train", lambda self, examples: 0.0)
    idle = make_trainer(tmp_path / "idle", tiny_lm_dir, feedback_with_successes(), cfg)
    idle.poll_once()
    assert idle.train_now() == "rejected" and latest_adapter(tmp_path / "idle") is None


def test_plan_accuracy_rejects_a_fine_tune_that_moves_a_state_whose_label_is_still_held(
        tmp_path, tiny_lm_dir, monkeypatch):
    """adapter.min_label_votes: 6 states with 2 votes each are labelled, 3 with one vote are held. A fine-tune
    that passes on the labelled states is still rejected if it changes the teacher's top plan in a held one."""
    from dataclasses import replace

    from llmrl.adapter.finetune import LoraFineTuner
    from llmrl.adapter.trainer import _unlabelled_verdict

    fb = FeedbackService(FeedbackConfig(credit="episode", publish_every=1), "Open the door.", max_pairs=100,
                         pair_label="achieved", min_label_votes=2)
    won = [episode(True, outcome(s, OPTIONS[0], 0, achieved=OPTIONS[1])) for s in STATES]
    fb.record(won[:6] + won)
    cfg = replace(CFG, loss="choice", accept="plan_accuracy", pair_label="achieved", min_label_votes=2)
    trainer = make_trainer(tmp_path, tiny_lm_dir, fb, cfg)
    assert trainer.poll_once() == 6 and len(trainer._held) == 3
    tops = iter([[0, 0, 2], [0, 1, 2]])  # before and after the fine-tune: the second held state moved
    monkeypatch.setattr(LoraFineTuner, "top_choices", lambda self, examples: next(tops))
    monkeypatch.setattr("llmrl.adapter.trainer._plan_accuracy_verdict", lambda *args: "")  # labelled: passes
    assert trainer.train_now() == "rejected" and latest_adapter(tmp_path) is None
    assert _unlabelled_verdict([0, 0, 2], [0, 1, 2]) == (
        "the top plan changed in 1 of 3 states whose labels are held (adapter.min_label_votes)")
    assert _unlabelled_verdict([0, 2], [0, 2]) == "" and _unlabelled_verdict([], []) == ""
    monkeypatch.setattr(LoraFineTuner, "top_choices", lambda self, examples: [0] * len(examples))
    assert trainer.train_now() == "unchanged"  # the inputs of the rejected fine-tune: not run again
    fb.record([won[6]])  # a held state comes of age: new inputs
    assert trainer.poll_once() == 1 and len(trainer._held) == 2
    assert trainer.train_now() == "accepted"  # the held states kept their plans
    assert (trainer.stats().attempts, trainer.stats().unchanged) == (2, 1)


def test_a_fine_tune_that_does_not_improve_is_rejected(tmp_path, tiny_lm_dir):
    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes(), AdapterConfig(
        enabled=True, r=4, lr=1e-12, batch_size=4, min_new_pairs=1, heldout_frac=0.3))
    trainer.poll_once()
    assert trainer.train_now() == "rejected"  # a learning rate of 1e-12 cannot lower the loss
    assert latest_adapter(tmp_path) is None and trainer.stats().rejected == 1
    # The same pairs, prompts and start weights again: counted, not fine-tuned a second time, and its
    # comparison is not fine-tuning time.
    spent = trainer.stats().train_s
    assert trainer.train_now() == "unchanged" and trainer.stats().attempts == 1
    assert trainer.stats().train_s == spent > 0
    trainer._feedback.record([episode(True, outcome(DOOR_STATE, OPTIONS[2], 2))])  # a new pair: new inputs
    assert trainer.poll_once() == 1 and trainer.train_now() == "rejected"
    assert (trainer.stats().attempts, trainer.stats().rejected, trainer.stats().unchanged) == (2, 2, 1)
    # Each fine-tune's verdict stays in the run folder, with why; a skipped trigger is not a fine-tune.
    journal = attempts(tmp_path)
    assert [a["outcome"] for a in journal] == ["rejected", "rejected"]
    assert all("did not improve" in a["why"] and a["heldout_loss_after"] >= a["heldout_loss_before"]
               for a in journal)
    assert [a["pairs"] for a in journal] == [9, 10] and journal[0]["in_service"] == 0


def test_too_few_pairs_is_counted_not_trained(tmp_path, tiny_lm_dir):
    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes(1))
    trainer.poll_once()
    assert trainer.train_now() == "no_pairs"
    assert trainer.stats().no_pairs == 1 and trainer.stats().attempts == 0


def test_nan_and_out_of_memory_keep_the_version_in_service(tmp_path, tiny_lm_dir, monkeypatch):
    from llmrl.adapter.finetune import LoraFineTuner

    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes())
    trainer.poll_once()
    assert trainer.train_now() == "accepted"
    v1 = read_version(latest_adapter(tmp_path).path)
    real = LoraFineTuner._batch_loss
    monkeypatch.setattr(LoraFineTuner, "_batch_loss", lambda self, batch: real(self, batch) * float("nan"))
    assert trainer.train_now() == "diverged"

    def oom(self, examples):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(LoraFineTuner, "_batch_loss", real)
    monkeypatch.setattr(LoraFineTuner, "train", oom)
    assert trainer.train_now() == "out_of_memory"
    stats = trainer.stats()
    assert (stats.diverged, stats.out_of_memory, stats.version) == (1, 1, 1)
    assert latest_adapter(tmp_path) == v1
    journal = attempts(tmp_path)
    assert [a["outcome"] for a in journal] == ["accepted", "diverged", "out_of_memory"]
    assert journal[0]["heldout_loss_after"] < journal[0]["heldout_loss_before"] and journal[0]["in_service"] == 1
    assert "nan" in journal[1]["why"]
    assert "out of memory" in journal[2]["why"] and journal[2]["in_service"] == 1


def test_a_base_model_that_will_not_load_is_counted(tmp_path):
    trainer = make_trainer(tmp_path, str(tmp_path / "no-model"), feedback_with_successes())
    trainer.poll_once()
    assert trainer.train_now() == "failed"
    assert trainer.train_now() == "failed"  # reported once, not retried
    assert trainer.stats().failed == 2


def test_a_restarted_feedback_actor_is_read_again_from_the_start(tmp_path, tiny_lm_dir):
    trainer = make_trainer(tmp_path, tiny_lm_dir, feedback_with_successes(4))
    assert trainer.poll_once() == 4
    trainer._feedback = feedback_with_successes(2)  # fewer episodes: a fresh actor re-seeded from a checkpoint
    assert trainer.poll_once() == 0 and trainer.stats().pairs == 4
    trainer._feedback.record([episode(True, outcome(DOOR_STATE, OPTIONS[2], 2))])
    assert trainer.poll_once() == 1


def test_loss_is_the_teachers_score(tiny_lm_dir):
    """The trainer's per-pair loss is minus the hf backend's length-normalised score of that plan."""
    from llmrl.adapter.data import pair_text
    from llmrl.adapter.finetune import LoraFineTuner
    from llmrl.config import HFConfig
    from llmrl.messages import PromptBankSnapshot, TeacherQuery, TrainingPair
    from llmrl.teacher.backends.hf import HFBackend

    tuner = LoraFineTuner(tiny_lm_dir, AdapterConfig(r=4))
    backend = HFBackend(HFConfig(model=tiny_lm_dir))
    bank = PromptBankSnapshot(version=1, task_description="Open the door.")
    p = TrainingPair(TeacherQuery("minigrid", "SimpleDoorKey", KEY_STATE, OPTIONS), OPTIONS[1])
    prompt, _ = pair_text(p, bank)
    (sums, counts), = backend._score([prompt], [OPTIONS])
    assert tuner.loss(tuner.encode([pair_text(p, bank)])) == pytest.approx(-sums[1] / counts[1], rel=1e-4)


def test_choice_loss_is_the_cross_entropy_of_the_teachers_own_distribution_and_training_raises_the_plan(
        tiny_lm_dir):
    """adapter.loss=choice: a pair's loss is -log of the probability the hf teacher (score mode, temperature 1)
    gives the pair's plan among its options, and training on it raises that probability."""
    from dataclasses import replace

    from llmrl.adapter.data import pair_choices
    from llmrl.adapter.finetune import LoraFineTuner
    from llmrl.config import HFConfig
    from llmrl.messages import PromptBankSnapshot, TeacherQuery, TrainingPair
    from llmrl.teacher.backends.hf import HFBackend
    from llmrl.teacher.plan_choice import distribution_from_scores

    tuner = LoraFineTuner(tiny_lm_dir, replace(CFG, loss="choice"))
    bank = PromptBankSnapshot(version=1, task_description="Open the door.")
    pairs = [TrainingPair(TeacherQuery("minigrid", "SimpleDoorKey", s, OPTIONS), OPTIONS[2]) for s in STATES]
    examples = tuner.encode_choices([pair_choices(p, bank) for p in pairs])
    assert len(examples) == len(STATES) and all(len(rows) == len(OPTIONS) for rows, _ in examples)
    prompt, _, label = pair_choices(pairs[0], bank)
    (sums, counts), = HFBackend(HFConfig(model=tiny_lm_dir))._score([prompt], [OPTIONS])
    teacher_p = distribution_from_scores(sums, counts, 1.0, True)[label]
    assert tuner.loss(examples[:1]) == pytest.approx(-math.log(teacher_p), rel=1e-4)
    ((top_right, ce),) = tuner.plan_choices(examples[:1])
    teacher_top = max(range(len(OPTIONS)), key=distribution_from_scores(sums, counts, 1.0, True).__getitem__)
    assert ce == pytest.approx(-math.log(teacher_p), rel=1e-4) and top_right == (teacher_top == label)

    def p_plan(rows, label):
        with torch.no_grad():
            return float(torch.softmax(-tuner._per_row_nll(rows), 0)[label])

    before = [p_plan(*ex) for ex in examples]
    assert before[0] == pytest.approx(teacher_p, rel=1e-4)
    tuner.train(examples)
    after = [p_plan(*ex) for ex in examples]
    assert sum(after) / len(after) > sum(before) / len(before) + 0.05


def test_the_trainer_renders_pairs_through_the_teachers_chat_template(tmp_path, tiny_lm_dir):
    """With teacher.hf.chat_template the teacher scores ChatML prompts: the trainer's choice loss on a pair is
    -log of the probability that very teacher serves for the pair's plan, not of a plain-text prompt's."""
    import asyncio
    import shutil
    from dataclasses import replace

    from llmrl.adapter.data import pair_choices
    from llmrl.config import HFConfig
    from llmrl.messages import PromptBankSnapshot, TeacherQuery, TrainingPair
    from llmrl.teacher.backends.hf import HFBackend
    from llmrl.teacher.prompting import ChatPrompts, build_prompt

    chat_dir = tmp_path / "chat_lm"
    shutil.copytree(tiny_lm_dir, chat_dir)
    (chat_dir / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    trainer = AdapterTrainer(replace(CFG, loss="choice"), str(chat_dir), str(tmp_path / "run"),
                             feedback_with_successes(), autostart=False, chat_template="on")
    tuner = trainer._ensure_tuner()
    assert isinstance(trainer._prompts, ChatPrompts)
    bank = PromptBankSnapshot(version=1, task_description="Open the door.")
    query = TeacherQuery("minigrid", "SimpleDoorKey", STATES[0], OPTIONS)
    pair = TrainingPair(query, OPTIONS[1])
    prompt, _, label = pair_choices(pair, bank, trainer._prompts)
    assert prompt.startswith("<|im_start|>system") and prompt != build_prompt(query, bank)
    (advice,) = asyncio.run(HFBackend(HFConfig(model=str(chat_dir), chat_template="on")).advise([query], bank))
    examples = tuner.encode_choices([pair_choices(pair, bank, trainer._prompts)])
    assert tuner.loss(examples) == pytest.approx(-math.log(advice.probs[label]), rel=1e-4)


def test_every_counter_is_a_stats_field_and_a_metrics_column():
    import dataclasses

    from llmrl.messages import ADAPTER_TRAINER_COUNTERS, AdapterTrainerStats
    from llmrl.training.loop import AdapterMonitor

    fields = {f.name: f.type for f in dataclasses.fields(AdapterTrainerStats)}
    assert all(fields[k] in (int, "int") for k in ADAPTER_TRAINER_COUNTERS)
    assert set(ADAPTER_TRAINER_COUNTERS) < set(AdapterMonitor.COUNTERS)
