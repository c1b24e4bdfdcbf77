"""A transformers causal LM as teacher, on CPU or one GPU, with batched scoring or sampling.

``teacher.hf.selection``:

* ``score``: the log-likelihood of each option's continuation ``" <option>\\n"`` after the prompt;
  ``plan_choice.distribution_from_scores`` turns them into probabilities. Never unparseable. One padded
  forward pass runs the batch's prompts, a second runs every (prompt, option) pair's option tokens on a copy
  of its prompt's KV cache, so a prompt is computed once however many options it has (about 3x faster than
  scoring full sequences at batch 32 on the tiny LM). Models whose cache cannot be copied per row fall back
  to one padded forward pass over the full (prompt + option) sequences.
* ``sample`` (LLM4Teach): ``num_samples`` sampled answers per prompt from one batched ``generate``; each is
  parsed with ``prompting.parse_option`` and counted (``plan_choice.distribution_from_samples``).

The model call runs in a worker thread so the teacher actor's event loop keeps accepting queries while the
model computes; a lock keeps one model call at a time (concurrent calls would only compete for the same
cores or GPU). ``TeacherQuery.adapter`` is ignored here (LoRA adapters are served by the vLLM backend).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Sequence

from llmrl.config import HFConfig
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError
from llmrl.teacher.plan_choice import (
    candidate_continuations,
    distribution_from_samples,
    distribution_from_scores,
    split_encode,
    to_advice,
)
from llmrl.teacher.prompting import build_prompt

log = logging.getLogger(__name__)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _looks_local(name: str) -> bool:
    """A filesystem path rather than a hub id ("org/model"), so a missing one fails without a network call."""
    return name.startswith(("/", "./", "../", "~")) or os.path.exists(name)


class HFBackend:
    """``PlanBackend`` over ``AutoModelForCausalLM.from_pretrained(cfg.model)``."""

    def __init__(self, cfg: HFConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = f"hf:{cfg.model}"
        self._cfg = cfg
        if not cfg.model:
            raise BackendError("teacher.hf.model: empty; give a hub name or a local model folder")
        dtype = getattr(torch, cfg.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise BackendError(f"teacher.hf.dtype: {cfg.dtype!r} is not a torch dtype name")
        path = os.path.expanduser(cfg.model)
        if _looks_local(cfg.model) and not os.path.isdir(path):
            raise BackendError(f"teacher.hf.model: cannot load '{cfg.model}': no such directory")
        try:
            self._tok = AutoTokenizer.from_pretrained(path)
            self._model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except Exception as e:  # noqa: BLE001 - any loader failure becomes one clear line
            raise BackendError(f"teacher.hf.model: cannot load '{cfg.model}': {_one_line(e)}") from None
        try:
            self._model.to(cfg.device)
        except Exception as e:  # noqa: BLE001
            raise BackendError(f"teacher.hf.device: cannot use {cfg.device!r}: {_one_line(e)}") from None
        self._model.eval()
        self._model.requires_grad_(False)
        self._device = torch.device(cfg.device)
        self._pad_id = self._tok.pad_token_id
        if self._pad_id is None:
            self._pad_id = self._tok.eos_token_id if self._tok.eos_token_id is not None else 0
        self._eos_id = self._tok.eos_token_id
        # logits_to_keep skips the vocabulary projection (and its memory) for every prompt position.
        self._has_logits_to_keep = "logits_to_keep" in inspect.signature(self._model.forward).parameters
        # Scoring shares each prompt's forward pass among its options through a copied KV cache (as beam
        # search copies caches); a model whose cache cannot be copied that way scores full sequences instead.
        self._share_prompt = self._has_logits_to_keep
        # A thread lock, taken inside the worker thread: one model call at a time, whatever event loop calls.
        self._lock = threading.Lock()
        self._stats = {"prompts": 0, "batches": 0, "samples": 0, "invalid_outputs": 0}

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        if not queries:
            return []
        prompts = [build_prompt(q, bank) for q in queries]
        if self._cfg.selection == "sample":
            samples = await asyncio.to_thread(self._locked, self._sample, prompts)
        else:
            scores = await asyncio.to_thread(self._locked, self._score, prompts, [q.options for q in queries])
        self._stats["prompts"] += len(queries)
        self._stats["batches"] += 1
        out = []
        for i, q in enumerate(queries):
            if self._cfg.selection == "sample":
                probs, invalid = distribution_from_samples(samples[i], q.options)
                self._stats["samples"] += len(samples[i])
                self._stats["invalid_outputs"] += invalid
            else:
                sums, counts = scores[i]
                probs = distribution_from_scores(sums, counts, self._cfg.temperature, self._cfg.length_normalize)
                invalid = 0
            out.append(to_advice(q.options, probs, self.name, bank.version, invalid))
        return out

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    def _truncate(self, ids: list[int]) -> list[int]:
        # Left truncation: the end of the prompt (state, options, answer cue) matters most.
        limit = self._cfg.max_prompt_tokens
        return ids[-limit:] if len(ids) > limit else ids

    def _score(self, prompts: list[str], options: list[tuple[str, ...]]) -> list[tuple[list[float], list[int]]]:
        """Per prompt: (sum of continuation token log-probs, continuation token count) for each option."""
        pair_prompts, pair_conts, owner = [], [], []
        for i, (prompt, opts) in enumerate(zip(prompts, options)):
            for cont in candidate_continuations(opts):
                pair_prompts.append(prompt)
                pair_conts.append(cont)
                owner.append(i)
        results: list[tuple[list[float], list[int]]] = [([], []) for _ in prompts]
        if not pair_prompts:
            return results
        pairs = [(self._truncate(p), c) for p, c in split_encode(self._tok, pair_prompts, pair_conts)]
        sums = counts = None
        if self._share_prompt:
            try:
                sums, counts = self._score_shared(pairs, owner, len(prompts))
            except (AttributeError, NotImplementedError, TypeError, ValueError) as e:
                log.info("hf teacher: shared-prompt scoring unavailable for this model (%s); scoring full "
                         "sequences", _one_line(e))
                self._share_prompt = False
        if sums is None:
            sums, counts = self._score_full(pairs)
        for r, i in enumerate(owner):
            results[i][0].append(sums[r] if counts[r] > 0 else float("-inf"))
            results[i][1].append(int(counts[r]))
        return results

    def _left_padded(self, seqs: list[list[int]]):
        """(ids, attention mask, position ids), left-padded so every sequence ends at the last column."""
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, seq in enumerate(seqs):
            ids[r, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[r, width - len(seq):] = 1
        # Explicit positions keep real tokens at 0..L-1 whatever the padding (absolute-position models care).
        return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)

    def _score_shared(self, pairs: list[tuple[list[int], list[int]]], owner: list[int], n_prompts: int):
        """Each prompt runs once; its KV cache is copied to its options, which then read only their own tokens.

        About (prompt + sum of option lengths) tokens of compute per query instead of (prompt x options); the
        copied cache costs memory proportional to pairs x prompt length (fine for the small LMs this backend
        serves; large models belong on vLLM, whose prefix cache shares prompts without copies).
        """
        import torch

        prompt_ids: list[list[int]] = [[] for _ in range(n_prompts)]
        for (p, _), i in zip(pairs, owner):
            prompt_ids[i] = p
        conts = [c for _, c in pairs]
        n, cmax = len(pairs), max(1, max(len(c) for c in conts))
        dev = self._device
        ids, mask, pos = self._left_padded(prompt_ids)
        cand = torch.full((n, cmax), self._pad_id, dtype=torch.long)
        cmask = torch.zeros((n, cmax), dtype=torch.long)
        for r, c in enumerate(conts):
            if c:
                cand[r, : len(c)] = torch.tensor(c, dtype=torch.long)
                cmask[r, : len(c)] = 1
        index = torch.tensor(owner, dtype=torch.long)
        with torch.inference_mode():  # grad mode is per thread: set it in the worker thread itself
            first = self._model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                                use_cache=True, logits_to_keep=1)
            cache = first.past_key_values
            cache.reorder_cache(index.to(dev))  # one copy of its prompt's cache per (prompt, option) pair
            first_lp = torch.log_softmax(first.logits[:, -1, :].float(), dim=-1)[index.to(dev)]
            lengths = mask.sum(-1)[index]
            out = self._model(
                input_ids=cand.to(dev), attention_mask=torch.cat([mask[index], cmask], dim=1).to(dev),
                position_ids=(lengths[:, None] + torch.arange(cmax)[None, :]).to(dev),
                past_key_values=cache, use_cache=True,
            )
            # Option token 0 is predicted by the prompt's last position, token j by option position j - 1.
            lp = torch.cat([first_lp[:, None, :], torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)], dim=1)
            tok_lp = lp.gather(-1, cand.to(dev).unsqueeze(-1)).squeeze(-1)
            tok_lp = torch.where(cmask.to(dev).bool(), tok_lp, torch.zeros_like(tok_lp))
            sums = tok_lp.sum(-1).cpu().tolist()
        return sums, cmask.sum(-1).tolist()

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]):
        """One left-padded forward over every full (prompt + option) sequence; for models without a
        reorderable KV cache."""
        import torch

        conts = [c for _, c in pairs]
        cmax = max(1, max(len(c) for c in conts))
        n = len(pairs)
        ids, mask, pos = self._left_padded([p + c for p, c in pairs])
        targets = torch.full((n, cmax), self._pad_id, dtype=torch.long)
        tmask = torch.zeros((n, cmax), dtype=torch.bool)
        for r, c in enumerate(conts):
            if c:
                targets[r, cmax - len(c):] = torch.tensor(c, dtype=torch.long)
                tmask[r, cmax - len(c):] = True
        keep = cmax + 1  # every option ends at the last column: only these positions need logits
        dev = self._device
        with torch.inference_mode():
            kwargs = {"logits_to_keep": keep} if self._has_logits_to_keep else {}
            logits = self._model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                                 use_cache=False, **kwargs).logits
            # Column j of the kept window predicts the token at column j + 1.
            logp = torch.log_softmax(logits[:, -keep:-1, :].float(), dim=-1)
            tok_lp = logp.gather(-1, targets.to(dev).unsqueeze(-1)).squeeze(-1)
            tok_lp = torch.where(tmask.to(dev), tok_lp, torch.zeros_like(tok_lp))
            sums = tok_lp.sum(-1).cpu().tolist()
        return sums, tmask.sum(-1).tolist()

    def _sample(self, prompts: list[str]) -> list[list[str]]:
        """``num_samples`` decoded answers per prompt (greedy, one answer, when temperature <= 0)."""
        import torch

        ids, mask, _ = self._left_padded([self._truncate(ids) for ids in self._tok(prompts)["input_ids"]])
        width = ids.shape[1]
        greedy = self._cfg.temperature <= 0
        n = 1 if greedy else self._cfg.num_samples
        gen_kwargs = dict(max_new_tokens=self._cfg.max_new_tokens, num_return_sequences=n,
                          pad_token_id=self._pad_id, eos_token_id=self._eos_id)
        if greedy:
            gen_kwargs.update(do_sample=False)
        else:
            gen_kwargs.update(do_sample=True, temperature=self._cfg.temperature, top_k=0, top_p=1.0)
        with torch.inference_mode():
            out = self._model.generate(input_ids=ids.to(self._device), attention_mask=mask.to(self._device),
                                       **gen_kwargs)
        texts = self._tok.batch_decode(out[:, width:].cpu(), skip_special_tokens=True)
        return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def close(self) -> None:
        return None
