"""A transformers causal LM as teacher, on CPU or one GPU, with batched scoring or sampling.

``teacher.hf.selection``:

* ``score``: the log-likelihood of each option's continuation ``" <option>\\n"`` after the prompt;
  ``plan_choice.distribution_from_scores`` turns them into probabilities. Never unparseable. Two steps:

  1. the prompt bank's part of the prompt (task description, exemplars, feedback; with a chat template also
     the system turn around them: ``shared_prefix`` of ``prompting.PlainPrompts`` / ``ChatPrompts``),
     identical for every query of one bank version and most of each prompt's tokens, runs once and its KV
     cache is kept until the bank changes, so neither a batch nor a series of batches recomputes it;
  2. one padded forward pass runs, per prompt, its own part (state, options, answer cue) followed by every
     option's tokens, with an attention mask that keeps the options apart (``_score_packed``), so a prompt is
     computed once however many options it has and no cache is copied per option.

  Prompts that do not start with the prefix's tokens (left-truncated by ``max_prompt_tokens``, or a
  tokenizer that merges across the boundary) skip step 1 for that batch. Models whose attention ignores
  custom masks (flash-attention implementations) or whose cache cannot be copied per row fall back to one
  padded forward pass over the full (prompt + option) sequences.
* ``sample`` (LLM4Teach): ``num_samples`` sampled answers per prompt from one batched ``generate``; each is
  parsed with ``prompting.parse_option`` and counted (``plan_choice.distribution_from_samples``).

Model calls run on one worker thread (``merging.CallMerger``), so the teacher actor's event loop keeps
accepting queries while the model computes, and calls that arrive meanwhile are merged into the next model
call instead of each waiting its turn (concurrent calls would only compete for the same cores or GPU).
``TeacherQuery.adapter`` is ignored here. The online adapter (``llmrl.adapter``) is hot-loaded with peft
(``prepare_adapter`` / ``activate_adapter``): the weights are read and checked off the model thread, then
injected and switched on the model thread between two model calls, so no call ever runs half-switched.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import logging
import os
from collections.abc import Hashable, Sequence

from llmrl.config import HFConfig
from llmrl.messages import AdapterVersion, Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, local_model, one_line
from llmrl.teacher.backends.merging import CallMerger
from llmrl.teacher.backends.peft_adapters import PeftAdapters, check_adapter_files, model_base_hash
from llmrl.teacher.packed_options import pack_options
from llmrl.teacher.plan_choice import (
    candidate_continuations,
    distribution_from_samples,
    distribution_from_scores,
    split_encode,
    to_advice,
)
from llmrl.teacher.prompting import ChatPrompts, PlainPrompts

log = logging.getLogger(__name__)

# Most prompts one merged model call takes: bounds the padded batch's memory (its attention mask grows with
# prompts x row width x (prefix + row width)) while leaving room for several service batches to merge.
MAX_PROMPTS_PER_CALL = 128


def prompt_format(chat_template: str, tok, model: str) -> ChatPrompts | PlainPrompts:
    """``teacher.hf.chat_template`` (auto|on|off): the tokenizer's chat template ("auto": when it has one) or
    plain text. The adapter trainer renders its pairs with it too, so it trains on the prompts the teacher reads."""
    has_template = bool(getattr(tok, "chat_template", None))
    if chat_template == "off" or (chat_template == "auto" and not has_template):
        return PlainPrompts()
    if not has_template:
        raise BackendError(f"teacher.hf.chat_template: on, but the tokenizer of '{model}' has no chat template")
    try:
        return ChatPrompts(functools.partial(tok.apply_chat_template, tokenize=False, add_generation_prompt=True))
    except Exception as e:  # noqa: BLE001 - a template error (jinja, a role it refuses) becomes one line
        raise BackendError(f"teacher.hf.chat_template: the chat template of '{model}' does not render: "
                           f"{one_line(e)}") from None


def load_frozen_lm(model: str, dtype_name: str, device: str, section: str = "teacher.hf",
                   model_key: str = "", device_key: str = ""):
    """(tokenizer, model in eval mode without gradients) for ``model`` (a short name, local folder or hub id), on
    ``device``; every failure is one ``BackendError`` naming the key (``<section>.model``, ``.dtype``, ``.device``
    unless ``model_key`` / ``device_key`` say otherwise)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_key = model_key or f"{section}.model"
    device_key = device_key or f"{section}.device"
    if not model:
        raise BackendError(f"{model_key}: empty; give a hub name or a local model folder")
    dtype = getattr(torch, dtype_name, None)
    if not isinstance(dtype, torch.dtype):
        raise BackendError(f"{section}.dtype: {dtype_name!r} is not a torch dtype name")
    path = os.path.expanduser(local_model(model, model_key))
    try:
        tok = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one clear line
        raise BackendError(f"{model_key}: cannot load '{model}': {one_line(e)}") from None
    try:
        lm.to(device)
    except Exception as e:  # noqa: BLE001
        raise BackendError(f"{device_key}: cannot use {device!r}: {one_line(e)}") from None
    lm.eval()
    lm.requires_grad_(False)
    return tok, lm


