import torch

from llmrl.rl.learner import distillation_loss


def test_ce_counts_only_advised_unmasked_steps():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]))
    teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # row 1: no advice
    mask = torch.tensor([True, True, True, False])  # row 3: padding, must not count
    ce, n = distillation_loss(logits, teacher, mask)
    expected = -(torch.log(torch.tensor(0.5)) + torch.log(torch.tensor(0.8))) / 2
    assert int(n) == 2
    assert torch.allclose(ce, expected)


def test_soft_targets_and_no_advice_is_zero():
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    ce, n = distillation_loss(logits, torch.tensor([[0.5, 0.5]]), None)
    assert torch.allclose(ce, -(0.5 * torch.log(torch.tensor(0.25)) + 0.5 * torch.log(torch.tensor(0.75))))
    ce0, n0 = distillation_loss(logits, torch.zeros(1, 2), None)
    assert float(ce0) == 0.0 and int(n0) == 0


def test_gradient_pulls_student_toward_teacher():
    logits = torch.zeros(1, 3, requires_grad=True)
    ce, _ = distillation_loss(logits, torch.tensor([[0.0, 1.0, 0.0]]), None)
    ce.backward()
    assert logits.grad[0, 1] < 0 < logits.grad[0, 0]
