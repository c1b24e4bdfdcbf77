"""Every vLLM call that ``llmrl/teacher/backends/vllm_backend.py`` makes, checked against the real classes.

These are API contract tests, never engine tests: nothing here starts ``AsyncLLM`` (that needs CUDA). They
construct what the backend constructs (engine arguments for every config combination, sampling parameters in
both selection modes, structured-output choice, LoRA requests, token prompts), bind the backend's calls to the
real signatures of ``AsyncLLM.from_engine_args``, ``generate`` and ``add_lora``, read real ``RequestOutput``s
with the backend's own parsers, and finally run ``VLLMBackend.advise`` on an engine stand-in whose every call
is bound to ``AsyncLLM``'s real signature and answered with real vLLM output objects. A vLLM upgrade that
breaks one of these calls fails the test whose message names the call.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import typing
from dataclasses import asdict

import pytest

from llmrl.config import VLLMConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends.vllm_backend import (
    VLLMBackend,
    choice_params,
    continuation_logprob,
    engine_args_dict,
    samples_from_output,
    score_params,
)

pytestmark = pytest.mark.vllm_contract

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
COMBINATIONS = [
    VLLMConfig(model="org/model", enable_lora=lora, tensor_parallel_size=tp, enable_prefix_caching=prefix,
               enforce_eager=eager, dtype=dtype)
    for lora, tp, prefix, eager, dtype in itertools.product((False, True), (1, 2), (True, False), (False, True),
                                                            ("auto", "bfloat16"))
]


def call(name: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or a failure that names the backend's call and what vLLM said."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any error is a broken contract
        pytest.fail(f"vLLM contract broken: {name}: {type(exc).__name__}: {exc}")


def bind(name: str, fn, *args, **kwargs) -> None:
    """The call would be accepted by ``fn``'s real signature (checked without calling it)."""
    call(f"{name} (signature {inspect.signature(fn)})", inspect.signature(fn).bind, *args, **kwargs)


def cfg_id(cfg: VLLMConfig) -> str:
    return (f"lora={cfg.enable_lora}-tp={cfg.tensor_parallel_size}-prefix={cfg.enable_prefix_caching}-"
            f"eager={cfg.enforce_eager}-{cfg.dtype}")


@pytest.mark.parametrize("cfg", COMBINATIONS, ids=cfg_id)
def test_async_engine_args_take_engine_args_dict(vllm_api, cfg):
    _, AsyncEngineArgs, AsyncLLM = vllm_api
    args = engine_args_dict(cfg)
    engine_args = call(f"AsyncEngineArgs(**engine_args_dict(cfg)) for {cfg_id(cfg)}", AsyncEngineArgs, **args)
    for key, value in args.items():  # each field is still called what the backend calls it, with that meaning
        assert getattr(engine_args, key) == value, f"AsyncEngineArgs.{key}: set {value!r}, reads back " \
                                                   f"{getattr(engine_args, key)!r}"
    bind("AsyncLLM.from_engine_args(AsyncEngineArgs(...))", AsyncLLM.from_engine_args, engine_args)


def test_choice_mode_sampling_params(vllm_api):
    types, _, _ = vllm_api
    cfg = VLLMConfig(num_samples=7, temperature=0.8, max_tokens=24)
    params = call("SamplingParams(structured_outputs=StructuredOutputsParams(choice=...), ...) (choice mode)",
                  choice_params, types, cfg, OPTIONS)
    assert (params.n, params.temperature, params.max_tokens) == (7, 0.8, 24)
    assert isinstance(params.structured_outputs, types.StructuredOutputsParams)
    assert list(params.structured_outputs.choice) == list(OPTIONS), "StructuredOutputsParams.choice"
    assert params.output_kind == types.final_only, "SamplingParams.output_kind=RequestOutputKind.FINAL_ONLY"


def test_score_mode_sampling_params(vllm_api):
    types, _, _ = vllm_api
    params = call("SamplingParams(prompt_logprobs=1, max_tokens=1, ...) (score mode)", score_params, types)
    assert (params.n, params.max_tokens, params.prompt_logprobs, params.temperature) == (1, 1, 1, 0.0)
    assert params.output_kind == types.final_only


def test_lora_request_and_tokens_prompt(vllm_api):
    types, _, _ = vllm_api
    lora = call("LoRARequest(name, int_id, path)", types.LoRARequest, "adapter", 3, "/adapters/a")
    assert (lora.lora_name, lora.lora_int_id, lora.lora_path) == ("adapter", 3, "/adapters/a")
    fields = typing.get_type_hints(types.TokensPrompt)
    assert "prompt_token_ids" in fields, f"TokensPrompt(prompt_token_ids=...): fields are {sorted(fields)}"
    assert call("TokensPrompt(prompt_token_ids=ids)", types.TokensPrompt, prompt_token_ids=[1, 2])["prompt_token_ids"] == [1, 2]