def pad_id_of(tok) -> int:
    """The tokenizer's padding id (its end-of-sequence id, or 0, for tokenizers without one)."""
    if tok.pad_token_id is not None:
        return tok.pad_token_id
    return tok.eos_token_id if tok.eos_token_id is not None else 0


def left_padded(seqs: list[list[int]], pad_id: int):
    """(ids, attention mask, position ids), left-padded so every sequence ends at the last column."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, seq in enumerate(seqs):
        ids[r, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[r, width - len(seq):] = 1
    # Explicit positions keep real tokens at 0..L-1 whatever the padding (absolute-position models care).
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


class HFBackend:
    """``PlanBackend`` over ``AutoModelForCausalLM.from_pretrained(cfg.model)``."""

    def __init__(self, cfg: HFConfig):
        import torch

        # The name keeps what the config says (a short name stays "hf:smollm2-135m"), so caches and logs read well.
        self.name = f"hf:{cfg.model}"
        self._cfg = cfg
        self._tok, self._model = load_frozen_lm(cfg.model, cfg.dtype, cfg.device)
        self._prompts = prompt_format(cfg.chat_template, self._tok, cfg.model)
        self._device = torch.device(cfg.device)
        if cfg.torch_threads > 0 and self._device.type == "cpu":
            torch.set_num_threads(cfg.torch_threads)
        self._pad_id = pad_id_of(self._tok)
        self._eos_id = self._tok.eos_token_id
        # logits_to_keep skips the vocabulary projection (and its memory) for every prompt position.
        forward_args = inspect.signature(self._model.forward).parameters
        self._has_logits_to_keep = "logits_to_keep" in forward_args
        # transformers 5.x renamed past_key_values to cache (the old name warns, and goes in 5.40); 4.x has only it.
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        # Packed scoring (all options of a prompt in one row) needs a custom 4D attention mask, which the eager
        # and SDPA attention implementations honour and e.g. flash-attention ones ignore; others, and models
        # whose cache cannot be copied per row, score full sequences instead.
        attn = getattr(self._model.config, "_attn_implementation", None)
        self._share_prompt = self._has_logits_to_keep and attn in ("sdpa", "eager")
        self._calls = CallMerger(self._model_call, MAX_PROMPTS_PER_CALL, name="hf-teacher")
        self._adapters = PeftAdapters(self._model)
        # (prefix token ids, its KV cache for one row): the bank prefix of the latest batch (step 1 above),
        # and (prefix text, its token ids, whether the cut after it is clean: None until checked) so an
        # unchanged bank is neither re-tokenised nor re-checked per batch.
        self._prefix_kv: tuple[tuple[int, ...], object] | None = None
        self._prefix_ids: tuple[str, list[int], bool | None] = ("", [], None)
        self._stats = {"prompts": 0, "batches": 0, "samples": 0, "invalid_outputs": 0, "prefix_reuses": 0,
                       "prefix_tokens_saved": 0}

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        if not queries:
            return []
        items = [(self._prompts.build(q, bank), q.options) for q in queries]
        if self._cfg.selection == "sample":
            samples = await self._calls(("sample",), items)
        else:
            scores = await self._calls(("score", self._prompts.shared_prefix(bank)), items)
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

    def _model_call(self, key: Hashable, items: list[tuple[str, tuple[str, ...]]]) -> list:
        """One model call over merged items (on the merger's thread); calls of one key share the bank prefix."""
        if key[0] == "adapter":
            return [self._switch_adapter(key[1], path) for path in items]
        prompts = [p for p, _ in items]
        if key[0] == "sample":
            return self._sample(prompts)
        return self._score(prompts, [o for _, o in items], key[1])

    def _truncate(self, ids: list[int]) -> list[int]:
        # Left truncation: the end of the prompt (state, options, answer cue) matters most.
        limit = self._cfg.max_prompt_tokens
        return ids[-limit:] if len(ids) > limit else ids

    def _score(self, prompts: list[str], options: list[tuple[str, ...]],
               shared_prefix: str = "") -> list[tuple[list[float], list[int]]]:
        """Per prompt: (sum of continuation token log-probs, continuation token count) for each option.

        ``shared_prefix`` is text every prompt starts with (the bank prefix); "" computes prompts whole.
        """
        results: list[tuple[list[float], list[int]]] = [([], []) for _ in prompts]
        active = [i for i, opts in enumerate(options) if opts]
        if not active:
            return results
        conts = [candidate_continuations(options[i]) for i in active]
        prefix, owns, cont_ids = self._encode([prompts[i] for i in active], conts, shared_prefix)
        scored = None
        if self._share_prompt:
            try:
                scored = self._score_packed(prefix, owns, cont_ids)
            except (AttributeError, NotImplementedError, TypeError, ValueError) as e:
                log.info("hf teacher: packed scoring unavailable for this model (%s); scoring full sequences",
                         one_line(e))
                self._share_prompt = False
        if scored is None:
            pairs = [(prefix + own, c) for own, cs in zip(owns, cont_ids) for c in cs]
            scored = self._score_full(pairs)
        sums, counts = scored
        r = 0
        for i, cs in zip(active, cont_ids):
            for _ in cs:
                results[i][0].append(sums[r] if counts[r] > 0 else float("-inf"))
                results[i][1].append(int(counts[r]))
                r += 1
        return results

    def _encode(self, prompts: list[str], conts: list[list[str]], shared_prefix: str):
        """(shared prefix ids, each prompt's ids after the prefix, each option's continuation ids).

        With a usable prefix only the short per-query tails are tokenised (the whole prompts are ~5x longer,
        and tokenising them per option was a third of a batch's time on the tiny LM). The cut is checked on
        the first prompt of each new prefix (every tail starts with the same "State:" line, so one check
        covers them): if the tokenizer reads prefix + tail differently from the whole prompt (a merge across
        the blank line, or a dummy-prefix space), the prompts are encoded whole and nothing is shared.
        Prompts longer than ``max_prompt_tokens`` are left-truncated whole, which also drops the sharing.
        """
        flat_p = [p for p, cs in zip(prompts, conts) for _ in cs]
        flat_c = [c for cs in conts for c in cs]
        prefix: list[int] = []
        if shared_prefix and all(p.startswith(shared_prefix) for p in prompts):
            prefix = self._prefix_tokens(shared_prefix)
            clean = self._prefix_ids[2]
            if clean is not False:
                tails = [p[len(shared_prefix):] for p in flat_p]
                enc = split_encode(functools.partial(self._tok, add_special_tokens=False), tails, flat_c)
                if clean is None:
                    clean = prefix + enc[0][0] == list(self._tok(prompts[0])["input_ids"])
                    self._prefix_ids = (shared_prefix, prefix, clean)
            if not clean:
                prefix = []
        if not prefix:
            enc = split_encode(self._tok, flat_p, flat_c)
        owns: list[list[int]] = []
        cont_ids: list[list[list[int]]] = []
        k = 0
        for cs in conts:
            owns.append(enc[k][0])
            cont_ids.append([c for _, c in enc[k:k + len(cs)]])
            k += len(cs)
        # A prompt must keep at least one token of its own after the prefix: its last one predicts the options.
        if any(len(prefix) + len(own) > self._cfg.max_prompt_tokens or not own for own in owns):
            owns, prefix = [self._truncate(prefix + own) for own in owns], []
        return prefix, owns, cont_ids

    def _prefix_tokens(self, text: str) -> list[int]:
        if self._prefix_ids[0] != text:
            self._prefix_ids = (text, list(self._tok(text)["input_ids"]), None)
        return self._prefix_ids[1]

    def _prefix_cache(self, prefix: list[int], rows: int):
        """A fresh ``rows``-row copy of the prefix's KV cache, computing the prefix only when it changed."""
        import torch

        key = tuple(prefix)
        if self._prefix_kv is None or self._prefix_kv[0] != key:
            ids = torch.tensor([prefix], dtype=torch.long, device=self._device)
            out = self._model(input_ids=ids, use_cache=True, logits_to_keep=1)
            self._prefix_kv = (key, getattr(out, self._cache_arg))
            self._stats["prefix_tokens_saved"] += len(prefix) * (rows - 1)
        else:
            self._stats["prefix_reuses"] += 1
            self._stats["prefix_tokens_saved"] += len(prefix) * rows
        # Copy before expanding: reorder_cache replaces the layers' tensors, and the kept one must stay 1 row.
        cache = copy.deepcopy(self._prefix_kv[1])
        cache.reorder_cache(torch.zeros(rows, dtype=torch.long, device=self._device))
        return cache

    def _score_packed(self, prefix: list[int], owns: list[list[int]], cont_ids: list[list[list[int]]]):
        """One forward pass per batch: row i holds prompt i's own tokens followed by all its options
        (``packed_options``: each option sees the prefix from the cache, its prompt and its own earlier tokens,
        never the other options). Per query that is (prompt tail + sum of option lengths) tokens of compute, and
        no KV cache is copied per option."""
        import torch

        packed = pack_options(len(prefix), owns, cont_ids, self._pad_id)
        dev, mask = self._device, packed.additive_mask(self._model.dtype)
        with torch.inference_mode():  # grad mode is per thread: set it in the worker thread itself
            past = self._prefix_cache(prefix, len(owns)) if prefix else None
            logits = self._model(input_ids=packed.ids.to(dev), attention_mask=mask.to(dev),
                                 position_ids=packed.positions.to(dev), use_cache=bool(prefix),
                                 logits_to_keep=packed.keep, **{self._cache_arg: past}).logits
            sums = packed.option_logprob_sums(logits)
        return sums.cpu().tolist(), packed.counts

    def _left_padded(self, seqs: list[list[int]]):
        return left_padded(seqs, self._pad_id)

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]):
        """One left-padded forward over every full (prompt + option) sequence; for models that cannot take
        the packed path."""
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
        out = {k: float(v) for k, v in self._stats.items()}
        out.update(model_calls=float(self._calls.calls), merged_calls=float(self._calls.merged))
        return out

    # -- LoRA adapters (llmrl.adapter) -----------------------------------------------------------------------

    def adapter_base_hash(self) -> str:
        """The config hash an adapter must have been trained on to load here."""
        return model_base_hash(self._model)

    async def prepare_adapter(self, version: AdapterVersion) -> None:
        """Read and check a version's weights off the model thread (the model keeps serving meanwhile)."""
        await asyncio.to_thread(check_adapter_files, version.path)

    async def activate_adapter(self, version: AdapterVersion) -> None:
        """Inject ``version`` and make it the active adapter, between two model calls; the previous one is
        dropped. On failure the previous adapter stays active."""
        await self._calls(("adapter", version.name), [version.path])

    def _switch_adapter(self, name: str, path: str) -> str:
        try:
            return self._adapters.switch(name, path)
        finally:
            # The kept prefix KV cache was computed with the previous adapter's weights.
            self._prefix_kv = None

    async def close(self) -> None:
        # Joining waits for a model call in progress; off the event loop, so other coroutines go on meanwhile.
        await asyncio.to_thread(self._calls.close)
