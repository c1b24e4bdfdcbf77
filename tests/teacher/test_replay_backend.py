"""The replay backend: exact hits by prompt hash, counted misses, the fallback, and start-up errors.

Logs are written by the real TeacherService over the real scripted planner (real MiniGrid state texts)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from llmrl.config import ReplayConfig, TeacherConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError, make_backend
from llmrl.teacher.service import TeacherService
from llmrl.teacher.teacher_log import read_log

BANK = PromptBankSnapshot(version=2, task_description="Open the door.")
KEY_STATE = "Agent sees <key>, holds <nothing>."
OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")


def q(state: str = KEY_STATE, options=OPTIONS) -> TeacherQuery:
    return TeacherQuery(family="minigrid", task="SimpleDoorKey", state_text=state, options=options)


def write_log(folder, queries, bank=BANK, **cfg) -> list:
    """Answers of a scripted teacher (by default error_rate 1: every answer is a wrong plan), logged to folder."""
    settings = {"max_wait_ms": 1.0, "error_rate": 1.0, "seed": 7, **cfg}
    svc = TeacherService(TeacherConfig(**settings), log_dir=str(folder))
    svc.set_bank(bank)
    answers = asyncio.run(svc.advise(queries))
    assert svc.flush_log()
    asyncio.run(svc.close())
    return answers


def replay(log, fallback="none"):
    # Another teacher.seed than the logged run's: a scripted fallback would draw other errors.
    return make_backend(TeacherConfig(backend="replay", seed=99, replay=ReplayConfig(str(log), fallback)))


def test_replay_answers_exactly_what_was_logged(tmp_path):
    original = write_log(tmp_path, [q()])
    assert original[0].best() != "go to key, pick up key"  # the scripted error draw was a wrong plan
    backend = replay(tmp_path / "teacher_log.jsonl")
    (a,) = asyncio.run(backend.advise([q()], BANK))
    assert (a.options, a.probs, a.source, a.bank_version) == (original[0].options, original[0].probs, "replay", 2)
    assert backend.stats()["replay_hits"] == 1 and backend.stats()["replay_misses"] == 0


def test_the_newest_answer_for_a_prompt_wins_across_rotated_files(tmp_path):
    write_log(tmp_path, [q()], log_max_mb=0.0001)  # every record rotates the file
    write_log(tmp_path, [q()], error_rate=0.0, log_max_mb=0.0001)  # a later answer to the same prompt: correct
    assert len(read_log(tmp_path).files) >= 2
    (a,) = asyncio.run(replay(tmp_path).advise([q()], BANK))
    assert a.best() == "go to key, pick up key"


def test_a_miss_is_counted_and_answered_by_no_advice_or_the_fallback(tmp_path):
    write_log(tmp_path, [q()])
    other_bank = dataclasses.replace(BANK, version=3, feedback_lines=("plan X succeeded 3/4 times",))
    none = replay(tmp_path)
    (a,) = asyncio.run(none.advise([q()], other_bank))  # same state, other prompt bank: another prompt
    assert not a.has_advice and a.reason == "replay_miss"
    assert none.stats()["replay_misses"] == 1 and none.stats()["replay_fallbacks"] == 0
    scripted = replay(tmp_path, fallback="scripted")
    hit, miss = asyncio.run(scripted.advise([q(), q("Agent sees <door>, holds <key>.")], BANK))
    assert hit.source == "replay" and miss.source == "scripted"
    assert miss.best() == "go to door, open door"  # the fallback's own answer (error_rate 0 here)
    assert scripted.stats() == {"replay_records": 1.0, "replay_hits": 1.0, "replay_misses": 1.0,
                                "replay_fallbacks": 1.0}


def test_outages_in_the_log_are_not_replayed(tmp_path):
    from llmrl.messages import Advice
    from llmrl.teacher.identity import BackendIdentity
    from llmrl.teacher.teacher_log import TeacherLog

    log = TeacherLog(tmp_path, 0, "id", BackendIdentity("openai", "m", "name:x", ()), 60.0, 1.0, 10)
    log.record([q()], [Advice.none(OPTIONS, reason="teacher_unavailable")], BANK, 1.0)
    log.record([q("Agent sees <door>, holds <key>.")], [Advice.none(OPTIONS, reason="unparseable")], BANK, 1.0)
    log.close()
    backend = replay(tmp_path)
    outage, unparseable = asyncio.run(backend.advise([q(), q("Agent sees <door>, holds <key>.")], BANK))
    assert outage.reason == "replay_miss" and unparseable.reason == "unparseable" and unparseable.source == "replay"


def test_a_missing_or_empty_log_is_a_one_line_error_at_start_up(tmp_path):
    with pytest.raises(BackendError, match="teacher.replay.log: cannot read") as err:
        replay(tmp_path / "nope.jsonl")
    assert "\n" not in str(err.value)
    (tmp_path / "teacher_log.jsonl").write_text("not json\n")
    with pytest.raises(BackendError, match="holds no teacher answers"):
        replay(tmp_path / "teacher_log.jsonl")


def test_the_replay_run_logs_its_own_answers_with_hits_and_misses_told_apart(tmp_path):
    write_log(tmp_path / "first", [q()])
    cfg = TeacherConfig(backend="replay", max_wait_ms=1.0, replay=ReplayConfig(str(tmp_path / "first"), "scripted"))
    svc = TeacherService(cfg, log_dir=str(tmp_path / "second"))
    svc.set_bank(BANK)
    asyncio.run(svc.advise([q(), q("Agent sees <door>, holds <key>.")]))
    assert svc.flush_log()
    assert dict(svc.stats().extra)["backend/replay_misses"] == 1.0
    sources = sorted(r.source for r in read_log(tmp_path / "second").records)
    assert sources == ["replay", "scripted"]
    assert {r.backend for r in read_log(tmp_path / "second").records} == {"replay"}
