"""HFBackend's shared bank prefix and packed option scoring give the same scores as the plain definition."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from llmrl.config import HFConfig
from llmrl.teacher.backends.hf import HFBackend
from llmrl.teacher.prompting import bank_prefix, build_prompt


@pytest.fixture
def backend(tiny_lm_dir):
    return HFBackend(HFConfig(model=tiny_lm_dir))


def _shared(bank):
    return bank_prefix(bank) + "\n\n"


def test_shared_prefix_scores_match_the_definition(backend, bank, mixed_queries, reference_scores):
    prompts = [build_prompt(q, bank) for q in mixed_queries]
    options = [q.options for q in mixed_queries]
    reference = reference_scores(backend, prompts, options)
    for _ in range(2):  # the second call reuses the kept prefix cache
        got = backend._score(prompts, options, _shared(bank))
        for (sums, _), ref in zip(got, reference):
            assert sums == pytest.approx(ref, abs=1e-4)
    stats = backend.stats()
    assert stats["prefix_reuses"] == 1
    assert stats["prefix_tokens_saved"] > 0


def test_prefix_is_recomputed_when_the_bank_changes(backend, bank, mixed_queries, reference_scores):
    asyncio.run(backend.advise(mixed_queries, bank))
    newer = dataclasses.replace(bank, version=bank.version + 1, feedback_lines=("plan explore failed 0/3 times",))
    prompts = [build_prompt(q, newer) for q in mixed_queries]
    reference = reference_scores(backend, prompts, [q.options for q in mixed_queries])
    out = backend._score(prompts, [q.options for q in mixed_queries], _shared(newer))
    assert [s for s, _ in out] == [pytest.approx(r, abs=1e-4) for r in reference]
    assert backend.stats()["prefix_reuses"] == 0


def test_a_prefix_that_cuts_a_token_is_not_shared(backend, bank, mixed_queries, reference_scores):
    # Cutting mid-word makes prefix + tail tokenise differently from the whole prompt: no sharing, same scores.
    prompts = [build_prompt(q, bank) for q in mixed_queries]
    options = [q.options for q in mixed_queries]
    cut = _shared(bank)[:10]
    prefix, owns, _ = backend._encode(prompts, [[f" {o}\n" for o in opts] for opts in options], cut)
    assert prefix == []
    assert owns[0] == list(backend._tok(prompts[0])["input_ids"])
    got = backend._score(prompts, options, cut)
    reference = reference_scores(backend, prompts, options)
    assert [s for s, _ in got] == [pytest.approx(r, abs=1e-4) for r in reference]


def test_queries_without_options_are_skipped(backend, bank, mixed_queries):
    prompts = [build_prompt(q, bank) for q in mixed_queries[:2]]
    got = backend._score(prompts, [(), mixed_queries[1].options], _shared(bank))
    assert got[0] == ([], [])
    assert len(got[1][0]) == len(mixed_queries[1].options)
    assert backend._score(prompts, [(), ()], _shared(bank)) == [([], []), ([], [])]


def test_concurrent_calls_give_the_same_answers_as_single_ones(backend, bank, mixed_queries):
    async def together():
        return await asyncio.gather(*(backend.advise([q], bank) for q in mixed_queries))

    merged = asyncio.run(together())
    stats = backend.stats()
    assert stats["model_calls"] + stats["merged_calls"] == len(mixed_queries)
    for q, (advice,) in zip(mixed_queries, merged):
        (single,) = asyncio.run(backend.advise([q], bank))
        assert advice.probs == pytest.approx(single.probs, abs=1e-5)
    asyncio.run(backend.close())
