"""adapter.role=analyst in a running teacher service: the analyst's analysis reaches the frozen teacher's prompt and
the advice, answers are cached per analyst version, a LoRA the trainer fine-tuned on the analyses that preceded
completed sub-goals is hot-loaded into the analyst (not the teacher) and changes what it writes, versions of the
other role are refused, and an analyst that writes nothing or fails is a counted fallback.

The real hf backend and the real analyst LM (both the tiny local LM), the real trainer and feedback service, in
process. Only the last test replaces the analyst LM, with one that writes nothing or raises: the real one
cannot be made to do either on demand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging

import pytest

from llmrl.adapter.trainer import AdapterTrainer
from llmrl.adapter.versions import latest_adapter
from llmrl.config import AdapterConfig, FeedbackConfig, HFConfig, TeacherConfig
from llmrl.feedback.actor import FeedbackService
from llmrl.messages import AdviceOutcome, EpisodeSummary, TeacherQuery
from llmrl.teacher.backends.hf import HFBackend
from llmrl.teacher.prompting import build_prompt
from llmrl.teacher.service import TeacherService

OPTIONS = ("collect wood", "place table", "explore")
STATES = [f"You see tree, grass. Nearby: tree {i} steps north. Inventory: wood {j}."
          for i in range(3) for j in range(3)]
CONTEXT = "Recently completed: collect wood."
# What the student completed its sub-goal after (in the tiny LM's vocabulary: one word token, so that a few
# optimizer steps on its random weights visibly move its greedy text).
TARGET = "collect_wood collect_wood"
ANALYST = AdapterConfig(enabled=True, role="analyst", r=4, alpha=32, lr=1e-1, epochs=10, batch_size=4,
                        heldout_frac=0.3, dropout=0.0, analysis_tokens=8)


def query(state: str = STATES[0]) -> TeacherQuery:
    return TeacherQuery("crafter", "Crafter", state, OPTIONS, CONTEXT)


def service(tiny_lm_dir, fb: FeedbackService, analyst: AdapterConfig | None = ANALYST, log_dir: str = ""
            ) -> TeacherService:
    svc = TeacherService(TeacherConfig(backend="hf", hf=HFConfig(model=tiny_lm_dir)),
                         backend=HFBackend(HFConfig(model=tiny_lm_dir)), adapter_base_model=tiny_lm_dir,
                         analyst=analyst, log_dir=log_dir)
    svc.set_bank(fb.snapshot())
    return svc


def spy_on_teacher(svc: TeacherService) -> list[TeacherQuery]:
    """Record the queries the (real) teacher backend is asked."""
    seen: list[TeacherQuery] = []
    real = svc.backend.advise

    async def advise(queries, bank):
        seen.extend(queries)
        return await real(queries, bank)

    svc.backend.advise = advise
    return seen


def weights_hash(model) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def trained(tiny_lm_dir, tmp_path_factory):
    """(feedback service, v1): the analyst's LoRA, fine-tuned by the trainer on analyses before completed sub-goals."""
    run = tmp_path_factory.mktemp("run")
    fb = FeedbackService(FeedbackConfig(credit="plan", publish_every=1), "You are playing Crafter.", max_pairs=100,
                         pair_role="analyst")
    fb.record([EpisodeSummary("crafter", "Crafter", False, 0.0, 30,
                              (AdviceOutcome(s, "collect wood", 1, 1, 1.0, OPTIONS, CONTEXT, TARGET),
                               AdviceOutcome(s, "place table", 0, 1, 1.0, OPTIONS, CONTEXT, "not completed")))
               for s in STATES])
    trainer = AdapterTrainer(ANALYST, tiny_lm_dir, str(run), fb, autostart=False)
    trainer.poll_once()
    assert trainer.train_now() == "accepted"
    version = latest_adapter(run)
    assert version.role == "analyst" and version.pairs_used < len(STATES)  # only completed sub-goals, held-out split
    return fb, version


def test_the_analysis_goes_into_the_frozen_teachers_prompt_and_comes_back_with_the_advice(tiny_lm_dir, trained,
                                                                                         tmp_path):
    from llmrl.teacher.teacher_log import read_log

    fb, _ = trained

    async def go():
        svc = service(tiny_lm_dir, fb, log_dir=str(tmp_path))
        asked = spy_on_teacher(svc)
        first = await svc.advise([query(s) for s in STATES[:3]])
        again = await svc.advise([query(STATES[0])])
        stats = svc.stats()
        assert svc.flush_log()
        await svc.close()
        return svc, asked, first, again, stats

    svc, asked, first, again, stats = asyncio.run(go())
    # The teacher log records what the teacher read.
    assert sorted(r.analysis for r in read_log(tmp_path).records) == sorted(a.analysis for a in first)
    assert all(a.has_advice and a.analysis for a in first)  # the tiny LM writes something (":::"), never ""
    assert [q.analysis for q in asked] == [a.analysis for a in first]
    for q in asked:
        assert f"Analysis: {q.analysis}" in build_prompt(q, svc.bank)
    assert again[0].source == "cache" and again[0].analysis == first[0].analysis  # a cache hit keeps it
    assert (stats.analyst_calls, stats.analyses, stats.analyses_empty, stats.analyst_failures) == (3, 3, 0, 0)
    assert dict(stats.extra)["analyst/model_calls"] >= 1


