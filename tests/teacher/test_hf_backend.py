"""HFBackend on a tiny random Llama built locally (no downloads)."""

from __future__ import annotations

import asyncio
import math

import pytest

from llmrl.config import HFConfig, TeacherConfig
from llmrl.messages import TeacherQuery
from llmrl.teacher.backends import BackendError, make_backend
from llmrl.teacher.backends.hf import HFBackend


@pytest.fixture(scope="module")
def score_backend(tiny_lm_dir):
    return HFBackend(HFConfig(model=tiny_lm_dir, selection="score"))


def _valid(advice, query):
    return (advice.has_advice and advice.options == query.options and len(advice.probs) == len(query.options)
            and math.isclose(sum(advice.probs), 1.0, abs_tol=1e-6) and all(p >= 0 for p in advice.probs))


def test_score_mode_valid_distribution_per_query(score_backend, bank, mixed_queries):
    out = asyncio.run(score_backend.advise(mixed_queries, bank))
    assert len(out) == len(mixed_queries)
    for advice, q in zip(out, mixed_queries):
        assert _valid(advice, q)
        assert advice.source == score_backend.name and advice.bank_version == bank.version
        assert advice.invalid_outputs == 0
    assert out[4].probs == (1.0,)
    assert score_backend.name.startswith("hf:")


def test_score_batched_equals_one_at_a_time(score_backend, bank, mixed_queries):
    batched = asyncio.run(score_backend.advise(mixed_queries, bank))
    for q, b in zip(mixed_queries, batched):
        single = asyncio.run(score_backend.advise([q], bank))[0]
        assert single.probs == pytest.approx(b.probs, abs=1e-5)


def test_shared_prompt_and_full_scoring_match_the_definition(
    tiny_lm_dir, score_backend, bank, mixed_queries, reference_scores
):
    from llmrl.teacher.prompting import build_prompt

    prompts = [build_prompt(q, bank) for q in mixed_queries]
    options = [q.options for q in mixed_queries]
    reference = reference_scores(score_backend, prompts, options)
    full = HFBackend(HFConfig(model=tiny_lm_dir))
    full._share_prompt = False
    assert score_backend._share_prompt
    for backend in (score_backend, full):
        got = backend._score(prompts, options)
        for (sums, counts), ref, opts in zip(got, reference, options):
            assert sums == pytest.approx(ref, abs=1e-4)
            assert counts == [len(backend._tok(f" {o}\n", add_special_tokens=False)["input_ids"]) for o in opts]


def test_score_respects_max_prompt_tokens(tiny_lm_dir, bank, mixed_queries):
    short = HFBackend(HFConfig(model=tiny_lm_dir, max_prompt_tokens=16))
    out = asyncio.run(short.advise(mixed_queries, bank))
    assert all(_valid(a, q) for a, q in zip(out, mixed_queries))


def test_score_temperature_zero_is_one_hot(tiny_lm_dir, bank, mixed_queries):
    greedy = HFBackend(HFConfig(model=tiny_lm_dir, temperature=0.0))
    out = asyncio.run(greedy.advise(mixed_queries[:2], bank))
    assert all(sorted(a.probs)[-1] == 1.0 for a in out)


def test_sample_mode_counts_invalid_and_never_raises(tiny_lm_dir, bank, mixed_queries):
    # The random tiny LM writes word salad: every sample is invalid, so no advice, reason "unparseable".
    backend = HFBackend(HFConfig(model=tiny_lm_dir, selection="sample", num_samples=3, max_new_tokens=6))
    out = asyncio.run(backend.advise(mixed_queries, bank))
    assert len(out) == len(mixed_queries)
    for advice, q in zip(out, mixed_queries):
        assert advice.options == q.options
        assert 0 <= advice.invalid_outputs <= 3
        if not advice.has_advice:
            assert advice.reason == "unparseable" and advice.invalid_outputs == 3
        else:
            assert _valid(advice, q)
    assert backend.stats()["samples"] == 3 * len(mixed_queries)


def test_sample_mode_parses_what_the_lm_writes(tiny_lm_dir, bank, mixed_queries, monkeypatch):
    backend = HFBackend(HFConfig(model=tiny_lm_dir, selection="sample", num_samples=4, max_new_tokens=4))
    # Replace only the decoded texts, to check the counting path end to end through advise().
    fake = [[" explore\n", " go to key, pick up key", "junk", " explore"]] * len(mixed_queries)
    monkeypatch.setattr(backend, "_sample", lambda prompts: fake[: len(prompts)])
    out = asyncio.run(backend.advise(mixed_queries[:1], bank))
    assert out[0].probs == pytest.approx((2 / 3, 1 / 3, 0.0)) and out[0].invalid_outputs == 1


def test_empty_batch(score_backend, bank):
    assert asyncio.run(score_backend.advise([], bank)) == []


def test_event_loop_stays_responsive(score_backend, bank, mixed_queries):
    """The model runs in a worker thread: other coroutines progress while a batch is computed."""

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await score_backend.advise(mixed_queries * 4, bank)
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 1


def test_missing_model_is_one_line_backend_error(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(BackendError) as err:
        HFBackend(HFConfig(model=missing))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"teacher.hf.model: cannot load '{missing}'")


def test_folder_without_model_is_one_line_backend_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendError) as err:
        HFBackend(HFConfig(model=str(tmp_path)))
    assert "\n" not in str(err.value) and str(err.value).startswith("teacher.hf.model: cannot load")


def test_bad_dtype(tiny_lm_dir):
    with pytest.raises(BackendError, match="teacher.hf.dtype"):
        HFBackend(HFConfig(model=tiny_lm_dir, dtype="float13"))


def test_make_backend_hf(tiny_lm_dir):
    backend = make_backend(TeacherConfig(backend="hf", hf=HFConfig(model=tiny_lm_dir)))
    assert isinstance(backend, HFBackend)
    q = TeacherQuery("minigrid", "DoorKey-5x5", "Agent sees <key>.", ("explore", "go to key, pick up key"))
    from llmrl.messages import PromptBankSnapshot

    assert asyncio.run(backend.advise([q], PromptBankSnapshot(version=0, task_description="")))[0].has_advice


def test_teacher_sets_its_own_torch_threads_on_cpu(tiny_lm_dir):
    # The teacher process must not oversubscribe the cores it shares with env runners and the learner.
    import torch

    before = torch.get_num_threads()
    try:
        HFBackend(HFConfig(model=tiny_lm_dir, torch_threads=2))
        assert torch.get_num_threads() == 2
        torch.set_num_threads(before)
        HFBackend(HFConfig(model=tiny_lm_dir, torch_threads=0))  # 0: torch's setting is left alone
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
