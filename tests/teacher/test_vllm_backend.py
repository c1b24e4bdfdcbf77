"""VLLMBackend.

Two kinds of tests, kept apart on purpose:

* The pure helpers (engine arguments, sampling arguments, truncation, reading engine outputs, adapter ids)
  run everywhere; where they read an engine output, the input is a plain stand-in object with the same
  attributes as vLLM's ``RequestOutput`` - these are unit tests of our parsing, not tests of vLLM.
* The request fan-out of ``VLLMBackend.advise`` (one request per query or per (query, option), all in flight
  together; adapters; per-request errors) runs on a ``StandInEngine`` defined below. It is not vLLM and
  says nothing about vLLM's behaviour; it checks what our code submits and how it reads the answers.
* ``@pytest.mark.gpu`` tests build the tiny LM and run a real ``AsyncLLM`` on it. They are skipped unless
  CUDA and vllm are both importable (the vLLM wheel is CUDA-only).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
from types import SimpleNamespace

import pytest

from llmrl.config import HFConfig, TeacherConfig, VLLMConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, make_backend
from llmrl.teacher.backends.vllm_backend import (
    VLLM_MISSING,
    AdapterRegistry,
    VLLMBackend,
    VLLMTypes,
    choice_sampling_kwargs,
    continuation_logprob,
    engine_args_dict,
    samples_from_output,
    score_sampling_kwargs,
    truncate_left,
)

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")


def test_engine_args_single_gpu():
    args = engine_args_dict(VLLMConfig(model="m", dtype="bfloat16", gpu_memory_utilization=0.5, max_model_len=1024,
                                       enforce_eager=True))
    assert args == {"model": "m", "dtype": "bfloat16", "gpu_memory_utilization": 0.5, "max_model_len": 1024,
                    "tensor_parallel_size": 1, "enable_prefix_caching": True, "enforce_eager": True,
                    "enable_lora": False}


def test_engine_args_tp_and_lora():
    args = engine_args_dict(VLLMConfig(model="m", tensor_parallel_size=2, enable_lora=True, max_loras=2,
                                       max_lora_rank=16))
    assert args["distributed_executor_backend"] == "ray" and args["tensor_parallel_size"] == 2
    assert args["enable_lora"] and args["max_loras"] == 2 and args["max_lora_rank"] == 16


def test_sampling_kwargs():
    kw = choice_sampling_kwargs(VLLMConfig(num_samples=10, temperature=0.8, max_tokens=24), OPTIONS)
    assert kw == {"n": 10, "temperature": 0.8, "max_tokens": 24, "structured_outputs": {"choice": list(OPTIONS)}}
    score = score_sampling_kwargs()
    assert score["prompt_logprobs"] >= 1 and score["max_tokens"] == 1


def test_truncate_left():
    assert truncate_left([1, 2, 3, 4], 2) == [3, 4]
    assert truncate_left([1, 2], 5) == [1, 2]


def test_samples_from_output():
    out = SimpleNamespace(outputs=[SimpleNamespace(text="explore"), SimpleNamespace(text="go to key, pick up key")])
    assert samples_from_output(out) == ["explore", "go to key, pick up key"]
    assert samples_from_output(None) == []


def test_continuation_logprob():
    lp = lambda x: SimpleNamespace(logprob=x)  # noqa: E731 - same attribute as vllm.logprobs.Logprob
    ids = [2, 10, 11, 12, 13]
    prompt_logprobs = [None, {10: lp(-1.0)}, {11: lp(-2.0), 99: lp(-0.1)}, {12: lp(-0.5), 7: lp(-0.2)}, {13: lp(-0.25)}]
    assert continuation_logprob(prompt_logprobs, ids, 3) == (-0.75, 2)
    assert continuation_logprob(prompt_logprobs, ids, 1) == (-3.75, 4)
    s, n = continuation_logprob([None, {}, {}, {}, {}], ids, 3)
    assert s == -math.inf and n == 2
    assert continuation_logprob(None, ids, 3)[0] == -math.inf


def test_adapter_registry():
    reg = AdapterRegistry()
    assert reg.lookup("a") is None
    assert reg.register("a", "/p1") == ("a", 1, "/p1")
    assert reg.register("a", "/p1") == ("a", 1, "/p1")  # same weights: same id
    assert reg.register("b", "/p2") == ("b", 2, "/p2")
    assert reg.register("a", "/p3") == ("a", 3, "/p3")  # new weights under an old name: new id
    assert reg.lookup("a") == ("a", 3, "/p3") and reg.names() == ["a", "b"]
    with pytest.raises(ValueError):
        reg.register("", "/p")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_is_clear_backend_error():
    with pytest.raises(BackendError) as err:
        make_backend(TeacherConfig(backend="vllm", vllm=VLLMConfig(model="m")))
    assert str(err.value) == VLLM_MISSING


class StandInEngine:
    """NOT vLLM. Records what ``VLLMBackend`` submits and how many requests are in flight at once, and answers
    with ``RequestOutput``-shaped objects: choice requests echo the first allowed choice; prompt-logprob
    requests give token t the log-prob ``-t / 100`` so the expected scores are easy to recompute."""

    def __init__(self, fail_on_prompt_containing: str = ""):
        self.requests: list[tuple] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.loras: list[tuple] = []
        self.errored = False
        self.fail_on = fail_on_prompt_containing
        self.tokenizer = None

    async def generate(self, prompt, params, request_id, lora_request=None):
        self.requests.append((prompt, params, request_id, lora_request))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        ids = prompt["prompt_token_ids"]
        if self.fail_on and self.fail_on in self.tokenizer.decode(ids):
            raise RuntimeError("request failed")
        if params.get("prompt_logprobs"):
            logprobs = [None] + [{t: SimpleNamespace(logprob=-t / 100)} for t in ids[1:]]
            yield SimpleNamespace(outputs=[SimpleNamespace(text="x")], prompt_logprobs=logprobs, finished=True)
        else:
            choice = params["structured_outputs"]["choice"][0]
            yield SimpleNamespace(outputs=[SimpleNamespace(text=choice)] * params["n"], finished=True)

    async def add_lora(self, request):
        self.loras.append(request)
        return True

    def shutdown(self):
        pass


def _stand_in_backend(tiny_lm_dir, engine, **cfg):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    engine.tokenizer = tok
    backend = VLLMBackend.__new__(VLLMBackend)
    types = VLLMTypes(SamplingParams=lambda **kw: kw, TokensPrompt=lambda **kw: kw, LoRARequest=lambda *a: a,
                      StructuredOutputsParams=lambda **kw: kw, final_only="FINAL_ONLY")
    backend._bind(VLLMConfig(model="stand-in", **cfg), engine, tok, types)
    return backend


QUERIES_FANOUT = [
    TeacherQuery("minigrid", "SimpleDoorKey", f"Agent sees <key>, holds <nothing>. {i}", OPTIONS) for i in range(5)
]
FANOUT_BANK = PromptBankSnapshot(version=2, task_description="Open the door.")


def test_choice_fanout_all_requests_in_flight_together(tiny_lm_dir):
    engine = StandInEngine()
    backend = _stand_in_backend(tiny_lm_dir, engine, selection="choice", num_samples=6, max_model_len=64,
                                max_tokens=8)
    out = asyncio.run(backend.advise(QUERIES_FANOUT, FANOUT_BANK))
    assert engine.max_in_flight == len(QUERIES_FANOUT)  # never serialised
    assert len({r[2] for r in engine.requests}) == len(engine.requests)  # unique request ids
    for prompt, params, _, lora in engine.requests:
        assert params["n"] == 6 and params["output_kind"] == "FINAL_ONLY" and lora is None
        assert params["structured_outputs"] == {"choice": list(OPTIONS)}
        assert len(prompt["prompt_token_ids"]) <= 64 - 8  # left-truncated to leave room for the answer
    assert all(a.probs == (1.0, 0.0, 0.0) and a.source == "vllm:stand-in" and a.bank_version == 2 for a in out)


def test_score_fanout_and_scores(tiny_lm_dir):
    from llmrl.teacher.plan_choice import candidate_continuations, distribution_from_scores, split_encode
    from llmrl.teacher.prompting import build_prompt

    engine = StandInEngine()
    backend = _stand_in_backend(tiny_lm_dir, engine, selection="score", temperature=1.0)
    out = asyncio.run(backend.advise(QUERIES_FANOUT[:2], FANOUT_BANK))
    assert engine.max_in_flight == 2 * len(OPTIONS)  # every (query, option) pair at once
    assert all(r[1]["prompt_logprobs"] >= 1 and r[1]["max_tokens"] == 1 for r in engine.requests)
    tok = engine.tokenizer
    for q, advice in zip(QUERIES_FANOUT[:2], out):
        pairs = split_encode(tok, [build_prompt(q, FANOUT_BANK)] * 3, candidate_continuations(q.options))
        sums = [sum(-t / 100 for t in c) for _, c in pairs]
        expected = distribution_from_scores(sums, [len(c) for _, c in pairs], 1.0, True)
        assert advice.probs == pytest.approx(expected)


def test_adapters_and_per_request_errors(tiny_lm_dir):
    engine = StandInEngine(fail_on_prompt_containing="lava")
    backend = _stand_in_backend(tiny_lm_dir, engine, selection="choice", enable_lora=True)

    async def go():
        assert await backend.add_adapter("refined", "/adapters/v1") == 1
        queries = [
            TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>.", OPTIONS, adapter="refined"),
            TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>.", OPTIONS, adapter="unknown"),
            TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <lava>.", OPTIONS),
        ]
        return await backend.advise(queries, FANOUT_BANK)

    out = asyncio.run(go())
    assert engine.loras == [("refined", 1, "/adapters/v1")]
    assert engine.requests[0][3] == ("refined", 1, "/adapters/v1")
    assert out[0].has_advice
    assert out[1].reason == "unknown_adapter"
    assert out[2].reason == "engine_error"  # one failed request does not fail the batch
    assert backend.stats()["engine_errors"] == 1


def test_add_adapter_needs_enable_lora(tiny_lm_dir):
    backend = _stand_in_backend(tiny_lm_dir, StandInEngine(), enable_lora=False)
    with pytest.raises(BackendError, match="enable_lora"):
        asyncio.run(backend.add_adapter("a", "/p"))


def _gpu_ready() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


gpu = pytest.mark.skipif(not _gpu_ready(), reason="needs CUDA and vllm")

BANK = PromptBankSnapshot(version=1, task_description="In a locked 2D grid room, the agent must open the door.")
QUERIES = [
    TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>, holds <nothing>.", OPTIONS),
    TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <door>, holds <key>.", OPTIONS[::-1]),
    TeacherQuery("crafter", "Crafter", "You see tree, grass.", ("collect wood", "place table")),
]


def _engine_cfg(path, **kw):
    base = dict(model=path, dtype="float16", gpu_memory_utilization=0.3, max_model_len=1024, enforce_eager=True,
                num_samples=8, temperature=1.0, max_tokens=16)
    base.update(kw)
    return VLLMConfig(**base)


@pytest.mark.gpu
@gpu
def test_real_engine_choice_mode(tiny_lm_dir):
    from llmrl.teacher.backends.vllm_backend import VLLMBackend

    async def go():
        backend = VLLMBackend(_engine_cfg(tiny_lm_dir, selection="choice"))
        try:
            return await backend.advise(QUERIES * 4, BANK), backend.stats()
        finally:
            await backend.close()

    out, stats = asyncio.run(go())
    assert len(out) == 12
    for advice, q in zip(out, QUERIES * 4):
        assert advice.options == q.options and advice.has_advice
        assert math.isclose(sum(advice.probs), 1.0, abs_tol=1e-6)
        # Structured choice decoding: every sample is admissible.
        assert advice.invalid_outputs == 0
    assert stats["engine_requests"] == 12


@pytest.mark.gpu
@gpu
def test_real_engine_score_mode_matches_hf(tiny_lm_dir):
    from llmrl.teacher.backends.hf import HFBackend
    from llmrl.teacher.backends.vllm_backend import VLLMBackend

    async def go():
        backend = VLLMBackend(_engine_cfg(tiny_lm_dir, selection="score"))
        try:
            return await backend.advise(QUERIES, BANK)
        finally:
            await backend.close()

    out = asyncio.run(go())
    ref = asyncio.run(HFBackend(HFConfig(model=tiny_lm_dir)).advise(QUERIES, BANK))
    for a, b in zip(out, ref):
        assert a.has_advice and a.probs == pytest.approx(b.probs, abs=2e-2)


@pytest.mark.gpu
@gpu
def test_real_engine_lora_adapter(tiny_lm_dir, tmp_path):
    """A LoRA adapter with zero B matrices changes nothing: per-request adapter answers like the base model."""
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    from llmrl.teacher.backends.vllm_backend import VLLMBackend

    cfg = AutoConfig.from_pretrained(tiny_lm_dir)
    rank, q_out = 8, cfg.num_attention_heads * cfg.head_dim
    tensors = {}
    for layer in range(cfg.num_hidden_layers):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
        tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, cfg.hidden_size) * 0.01
        tensors[f"{prefix}.lora_B.weight"] = torch.zeros(q_out, rank)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj"], "bias": "none",
        "base_model_name_or_path": tiny_lm_dir, "task_type": "CAUSAL_LM", "lora_dropout": 0.0,
    }))

    async def go():
        backend = VLLMBackend(_engine_cfg(tiny_lm_dir, selection="score", dtype="float16", enable_lora=True,
                                          max_loras=2, max_lora_rank=8))
        try:
            await backend.add_adapter("zero", str(adapter))
            with_adapter = [TeacherQuery(q.family, q.task, q.state_text, q.options, adapter="zero") for q in QUERIES]
            unknown = TeacherQuery("minigrid", "SimpleDoorKey", "x", OPTIONS, adapter="nope")
            return (await backend.advise(QUERIES, BANK), await backend.advise(with_adapter, BANK),
                    await backend.advise([unknown], BANK))
        finally:
            await backend.close()

    base, adapted, unknown = asyncio.run(go())
    for a, b in zip(base, adapted):
        assert a.probs == pytest.approx(b.probs, abs=1e-2)
    assert unknown[0].reason == "unknown_adapter"