def test_async_llm_method_signatures(vllm_api):
    types, _, AsyncLLM = vllm_api
    prompt = types.TokensPrompt(prompt_token_ids=[1, 2, 3])
    lora = types.LoRARequest("adapter", 1, "/adapters/a")
    params = score_params(types)
    assert inspect.isasyncgenfunction(AsyncLLM.generate), "AsyncLLM.generate: no longer an async generator " \
                                                          "(the backend iterates it with async for)"
    bind("AsyncLLM.generate(prompt, sampling_params, request_id, lora_request=...)", AsyncLLM.generate,
         object(), prompt, params, "llmrl-0", lora_request=lora)
    assert inspect.iscoroutinefunction(AsyncLLM.add_lora), "AsyncLLM.add_lora: no longer awaitable"
    bind("AsyncLLM.add_lora(LoRARequest)", AsyncLLM.add_lora, object(), lora)
    assert isinstance(inspect.getattr_static(AsyncLLM, "errored"), property), "AsyncLLM.errored: not a property"
    bind("AsyncLLM.shutdown()", AsyncLLM.shutdown, object())


def _outputs():
    from vllm.logprobs import Logprob
    from vllm.outputs import CompletionOutput, RequestOutput

    return RequestOutput, CompletionOutput, Logprob


def request_output(prompt_ids, texts=(), prompt_logprobs=None):
    """A finished ``RequestOutput`` built with vLLM's own classes, as the engine returns it."""
    RequestOutput, CompletionOutput, _ = _outputs()
    completions = [call("CompletionOutput(index, text, token_ids, cumulative_logprob, logprobs)", CompletionOutput,
                        index=i, text=t, token_ids=[7], cumulative_logprob=None, logprobs=None)
                   for i, t in enumerate(texts)]
    return call("RequestOutput(request_id, prompt, prompt_token_ids, prompt_logprobs, outputs, finished)",
                RequestOutput, request_id="r", prompt=None, prompt_token_ids=list(prompt_ids),
                prompt_logprobs=prompt_logprobs, outputs=completions, finished=True)


def test_request_output_is_read_as_the_backend_reads_it(vllm_api):
    _, _, Logprob = _outputs()
    bind("RequestOutput(..., prompt_logprobs=...)", _outputs()[0], request_id="r", prompt=None, prompt_token_ids=[],
         prompt_logprobs=None, outputs=[], finished=True)
    assert samples_from_output(request_output([1], texts=("explore", "explore"))) == ["explore", "explore"]
    ids = [5, 6, 7]
    lp = [None, {6: Logprob(logprob=-1.0, rank=1)}, {7: Logprob(logprob=-0.5, rank=1), 9: Logprob(logprob=-0.1)}]
    out = request_output(ids, prompt_logprobs=lp)
    assert continuation_logprob(out.prompt_logprobs, ids, 1) == (-1.5, 2), "RequestOutput.prompt_logprobs"


class SignatureCheckedEngine:
    """Stands in for a started ``AsyncLLM`` (which needs CUDA): every call the backend makes is first bound to
    the real ``AsyncLLM`` method's signature, and answered with real vLLM output objects."""

    def __init__(self, AsyncLLM):
        self.real = AsyncLLM
        self.errored = False
        self.requests = []
        self.broken: list[str] = []  # the backend turns a failed request into "no advice": keep the reason

    def _bind(self, name: str, method, *args, **kwargs) -> None:
        try:
            inspect.signature(method).bind(self, *args, **kwargs)
        except TypeError as exc:
            self.broken.append(f"vLLM contract broken: {name} (signature {inspect.signature(method)}): {exc}")
            raise

    async def generate(self, prompt, sampling_params, request_id, **kwargs):
        self._bind("AsyncLLM.generate", self.real.generate, prompt, sampling_params, request_id, **kwargs)
        self.requests.append((prompt, sampling_params, kwargs))
        _, _, Logprob = _outputs()
        ids = prompt["prompt_token_ids"]
        if sampling_params.structured_outputs is not None:
            choices = list(sampling_params.structured_outputs.choice)
            yield request_output(ids, texts=[choices[1]] * sampling_params.n)
        else:
            yield request_output(ids, prompt_logprobs=[None] + [{t: Logprob(logprob=-0.1)} for t in ids[1:]])

    async def add_lora(self, lora_request):
        self._bind("AsyncLLM.add_lora", self.real.add_lora, lora_request)
        return True


class WordTokenizer:
    """Enough of a tokenizer for the backend's prompt handling (one id per character)."""

    def __call__(self, texts, add_special_tokens=True):
        if isinstance(texts, str):
            return {"input_ids": [ord(c) % 1000 for c in texts]}
        return {"input_ids": [[ord(c) % 1000 for c in t] for t in texts]}


@pytest.mark.parametrize("selection", ["choice", "score"])
def test_backend_requests_bind_to_the_real_async_llm(vllm_api, selection):
    types, _, AsyncLLM = vllm_api
    engine = SignatureCheckedEngine(AsyncLLM)
    backend = VLLMBackend.__new__(VLLMBackend)
    backend._bind(VLLMConfig(model="stand-in", selection=selection, num_samples=4, enable_lora=True), engine,
                  WordTokenizer(), types)
    query = TeacherQuery(family="minigrid", task="SimpleDoorKey", state_text="Agent sees <key>.", options=OPTIONS,
                         adapter="a")
    asyncio.run(backend.add_adapter("a", "/adapters/a"))
    advice = asyncio.run(backend.advise([query], PromptBankSnapshot(version=2, task_description="Open the door.")))[0]
    assert not engine.broken, engine.broken[0]
    assert advice.has_advice and advice.bank_version == 2, asdict(advice)
    if selection == "choice":
        assert advice.best() == OPTIONS[1]
    assert all(kw["lora_request"].lora_name == "a" for _, _, kw in engine.requests)
