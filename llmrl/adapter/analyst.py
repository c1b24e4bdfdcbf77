"""``adapter.role=analyst`` (AdaRefiner's shape): a small LM writes a short analysis of the student's situation,
and the analysis goes into the prompt of the teacher LM, which stays frozen.

The analyst reads (``analyst_prompt``) the state, the admissible sub-goals, the query's context (Crafter: the
sub-goals the student completed recently) and the prompt bank's comprehension score (how closely the student's
recent actions matched its sub-goals, ``feedback.comprehension``), and writes one line (``Analyst.analyse``:
batched generation of ``adapter.analysis_tokens`` tokens, greedy unless ``adapter.analysis_temperature`` > 0,
of which the first non-empty line is kept). The teacher service puts it into the teacher's prompt as an
``Analysis:`` line (``prompting.query_body``) and sends it along with the advice, so it reaches the feedback
actor with the outcome. An analysis that preceded a sub-goal the student then completed (under
``feedback.credit``) becomes a training pair (analyst prompt -> that analysis, ``llmrl.feedback.pairs``), and
the adapter trainer fine-tunes the analyst's LoRA on them: the analyst learns to write the analyses after
which the student succeeded.

``Analyst`` has the adapter interface of the ``hf`` backend (``adapter_base_hash``, ``prepare_adapter``,
``activate_adapter``), so the teacher service's ``AdapterSlot`` hot-loads the trainer's versions into it
instead of into the teacher. Its model calls run on one worker thread (``merging.CallMerger``), off the
teacher actor's event loop, and the LoRA switch runs there between two calls (``peft_adapters``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Hashable, Sequence
from typing import Any

from llmrl.config import AdapterConfig
from llmrl.messages import AdapterVersion, PromptBankSnapshot, TeacherQuery

log = logging.getLogger(__name__)

INSTRUCTION = ("Analyse the agent's situation in one sentence: what it has understood so far, what it should do "
               "next, and why.")
ANSWER_CUE = "Analysis:"
# Most prompts one merged analyst call takes (a padded generate batch grows with prompts x their width).
MAX_PROMPTS_PER_CALL = 32


def analyst_prompt(query: TeacherQuery, bank: PromptBankSnapshot) -> str:
    """What the analyst reads about one query (the user's message under a chat template; no answer cue)."""
    from llmrl.teacher.prompting import option_word

    lines = [INSTRUCTION, f"State: {query.state_text.strip()}"]
    if query.context.strip():
        lines.append(f"Context: {query.context.strip()}")
    if query.options:
        lines.append(f"Allowed {option_word(query.family)[1]}: " + "; ".join(query.options) + ".")
    if bank.comprehension is not None:
        lines.append(f"Comprehension score: {bank.comprehension:.2f} (how closely the agent's recent actions "
                     "matched its sub-goals; 1 is perfect).")
    return "\n".join(lines)


def analysis_continuation(analysis: str) -> str:
    """The text the analyst generates after its prompt, as the trainer's target: ``" <analysis>\\n"``."""
    return f" {analysis.strip()}\n"


def clean_analysis(text: str) -> str:
    """The first non-empty line of a generated text, stripped ("" when there is none)."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


class AnalystPrompts:
    """Renders ``analyst_prompt`` for one tokenizer: through its chat template when it has one (the user's message,
    then the generation prompt), else as plain text; both end with the answer cue. The analyst (serving) and
    the adapter trainer (fine-tuning) render with the same tokenizer, so they read the same text."""

    def __init__(self, tokenizer) -> None:
        self._render = None
        if getattr(tokenizer, "chat_template", None):
            self._render = functools.partial(tokenizer.apply_chat_template, tokenize=False, add_generation_prompt=True)

    def build(self, query: TeacherQuery, bank: PromptBankSnapshot) -> str:
        body = analyst_prompt(query, bank)
        if self._render is None:
            return f"{body}\n{ANSWER_CUE}"
        return self._render([{"role": "user", "content": body}]) + ANSWER_CUE


class Analyst:
    """The analyst LM of one teacher replica: ``model`` (``adapter.base_model``, or the teacher's model) frozen,
    plus the LoRA version in service."""

    def __init__(self, model: str, cfg: AdapterConfig, max_prompt_tokens: int = 1024, torch_threads: int = 0) -> None:
        import torch

        from llmrl.teacher.backends.hf import load_frozen_lm, pad_id_of
        from llmrl.teacher.backends.merging import CallMerger
        from llmrl.teacher.backends.peft_adapters import PeftAdapters

        self.name = f"analyst:{model}"
        self._cfg = cfg
        self._max_prompt_tokens = max_prompt_tokens
        self._tok, self._model = load_frozen_lm(model, "float32", cfg.analyst_device, model_key="adapter.base_model",
                                                device_key="adapter.analyst_device")
        self._device = torch.device(cfg.analyst_device)
        if torch_threads > 0 and self._device.type == "cpu":
            torch.set_num_threads(torch_threads)
        self._pad_id = pad_id_of(self._tok)
        self.prompts = AnalystPrompts(self._tok)
        self._adapters = PeftAdapters(self._model)
        self._calls = CallMerger(self._model_call, MAX_PROMPTS_PER_CALL, name="analyst")

    async def analyse(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[str]:
        """One analysis per query ("" where the analyst wrote nothing usable)."""
        prompts = [self.prompts.build(q, bank) for q in queries]
        return [clean_analysis(t) for t in await self._calls(("generate",), prompts)]

    def _model_call(self, key: Hashable, items: list) -> list:
        if key[0] == "adapter":
            return [self._adapters.switch(key[1], path) for path in items]
        return self._generate(items)

    def _generate(self, prompts: list[str]) -> list[str]:
        import torch

        from llmrl.teacher.backends.hf import left_padded

        limit = self._max_prompt_tokens
        ids, mask, _ = left_padded([ids[-limit:] for ids in self._tok(prompts)["input_ids"]], self._pad_id)
        kwargs: dict = dict(max_new_tokens=self._cfg.analysis_tokens, pad_token_id=self._pad_id,
                            eos_token_id=self._tok.eos_token_id)
        if self._cfg.analysis_temperature > 0:
            kwargs.update(do_sample=True, temperature=self._cfg.analysis_temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        with torch.inference_mode():
            out = self._model.generate(input_ids=ids.to(self._device), attention_mask=mask.to(self._device), **kwargs)
        return self._tok.batch_decode(out[:, ids.shape[1]:].cpu(), skip_special_tokens=True)

    # -- the adapter interface of the hf backend (teacher.adapter_slot.AdapterSlot) ---------------------------

    def adapter_base_hash(self) -> str:
        from llmrl.teacher.backends.peft_adapters import model_base_hash

        return model_base_hash(self._model)

    async def prepare_adapter(self, version: AdapterVersion) -> None:
        """Read and check a version's files off the model thread (analyses go on meanwhile)."""
        import asyncio

        from llmrl.teacher.backends.peft_adapters import check_adapter_files

        await asyncio.to_thread(check_adapter_files, version.path)

    async def activate_adapter(self, version: AdapterVersion) -> None:
        await self._calls(("adapter", version.name), [version.path])

    def stats(self) -> dict[str, float]:
        return {"model_calls": float(self._calls.calls), "merged_calls": float(self._calls.merged)}

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self._calls.close)


class AnalystStage:
    """What the teacher service runs before its frozen teacher: the analyst's analysis of each query, cached per
    (analyst version, analyst prompt) in a bounded LRU, and counted. An analysis the analyst cannot give (empty
    text, a failed call) is counted and logged once, and that query goes to the teacher without one."""

    def __init__(self, lm: Any, cache_size: int) -> None:
        from llmrl.teacher.cache import LRUCache

        self.lm = lm  # an ``Analyst`` (or anything with its ``analyse``)
        self._cache: LRUCache[str] = LRUCache(cache_size)
        self.counts = {"analyst_calls": 0, "analyses": 0, "analyses_empty": 0, "analyst_failures": 0}
        self._warned: set[str] = set()

    async def add_analyses(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot,
                           slot: Any) -> tuple[list[TeacherQuery], int]:
        """The queries with their analyses, and the analyst version (of ``slot``, an ``AdapterSlot``) that wrote
        them: the slot holds a version switch back until the analyses are written."""

        async def analyse() -> list[str]:
            version = slot.number  # fixed while this call is in flight
            keys = [(version, analyst_prompt(q, bank)) for q in queries]
            texts = [self._cache.get(k) for k in keys]
            todo = [i for i, t in enumerate(texts) if t is None]
            if todo:
                written = await self._write([queries[i] for i in todo], bank)
                for i, text in zip(todo, written):
                    texts[i] = text
                    if text is not None:  # an empty one too: under greedy decoding it would come again
                        self._cache.put(keys[i], text)
            return [t or "" for t in texts]

        texts, version = await slot.call(analyse)
        return [dataclasses.replace(q, analysis=t) if t else q for q, t in zip(queries, texts)], version

    async def _write(self, queries: list[TeacherQuery], bank: PromptBankSnapshot) -> list[str | None]:
        """The analyst LM's analyses, counted once answered, so that at every poll analyst_calls = analyses +
        analyses_empty + analyst_failures; None for each query of a failed call (not cached: it may be transient)."""
        try:
            written: list[str | None] = list(await self.lm.analyse(queries, bank))
        except Exception as exc:  # noqa: BLE001 - a failed analyst must not take advice down
            self.counts["analyst_calls"] += len(queries)
            self.counts["analyst_failures"] += len(queries)
            self._warn_once("failed", f"the analyst failed ({' '.join(str(exc).split()) or type(exc).__name__}); "
                                      "queries go to the teacher without an analysis (teacher_analyst_failures)")
            return [None] * len(queries)
        self.counts["analyst_calls"] += len(queries)
        for text in written:
            self.counts["analyses" if text else "analyses_empty"] += 1
        if not all(written):
            self._warn_once("empty", "the analyst wrote an empty analysis; such queries go to the teacher without "
                                     "one (counted: teacher_analyses_empty)")
        return written

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(message)
