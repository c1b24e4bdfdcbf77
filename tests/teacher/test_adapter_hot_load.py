"""Hot-loading LoRA adapter versions into a running teacher service without a restart.

hf: the real backend on the tiny LM, with a real adapter fine-tuned by the trainer (in-process). vLLM: the
backend against the stand-in engine of test_vllm_backend (the real engine needs CUDA). OpenAI: against the
protocol fake of test_openai_backend (it is not vLLM; it checks the requests the backend sends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil

import pytest
from test_openai_backend import _cfg, server  # noqa: F401 - the protocol fake fixture
from test_vllm_backend import StandInEngine, _stand_in_backend

from llmrl.adapter.trainer import AdapterTrainer
from llmrl.adapter.versions import MANIFEST, latest_adapter
from llmrl.config import AdapterConfig, FeedbackConfig, HFConfig, TeacherConfig
from llmrl.feedback.actor import FeedbackService
from llmrl.messages import AdviceOutcome, EpisodeSummary, TeacherQuery
from llmrl.teacher.backends.hf import HFBackend
from llmrl.teacher.backends.openai_backend import OpenAIBackend
from llmrl.teacher.service import TeacherService

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
STATES = [f"Agent sees <key>, holds <nothing>. Agent is at row {i} column {j}." for i in range(3) for j in range(3)]
GOOD = OPTIONS[1]


@pytest.fixture(scope="module")
def trained(tiny_lm_dir, tmp_path_factory):
    """(feedback service, run folder, v1): a LoRA the trainer fine-tuned on "go to key, pick up key" successes."""
    run = tmp_path_factory.mktemp("run")
    fb = FeedbackService(FeedbackConfig(credit="episode", publish_every=1), "Open the door.", max_pairs=100)
    fb.record([EpisodeSummary("minigrid", "SimpleDoorKey", True, 1.0, 9,
                              (AdviceOutcome(s, GOOD, 2, 2, 1.0, OPTIONS),)) for s in STATES])
    cfg = AdapterConfig(enabled=True, r=4, alpha=8, lr=5e-2, epochs=10, batch_size=4, heldout_frac=0.3, dropout=0.0)
    trainer = AdapterTrainer(cfg, tiny_lm_dir, str(run), fb, autostart=False)
    trainer.poll_once()
    assert trainer.train_now() == "accepted"
    return fb, run, latest_adapter(run)


def service(tiny_lm_dir, fb) -> TeacherService:
    svc = TeacherService(TeacherConfig(backend="hf", hf=HFConfig(model=tiny_lm_dir)),
                         backend=HFBackend(HFConfig(model=tiny_lm_dir)), adapter_base_model=tiny_lm_dir)
    svc.set_bank(fb.snapshot())
    return svc


def query(state: str = STATES[0]) -> TeacherQuery:
    return TeacherQuery("minigrid", "SimpleDoorKey", state, OPTIONS)


def p_good(advice) -> float:
    return advice.probs[advice.options.index(GOOD)]


def test_hot_loaded_adapter_moves_advice_toward_the_plan_that_worked(tiny_lm_dir, trained):
    fb, _, v1 = trained

    async def go():
        svc = service(tiny_lm_dir, fb)
        before = await svc.advise([query(s) for s in STATES])
        cached = await svc.advise([query()])
        assert await svc.load_adapter(v1)
        after = await svc.advise([query(s) for s in STATES])
        stats = svc.stats()
        await svc.close()
        return before, cached, after, stats

    before, cached, after, stats = asyncio.run(go())
    assert all(a.adapter_version == 0 for a in before) and cached[0].source == "cache"
    assert all(a.adapter_version == 1 and a.source != "cache" for a in after)  # new version: cache missed
    gains = [p_good(a) - p_good(b) for a, b in zip(after, before)]
    assert min(gains) > 0.02, gains  # every state, consistently (0.035 measured)
    assert (stats.adapter_version, stats.adapter_loads, stats.adapter_load_failures) == (1, 1, 0)
    assert stats.llm_calls == 2 * len(STATES)


def test_advice_keeps_flowing_from_the_previous_version_during_a_switch(tiny_lm_dir, trained):
    fb, _, v1 = trained

    async def go():
        svc = service(tiny_lm_dir, fb)
        release = asyncio.Event()
        real_prepare = svc.backend.prepare_adapter

        async def slow_prepare(version):
            await release.wait()  # a large adapter still loading
            await real_prepare(version)

        svc.backend.prepare_adapter = slow_prepare
        switch = asyncio.ensure_future(svc.load_adapter(v1))
        await asyncio.sleep(0)
        during = await svc.advise([query(STATES[3])])  # a new state, answered while the switch is under way
        release.set()
        assert await switch
        after = await svc.advise([query(STATES[3])])
        await svc.close()
        return during, after

    during, after = asyncio.run(go())
    assert during[0].has_advice and during[0].adapter_version == 0
    assert after[0].adapter_version == 1 and p_good(after[0]) > p_good(during[0])


def test_an_adapter_of_another_base_model_is_refused_and_the_previous_one_stays(tiny_lm_dir, trained, tmp_path,
                                                                               caplog):
    fb, _, v1 = trained
    other = tmp_path / "v2"
    shutil.copytree(v1.path, other)
    manifest = json.loads((other / MANIFEST).read_text())
    manifest.update(version=2, base_hash="0123456789abcdef", base_model="some-other-model")
    (other / MANIFEST).write_text(json.dumps(manifest))
    foreign = dataclasses.replace(v1, version=2, path=str(other), base_hash="0123456789abcdef",
                                  base_model="some-other-model")
    broken = tmp_path / "v3"
    shutil.copytree(v1.path, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    unloadable = dataclasses.replace(v1, version=3, path=str(broken))

    async def go():
        svc = service(tiny_lm_dir, fb)
        assert await svc.load_adapter(v1)
        with caplog.at_level(logging.WARNING, logger="llmrl.teacher.adapter_slot"):
            assert not await svc.load_adapter(foreign)
            assert not await svc.load_adapter(unloadable)
        advice = await svc.advise([query()])
        stats = svc.stats()
        await svc.close()
        return advice, stats

    advice, stats = asyncio.run(go())
    assert (stats.adapter_version, stats.adapter_loads, stats.adapter_load_failures) == (1, 1, 2)
    assert advice[0].has_advice and advice[0].adapter_version == 1
    refusals = [r.getMessage() for r in caplog.records]
    assert any("refused" in m and "some-other-model" in m for m in refusals)
    assert any("not loadable" in m for m in refusals)
    assert all("\n" not in m for m in refusals)


def test_vllm_serves_the_hot_loaded_adapter_with_a_lora_request_per_query(tiny_lm_dir, trained):
    _, _, v1 = trained
    engine = StandInEngine()
    backend = _stand_in_backend(tiny_lm_dir, engine, selection="choice", enable_lora=True)

    async def go():
        await backend.advise([query()], FANOUT_BANK)
        await backend.prepare_adapter(v1)
        await backend.advise([query()], FANOUT_BANK)  # prepared, not active yet: still the base model
        await backend.activate_adapter(v1)
        await backend.advise([query()], FANOUT_BANK)

    asyncio.run(go())
    assert engine.loras == [(v1.name, 1, v1.path)]
    assert [r[3] for r in engine.requests] == [None, None, (v1.name, 1, v1.path)]


def test_openai_loads_through_the_runtime_lora_endpoint_and_then_asks_for_it(server, trained):  # noqa: F811
    _, _, v1 = trained
    backend = OpenAIBackend(_cfg(server.base_url))

    async def go():
        await backend.prepare_adapter(v1)
        await backend.activate_adapter(v1)
        await backend.advise([query()], FANOUT_BANK)
        server.statuses = [404]
        with pytest.raises(Exception, match="HTTP 404"):
            await backend.prepare_adapter(dataclasses.replace(v1, version=2))
        await backend.close()

    asyncio.run(go())
    (path, _, body), (cpath, _, cbody) = server.requests[:2]
    assert path == "/v1/load_lora_adapter" and body == {"lora_name": v1.name, "lora_path": v1.path}
    assert cpath == "/v1/completions" and cbody["model"] == v1.name


FANOUT_BANK = __import__("llmrl.messages", fromlist=["PromptBankSnapshot"]).PromptBankSnapshot(
    version=2, task_description="Open the door.")
