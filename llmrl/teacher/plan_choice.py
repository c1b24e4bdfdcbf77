"""How an LM's output becomes a distribution over options; shared by the hf, vLLM and OpenAI backends.

Two ways, both from the papers' practice:

* **score**: the log-likelihood of each candidate continuation (``" <option>\\n"`` after the prompt) under the
  LM, optionally length-normalised, softmaxed with a temperature. Every option gets a probability and no
  output can be unparseable; one forward pass per (prompt, option) pair.
* **samples** (LLM4Teach): the LM answers N times; the frequency of each admissible parsed answer is its
  probability. Answers that name no admissible option are counted as invalid, not guessed.

Pure Python (no numpy/torch), so backends and tests can share it without heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmrl.messages import Advice
from llmrl.teacher.prompting import parse_option


def candidate_continuations(options: Sequence[str]) -> list[str]:
    """Text appended after the prompt to score each option.

    The leading space matches how an answer follows "Plan:"; the trailing newline makes the LM pay for
    *ending* the answer, so a plan that is a prefix of another ("go to key" vs "go to key, pick up key")
    does not win just by being shorter.
    """
    return [f" {option}\n" for option in options]


def distribution_from_scores(
    logprob_sums: Sequence[float], token_counts: Sequence[int], temperature: float, length_normalize: bool
) -> tuple[float, ...]:
    """Softmax over candidate log-likelihoods; () when no candidate has a finite score.

    ``length_normalize`` uses the mean token log-prob, so long plans are not penalised for their length.
    ``temperature`` <= 0 means argmax (ties share the mass equally).
    """
    if len(logprob_sums) != len(token_counts):
        raise ValueError("logprob_sums and token_counts must have the same length")
    scores = [
        (s / max(n, 1) if length_normalize else s) if n > 0 and math.isfinite(s) else -math.inf
        for s, n in zip(logprob_sums, token_counts)
    ]
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return ()
    best = max(finite)
    if temperature <= 0:
        winners = [s == best for s in scores]
        k = sum(winners)
        return tuple(1.0 / k if w else 0.0 for w in winners)
    weights = [math.exp((s - best) / temperature) if math.isfinite(s) else 0.0 for s in scores]
    total = sum(weights)
    return tuple(w / total for w in weights)


def distribution_from_samples(samples: Sequence[str], options: Sequence[str]) -> tuple[tuple[float, ...], int]:
    """(frequency of each option among the parsable samples, number of invalid samples).

    The probabilities are () when no sample names an admissible option.
    """
    options = tuple(options)
    counts = dict.fromkeys(options, 0)
    invalid = 0
    for text in samples:
        choice = parse_option(text, options)
        if choice is None:
            invalid += 1
        else:
            counts[choice] += 1
    valid = len(samples) - invalid
    if valid == 0:
        return (), invalid
    return tuple(counts[o] / valid for o in options), invalid


def to_advice(
    options: tuple[str, ...], probs: tuple[float, ...], source: str, bank_version: int, invalid_outputs: int = 0
) -> Advice:
    """An ``Advice`` from a (possibly empty) distribution; empty means the LM gave nothing usable."""
    if not probs:
        return Advice(options=options, probs=(), bank_version=bank_version, source=source, reason="unparseable",
                      invalid_outputs=invalid_outputs)
    return Advice(options=options, probs=probs, bank_version=bank_version, source=source,
                  invalid_outputs=invalid_outputs)


def split_encode(tokenizer, prompts: Sequence[str], continuations: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """Token ids of (prompt, continuation) pairs, split the way the LM sees the joined text.

    The joined text is encoded once and the prompt's tokens are cut off its front (as lm-evaluation-harness
    does), so BPE merges at the boundary match what the model would read. If the prompt's encoding is not a
    prefix of the joined one (a merge across the boundary), the continuation is encoded on its own instead.
    ``tokenizer`` is any Hugging Face tokenizer (called as ``tokenizer(list_of_texts)``).
    """
    joined = tokenizer([p + c for p, c in zip(prompts, continuations)])["input_ids"]
    unique_prompts = list(dict.fromkeys(prompts))
    prompt_ids = dict(zip(unique_prompts, tokenizer(unique_prompts)["input_ids"]))
    alone = None
    out: list[tuple[list[int], list[int]]] = []
    for i, (prompt, whole) in enumerate(zip(prompts, joined)):
        ctx = list(prompt_ids[prompt])
        if list(whole[: len(ctx)]) == ctx and len(whole) > len(ctx):
            out.append((ctx, list(whole[len(ctx):])))
            continue
        if alone is None:
            alone = tokenizer(list(continuations), add_special_tokens=False)["input_ids"]
        out.append((ctx, list(alone[i])))
    return out
