"""Shared fixtures for the teacher tests: a prompt bank, mixed MiniGrid/Crafter queries (the tiny LM is in
tests/conftest.py)."""

from __future__ import annotations

import pytest

from llmrl.messages import OptionStat, PromptBankSnapshot, TeacherQuery

MINIGRID_OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
CRAFTER_OPTIONS = ("collect wood", "place table", "make wood pickaxe", "eat cow")


@pytest.fixture
def bank() -> PromptBankSnapshot:
    return PromptBankSnapshot(
        version=7,
        task_description="In a locked 2D grid room, there is an agent whose task is to open the door.",
        exemplars=("Q: Agent sees <key>, holds <nothing>. A: Action: {go to <key>, pick up <key>}",),
        feedback_lines=(
            "in state Agent sees <key>, holds <nothing>., plan go to key, pick up key succeeded 3/4 times",
        ),
        option_stats=(OptionStat("Agent sees <key>, holds <nothing>.", "go to key, pick up key", 3, 4),),
        subgoal_success=(("collect wood", 0.8), ("place table", 0.25)),
        comprehension=0.625,
    )


@pytest.fixture
def mixed_queries() -> list[TeacherQuery]:
    """Queries of both families with different option counts and prompt lengths (exercises padding)."""
    return [
        TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>, holds <nothing>.", MINIGRID_OPTIONS),
        TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <door>, holds <key>.", MINIGRID_OPTIONS[::-1]),
        TeacherQuery("minigrid", "LavaDoorKey", "Agent sees <nothing>, holds <nothing>.", MINIGRID_OPTIONS[:2]),
        TeacherQuery("crafter", "Crafter", "You see tree, grass, cow. Inventory: wood 1, sapling 1.",
                     CRAFTER_OPTIONS, context="Recent sub-goals: collect wood, collect wood."),
        TeacherQuery("crafter", "Crafter", "You see water.", CRAFTER_OPTIONS[:1]),
    ]


@pytest.fixture
def reference_scores():
    """Sum of option-token log-probs from one unpadded forward per (prompt, option): the definition that the hf
    backend's batched, prefix-sharing paths must reproduce."""
    return _reference_scores


def _reference_scores(backend, prompts, options):
    """Sum of option-token log-probs from one unpadded forward per (prompt, option): the definition."""
    import torch

    from llmrl.teacher.plan_choice import candidate_continuations, split_encode

    out = []
    for prompt, opts in zip(prompts, options):
        row = []
        for (p, c) in split_encode(backend._tok, [prompt] * len(opts), candidate_continuations(opts)):
            with torch.inference_mode():
                logits = backend._model(input_ids=torch.tensor([p + c])).logits[0]
            lp = torch.log_softmax(logits[len(p) - 1:-1].float(), dim=-1)
            row.append(float(lp.gather(-1, torch.tensor(c)[:, None]).sum()))
        out.append(row)
    return out