def test_a_hot_loaded_analyst_lora_changes_the_analysis_and_leaves_the_teacher_untouched(tiny_lm_dir, trained):
    fb, v1 = trained

    async def go():
        svc = service(tiny_lm_dir, fb)
        teacher_before = weights_hash(svc.backend._model)
        before = await svc.advise([query(s) for s in STATES])
        assert await svc.load_adapter(v1)
        after = await svc.advise([query(s) for s in STATES])
        stats = svc.stats()
        teacher_after = weights_hash(svc.backend._model)
        teacher_lora = [n for n, _ in svc.backend._model.named_parameters() if "lora" in n]
        analyst_lora = [n for n, _ in svc.analyst.lm._model.named_parameters() if "lora" in n]
        await svc.close()
        return before, after, stats, teacher_before == teacher_after, teacher_lora, analyst_lora

    before, after, stats, teacher_same, teacher_lora, analyst_lora = asyncio.run(go())
    assert all(a.adapter_version == 0 for a in before)
    assert all(a.adapter_version == 1 and a.source != "cache" for a in after)  # the cache key has the analyst version
    assert not any("collect_wood" in a.analysis for a in before)
    assert all("collect_wood" in a.analysis for a in after), [a.analysis for a in after]
    assert teacher_same and teacher_lora == [] and analyst_lora  # the LoRA is on the analyst only
    assert (stats.adapter_version, stats.adapter_loads, stats.adapter_load_failures) == (1, 1, 0)
    assert stats.analyst_calls == 2 * len(STATES)


def test_versions_of_the_other_role_are_refused_on_both_sides(tiny_lm_dir, trained, caplog):
    fb, v1 = trained
    teacher_version = dataclasses.replace(v1, role="teacher")

    async def go():
        analyst_svc = service(tiny_lm_dir, fb)
        teacher_svc = service(tiny_lm_dir, fb, analyst=None)
        refused = (await analyst_svc.load_adapter(teacher_version), await teacher_svc.load_adapter(v1))
        stats = (analyst_svc.stats(), teacher_svc.stats())
        await analyst_svc.close()
        await teacher_svc.close()
        return refused, stats

    with caplog.at_level(logging.WARNING):
        refused, stats = asyncio.run(go())
    assert refused == (False, False)
    assert all((s.adapter_version, s.adapter_load_failures) == (0, 1) for s in stats)
    assert "was trained for adapter.role=analyst" in caplog.text and "adapter.role=teacher" in caplog.text


class _Mute:
    """Stands in for the analyst LM: writes nothing, or raises (the real one cannot be made to on demand)."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def analyse(self, queries, bank):
        if self.fail:
            raise RuntimeError("analyst out of memory")
        return [""] * len(queries)

    def stats(self) -> dict[str, float]:
        return {}


@pytest.mark.parametrize("fail", [False, True], ids=["empty", "raises"])
def test_an_analyst_that_writes_nothing_or_fails_is_a_counted_fallback(tiny_lm_dir, trained, fail, caplog):
    fb, _ = trained

    async def go():
        svc = service(tiny_lm_dir, fb)
        await svc.analyst.lm.close()
        svc.analyst.lm = _Mute(fail)
        asked = spy_on_teacher(svc)
        answers = await svc.advise([query(s) for s in STATES[:2]])
        stats = svc.stats()
        await svc.backend.close()
        return asked, answers, stats

    with caplog.at_level(logging.WARNING):
        asked, answers, stats = asyncio.run(go())
    assert all(a.has_advice and a.analysis == "" for a in answers)  # the teacher still advises, without one
    assert all(q.analysis == "" and "Analysis:" not in build_prompt(q, fb.snapshot()) for q in asked)
    expected = (2, 0, 0, 2) if fail else (2, 0, 2, 0)
    assert (stats.analyst_calls, stats.analyses, stats.analyses_empty, stats.analyst_failures) == expected
    assert ("the analyst failed" if fail else "empty analysis") in caplog.text


def test_an_analyst_model_that_will_not_load_is_one_line_naming_the_key(tiny_lm_dir, tmp_path):
    from llmrl.teacher.backends import BackendError

    with pytest.raises(BackendError) as err:
        TeacherService(TeacherConfig(backend="hf", hf=HFConfig(model=tiny_lm_dir)),
                       backend=HFBackend(HFConfig(model=tiny_lm_dir)), adapter_base_model=str(tmp_path / "none"),
                       analyst=ANALYST)
    assert str(err.value).startswith("adapter.base_model: cannot load") and "\n" not in str(err.value)


def test_the_measured_teacher_of_an_analyst_run_has_its_analyst_and_adapter(tiny_lm_dir, trained):
    """bench teacher-quality / teacher-learns build the run's teacher from its config: with role=analyst the
    checkpoint's analyst version goes on the analyst; a teacher-role config refuses it (one-line error)."""
    from llmrl.adapter.versions import AdapterError
    from llmrl.bench.teacher_quality import local_source
    from llmrl.config import load_config

    fb, v1 = trained
    lm = ["teacher.backend=hf", f"teacher.hf.model={tiny_lm_dir}", "adapter.enabled=true", "env.name=Crafter"]
    source = local_source(load_config(None, [*lm, "adapter.role=analyst"]), fb.snapshot(), v1)
    try:
        advice = source.advise(query())
        assert advice.adapter_version == 1 and "collect_wood" in advice.analysis
    finally:
        source.close()
    with pytest.raises(AdapterError, match="refused"):
        local_source(load_config(None, lm), fb.snapshot(), v1)
