"""vLLM as teacher: an in-process ``AsyncLLM`` engine with continuous batching, prefix caching and LoRA.

``advise`` submits one ``engine.generate`` per query (per (query, option) pair when scoring) and awaits them
all together, so the engine's scheduler sees the whole batch at once and batches it with whatever other
batches are in flight; nothing is serialised here.

``teacher.vllm.selection``:

* ``choice``: ``num_samples`` samples per query under structured-output decoding restricted to the
  admissible options (``StructuredOutputsParams(choice=options)``), counted like LLM4Teach's repeated asking.
  Every sample is admissible by construction, so "invalid" only counts engine quirks.
* ``score``: the prompt log-probabilities of prompt + each candidate continuation (``prompt_logprobs``, one
  generated token) give the same log-likelihood scores as the hf backend's ``score`` mode. vLLM does not use
  the prefix cache for requests that ask for prompt log-probabilities, so this mode recomputes the shared
  prompt prefix per option.

LoRA (AdaRefiner fine-tunes its adapter LM between RL stages): ``await backend.add_adapter(name, path)``
registers an adapter with the running engine (a new path under an old name gets a new id, so vLLM loads the
new weights); a query whose ``adapter`` field names it is answered by it, ``""`` is the adapter in service.
The online adapter (``llmrl.adapter``) is hot-loaded the same way: ``prepare_adapter`` registers the new version
with the engine while requests go on with the previous one, ``activate_adapter`` makes it the one every
``""`` query is answered with (a ``LoRARequest`` per request).

vLLM is imported only when the backend is built. The pure parts (engine arguments, sampling arguments, prompt
truncation, reading outputs, adapter ids) are module functions tested without vLLM.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from llmrl.config import VLLMConfig
from llmrl.messages import AdapterVersion, Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, local_model, one_line
from llmrl.teacher.plan_choice import (
    candidate_continuations,
    distribution_from_samples,
    distribution_from_scores,
    split_encode,
    to_advice,
)
from llmrl.teacher.prompting import build_prompt

log = logging.getLogger(__name__)

VLLM_MISSING = "teacher.backend=vllm needs the optional extra: pip install 'llmrl[vllm]' (CUDA only)"


def engine_args_dict(cfg: VLLMConfig) -> dict[str, Any]:
    """Keyword arguments of ``AsyncEngineArgs`` for ``cfg``."""
    args: dict[str, Any] = {
        "model": cfg.model,
        "dtype": cfg.dtype,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "max_model_len": cfg.max_model_len,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "enable_prefix_caching": cfg.enable_prefix_caching,
        "enforce_eager": cfg.enforce_eager,
        "enable_lora": cfg.enable_lora,
    }
    if cfg.enable_lora:
        args["max_loras"] = cfg.max_loras
        args["max_lora_rank"] = cfg.max_lora_rank
    if cfg.tensor_parallel_size > 1:
        # Inside a Ray actor the TP workers must be Ray actors too (placement group of the replica).
        args["distributed_executor_backend"] = "ray"
    return args


def choice_sampling_kwargs(cfg: VLLMConfig, options: Sequence[str]) -> dict[str, Any]:
    """``SamplingParams`` keywords for choice mode; ``structured_outputs`` holds ``StructuredOutputsParams``'s."""
    return {
        "n": cfg.num_samples,
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
        "structured_outputs": {"choice": list(options)},
    }


def score_sampling_kwargs() -> dict[str, Any]:
    """``SamplingParams`` keywords for score mode: only the prompt's log-probs matter, one token is generated.

    ``prompt_logprobs=1`` (not 0, which some vLLM code paths read as "off"): each position then holds the
    actual prompt token's log-prob plus the top-1 alternative's.
    """
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 1}


def truncate_left(ids: Sequence[int], limit: int) -> list[int]:
    """The last ``limit`` token ids (the end of the prompt - state, options, answer cue - matters most)."""
    ids = list(ids)
    return ids[-limit:] if limit > 0 and len(ids) > limit else ids


def samples_from_output(output: Any) -> list[str]:
    """Texts of a finished ``RequestOutput``'s completions."""
    return [c.text for c in getattr(output, "outputs", None) or []]


def continuation_logprob(prompt_logprobs: Any, token_ids: Sequence[int], start: int) -> tuple[float, int]:
    """(sum of the log-probs of ``token_ids[start:]``, their count) from a ``RequestOutput.prompt_logprobs``.

    ``prompt_logprobs[i]`` maps token id -> Logprob for position i (None at position 0); vLLM always includes
    the actual prompt token. A missing entry makes the score -inf (that option then gets probability 0).
    """
    total, count = 0.0, 0
    if prompt_logprobs is None:
        return float("-inf"), 0
    for i in range(start, len(token_ids)):
        entry = prompt_logprobs[i] if i < len(prompt_logprobs) else None
        item = entry.get(token_ids[i]) if entry is not None else None
        if item is None:
            return float("-inf"), len(token_ids) - start
        total += float(getattr(item, "logprob", item))
        count += 1
    return total, count


