"""The fine-tuner's packed choice scoring on the tiny LM: every plan of a pair in one row gives the same scores and
the same gradients as one full row per plan, so adapter.loss=choice learns exactly what it learnt before."""

from __future__ import annotations

import pytest
import torch
from adapter_episodes import KEY_STATE, OPTIONS

from llmrl.adapter.data import pair_choices
from llmrl.adapter.finetune import LoraFineTuner
from llmrl.config import AdapterConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery, TrainingPair

# dropout 0: the packed and the per-plan forward passes then compute the same function, token for token.
CFG = AdapterConfig(enabled=True, r=4, alpha=8, lr=3e-2, epochs=1, batch_size=4, dropout=0.0, loss="choice")
BANK = PromptBankSnapshot(version=1, task_description="Open the door. " * 20,  # a long prompt, as with a bank
                          exemplars=("State: key in view. Plan: go to key, pick up key",))


def example(tuner: LoraFineTuner, label: int = 2):
    pair = TrainingPair(TeacherQuery("minigrid", "SimpleDoorKey", KEY_STATE, OPTIONS), OPTIONS[label])
    (ex,) = tuner.encode_choices([pair_choices(pair, BANK)])
    return ex


def lora_grads(tuner: LoraFineTuner, loss) -> dict:
    tuner.model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in tuner.model.named_parameters() if p.requires_grad}


def test_packed_plan_scores_and_gradients_match_one_row_per_plan(tiny_lm_dir):
    tuner = LoraFineTuner(tiny_lm_dir, CFG)
    assert tuner.packed_scoring, "the tiny Llama uses SDPA attention: the packed path must be the one under test"
    # A fine-tuned adapter (B != 0), so the LoRA's gradients and its effect on the prompt's keys are not trivial.
    tuner.train([example(tuner, 1)] * 4)
    rows, label = example(tuner)
    assert len({tuple(seq[:len(seq) - n]) for seq, n in rows}) == 1 and len(rows) == len(OPTIONS)
    tuner.model.train()  # dropout is 0: train mode only checks that nothing else differs between the paths
    packed = tuner._option_nll(rows)
    full = tuner._per_row_nll(rows)
    assert packed.shape == full.shape == (len(OPTIONS),)
    assert torch.allclose(packed, full, rtol=1e-4, atol=1e-5)
    g_packed = lora_grads(tuner, torch.nn.functional.cross_entropy(-tuner._option_nll(rows)[None],
                                                                    torch.tensor([label])))
    g_full = lora_grads(tuner, torch.nn.functional.cross_entropy(-tuner._per_row_nll(rows)[None],
                                                                  torch.tensor([label])))
    assert g_packed.keys() == g_full.keys() and g_packed
    for name in g_packed:
        assert torch.allclose(g_packed[name], g_full[name], rtol=1e-3, atol=1e-6), name


def test_a_model_without_custom_masks_scores_full_rows(tiny_lm_dir, monkeypatch):
    """A model whose forward rejects the packed call (flash attention, no logits_to_keep) falls back once, logged,
    and keeps scoring: the same numbers from one row per plan."""
    tuner = LoraFineTuner(tiny_lm_dir, CFG)
    rows, _ = example(tuner)
    with torch.no_grad():
        expected = tuner._per_row_nll(rows)

    def unsupported(*args, **kwargs):
        raise TypeError("forward() got an unexpected keyword argument 'logits_to_keep'")

    monkeypatch.setattr(tuner, "_packed_nll", unsupported)
    with torch.no_grad():
        got = tuner._option_nll(rows)
    assert not tuner.packed_scoring and torch.allclose(got, expected)
    assert tuner.loss([(rows, 0)]) == pytest.approx(
        float(torch.nn.functional.cross_entropy(-expected[None], torch.tensor([0]))), rel=1e-5)