class AdapterRegistry:
    """LoRA adapter name -> (int id, path). vLLM identifies adapters by int id and caches their weights by it,
    so re-registering a name with a new path takes a fresh id (the new weights are loaded, not the cached)."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[int, str]] = {}
        self._ids = itertools.count(1)  # vLLM reserves 0 for "no adapter"

    def register(self, name: str, path: str) -> tuple[str, int, str]:
        if not name:
            raise ValueError("adapter name must be non-empty ('' means the base model)")
        current = self._by_name.get(name)
        if current is not None and current[1] == path:
            return name, current[0], path
        int_id = next(self._ids)
        self._by_name[name] = (int_id, path)
        return name, int_id, path

    def lookup(self, name: str) -> tuple[str, int, str] | None:
        found = self._by_name.get(name)
        return None if found is None else (name, found[0], found[1])

    def names(self) -> list[str]:
        return sorted(self._by_name)


class VLLMTypes(NamedTuple):
    """The vLLM classes the backend builds requests with (imported only when the backend is built)."""

    SamplingParams: Any
    TokensPrompt: Any
    LoRARequest: Any
    StructuredOutputsParams: Any
    final_only: Any  # RequestOutputKind.FINAL_ONLY: one output per request, when it has finished


def import_vllm() -> tuple[VLLMTypes, Any, Any]:
    """The vLLM classes the backend uses: ``(VLLMTypes, AsyncEngineArgs, AsyncLLM)``; ImportError without vllm.

    Every vLLM name the backend touches is imported here and nowhere else, so tests/contract/ checks them all
    against the installed wheel (``.ci/vllm_contract``).
    """
    from vllm import SamplingParams, TokensPrompt
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
    from vllm.v1.engine.async_llm import AsyncLLM

    types = VLLMTypes(SamplingParams, TokensPrompt, LoRARequest, StructuredOutputsParams, RequestOutputKind.FINAL_ONLY)
    return types, AsyncEngineArgs, AsyncLLM


def choice_params(types: VLLMTypes, cfg: VLLMConfig, options: Sequence[str]) -> Any:
    """The ``SamplingParams`` of one choice-mode request."""
    kwargs = choice_sampling_kwargs(cfg, options)
    kwargs["structured_outputs"] = types.StructuredOutputsParams(**kwargs["structured_outputs"])
    return types.SamplingParams(output_kind=types.final_only, **kwargs)


def score_params(types: VLLMTypes) -> Any:
    """The ``SamplingParams`` of one score-mode request."""
    return types.SamplingParams(output_kind=types.final_only, **score_sampling_kwargs())


class VLLMBackend:
    """``PlanBackend`` over ``vllm.v1.engine.async_llm.AsyncLLM``."""

    def __init__(self, cfg: VLLMConfig):
        try:
            types, AsyncEngineArgs, AsyncLLM = import_vllm()
        except ImportError:
            raise BackendError(VLLM_MISSING) from None
        if not cfg.model:
            raise BackendError("teacher.vllm.model: empty; give a hub name or a local model folder")
        path = os.path.expanduser(local_model(cfg.model, "teacher.vllm.model"))
        try:
            from transformers import AutoTokenizer

            # Our own copy of the engine's tokenizer, so prompts can be truncated and split into
            # prompt/continuation token ids before submission.
            tokenizer = AutoTokenizer.from_pretrained(path)
            args = engine_args_dict(cfg)
            args["model"] = path
            engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        except Exception as e:  # noqa: BLE001 - any start-up failure becomes one clear line
            raise BackendError(f"teacher.vllm.model: cannot load '{cfg.model}': {one_line(e)}") from None
        self._bind(cfg, engine, tokenizer, types)

    def _bind(self, cfg: VLLMConfig, engine: Any, tokenizer: Any, types: VLLMTypes) -> None:
        """Everything but building the engine (split out so request fan-out can be tested on a stand-in)."""
        self._cfg = cfg
        self.name = f"vllm:{cfg.model}"
        self._engine = engine
        self._tok = tokenizer
        self._types = types
        # Same meaning as teacher.hf.length_normalize; VLLMConfig may not declare the field yet.
        self._length_normalize = cfg.length_normalize
        self._adapters = AdapterRegistry()
        self._active_adapter = ""  # the hot-loaded adapter "" queries are answered with ("" = base model)
        self._prefix = f"llmrl-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()
        self._stats = {"prompts": 0, "engine_requests": 0, "engine_errors": 0, "samples": 0,
                       "invalid_outputs": 0, "unknown_adapter": 0}

    async def add_adapter(self, name: str, path: str) -> int:
        """Register a LoRA adapter (a PEFT folder) under ``name``; returns its vLLM int id."""
        if not self._cfg.enable_lora:
            raise BackendError("teacher.vllm.enable_lora: must be true to add LoRA adapters")
        name, int_id, path = self._adapters.register(name, path)
        await self._engine.add_lora(self._types.LoRARequest(name, int_id, path))
        return int_id

    def adapter_base_hash(self) -> str:
        """The config hash an adapter must have been trained on to load here."""
        from llmrl.adapter.versions import model_config_hash

        return model_config_hash(self._cfg.model)

    async def prepare_adapter(self, version: AdapterVersion) -> None:
        """Register a version with the engine (it loads the weights while requests go on)."""
        await self.add_adapter(version.name, version.path)

    async def activate_adapter(self, version: AdapterVersion) -> None:
        """Answer every query that names no adapter with ``version`` from now on."""
        if self._adapters.lookup(version.name) is None:
            raise BackendError(f"adapter {version.name} was not prepared")
        self._active_adapter = version.name

    def _lora(self, adapter: str) -> Any:
        adapter = adapter or self._active_adapter
        if not adapter:
            return None
        found = self._adapters.lookup(adapter)
        return None if found is None else self._types.LoRARequest(*found)

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        if not queries:
            return []
        prompts = [build_prompt(q, bank) for q in queries]
        self._stats["prompts"] += len(queries)
        one = self._choice if self._cfg.selection == "choice" else self._score
        results = await asyncio.gather(*(one(q, p, bank.version) for q, p in zip(queries, prompts)),
                                       return_exceptions=True)
        out: list[Advice] = []
        failed: list[BaseException] = []
        for q, r in zip(queries, results):
            if isinstance(r, BaseException):
                if isinstance(r, asyncio.CancelledError) or self._engine.errored:
                    raise r  # a dead engine needs the actor restarted, not a silent no-advice
                failed.append(r)
                out.append(Advice.none(q.options, reason="engine_error", bank_version=bank.version))
            else:
                out.append(r)
        if failed:
            self._stats["engine_errors"] += len(failed)
            log.warning("vllm teacher: %d of %d requests failed (first: %s); those states get no advice",
                        len(failed), len(queries), one_line(failed[0]))
        return out

    async def _final(self, prompt_ids: list[int], params: Any, lora: Any) -> Any:
        self._stats["engine_requests"] += 1
        request_id = f"{self._prefix}-{next(self._counter)}"
        final = None
        async for output in self._engine.generate(self._types.TokensPrompt(prompt_token_ids=prompt_ids), params,
                                                  request_id, lora_request=lora):
            final = output
        return final

    def _check_adapter(self, query: TeacherQuery, version: int) -> tuple[Any, Advice | None]:
        lora = self._lora(query.adapter)
        if query.adapter and lora is None:
            self._stats["unknown_adapter"] += 1
            return None, Advice.none(query.options, reason="unknown_adapter", bank_version=version)
        return lora, None

    async def _choice(self, query: TeacherQuery, prompt: str, version: int) -> Advice:
        lora, refused = self._check_adapter(query, version)
        if refused is not None:
            return refused
        params = choice_params(self._types, self._cfg, query.options)
        ids = truncate_left(self._tok(prompt)["input_ids"], self._cfg.max_model_len - self._cfg.max_tokens)
        output = await self._final(ids, params, lora)
        samples = samples_from_output(output)
        probs, invalid = distribution_from_samples(samples, query.options)
        self._stats["samples"] += len(samples)
        self._stats["invalid_outputs"] += invalid
        return to_advice(query.options, probs, self.name, version, invalid)

    async def _score(self, query: TeacherQuery, prompt: str, version: int) -> Advice:
        lora, refused = self._check_adapter(query, version)
        if refused is not None:
            return refused
        params = score_params(self._types)
        conts = candidate_continuations(query.options)
        pairs = split_encode(self._tok, [prompt] * len(conts), conts)
        seqs = []
        for p, c in pairs:
            p = truncate_left(p, self._cfg.max_model_len - len(c) - 1)
            seqs.append((p + c, len(p)))
        outputs = await asyncio.gather(*(self._final(ids, params, lora) for ids, _ in seqs))
        sums, counts = [], []
        for (ids, start), output in zip(seqs, outputs):
            s, n = continuation_logprob(getattr(output, "prompt_logprobs", None), ids, start)
            sums.append(s)
            counts.append(n)
        probs = distribution_from_scores(sums, counts, self._cfg.temperature, self._length_normalize)
        return to_advice(query.options, probs, self.name, version)

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def close(self) -> None:
        self._engine.shutdown()
