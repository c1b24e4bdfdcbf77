"""The teacher log: its record, the writer's flush and rotation, and logging from the real TeacherService.

The service tests use a fake backend that answers the first option (the log is under test, not a planner)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from llmrl.config import ConfigError, HFConfig, TeacherConfig, load_config
from llmrl.messages import AdapterVersion, Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.identity import BackendIdentity, backend_identity, weights_hash
from llmrl.teacher.prompting import build_prompt
from llmrl.teacher.service import TeacherService
from llmrl.teacher.teacher_log import (
    LOG_FORMAT,
    LogWriter,
    TeacherLog,
    TeacherLogRecord,
    log_files,
    prompt_hash,
    read_log,
)

BANK = PromptBankSnapshot(version=3, task_description="Open the door.")


def q(text: str, options=("explore", "go to key, pick up key"), adapter: str = "") -> TeacherQuery:
    return TeacherQuery(family="minigrid", task="SimpleDoorKey", state_text=text, options=options, adapter=adapter)


def record(state: str = "s", t: float = 1.0, probs=(0.25, 0.75), **kw) -> TeacherLogRecord:
    fields = dict(time=t, replica=0, instance_id="abc", backend="hf", model_id="m", weights_hash="sha256:00",
                  adapter="", adapter_version=2, bank_version=3, prompt_hash=prompt_hash(q(state), BANK),
                  family="minigrid", task="SimpleDoorKey", state_text=state, context="",
                  options=("explore", "go to key, pick up key"), probs=probs, reason="", invalid_outputs=1,
                  source="hf:m", decoding=(("selection", "score"), ("temperature", 1.0)), latency_s=0.5,
                  batch_size=4)
    fields.update(kw)
    return TeacherLogRecord(**fields)


class FirstOption:
    name = "fake"

    async def advise(self, queries, bank):
        return [Advice(q.options, (1.0,) + (0.0,) * (len(q.options) - 1), bank.version, "fake") for q in queries]

    async def close(self):
        pass


def test_record_round_trips_through_json_and_refuses_newer_formats():
    r = record()
    back = TeacherLogRecord.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.format == LOG_FORMAT
    assert back.top_option() == "go to key, pick up key"
    assert record(probs=()).top_option() is None
    with pytest.raises(ValueError, match="newer"):
        TeacherLogRecord.from_dict({**r.to_dict(), "format": LOG_FORMAT + 1})
    incomplete = r.to_dict()
    del incomplete["probs"]
    with pytest.raises(ValueError, match="probs"):
        TeacherLogRecord.from_dict(incomplete)
    # A record written before the analyst (adapter.role=analyst) existed has no analysis: it still reads.
    older = record(analysis="Collect wood first.").to_dict()
    del older["analysis"]
    assert TeacherLogRecord.from_dict(older).analysis == ""


def test_prompt_hash_is_the_sha256_of_the_canonical_prompt():
    import hashlib

    assert prompt_hash(q("s"), BANK) == hashlib.sha256(build_prompt(q("s"), BANK).encode()).hexdigest()
    # The bank is part of the prompt: another bank is another key.
    assert prompt_hash(q("s"), BANK) != prompt_hash(q("s"), PromptBankSnapshot(version=4, task_description="x"))


def test_writer_rotates_by_size_and_readers_see_every_file_in_order(tmp_path):
    writer = LogWriter(tmp_path / "teacher_log.jsonl", flush_s=60.0, max_bytes=2000, queue_size=1000)
    for i in range(30):
        writer.put([record(f"state {i}", t=float(i))], 1)
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "teacher_log.1.jsonl" in names and "teacher_log.2.jsonl" in names and "teacher_log.jsonl" in names
    assert all(p.stat().st_size < 2000 + 1000 for p in tmp_path.iterdir())
    assert writer.rotations == len(names) - 1 and writer.written == 30
    contents = read_log(tmp_path / "teacher_log.jsonl")
    assert [r.state_text for r in contents.records] == [f"state {i}" for i in range(30)]
    assert contents.corrupt_lines == 0 and contents.files[-1].name == "teacher_log.jsonl"
    renamed = tmp_path / "shared-by-a-colleague.jsonl"
    renamed.write_bytes((tmp_path / "teacher_log.1.jsonl").read_bytes())
    assert log_files(renamed) == [renamed]  # a file under another name is read alone


def test_writer_flushes_on_its_interval_without_being_closed(tmp_path):
    writer = LogWriter(tmp_path / "teacher_log.jsonl", flush_s=0.05, max_bytes=1 << 20, queue_size=10)
    writer.put([record()], 1)
    # No close and no explicit flush: the interval alone must get it to disk. Poll; a hang fails via the loop bound.
    for _ in range(400):
        if (tmp_path / "teacher_log.jsonl").exists() and read_log(tmp_path).records:
            break
        time.sleep(0.025)
    assert len(read_log(tmp_path).records) == 1
    writer.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    import threading

    gate = threading.Event()

    def slow_build(item):
        gate.wait(10)
        return item

    writer = LogWriter(tmp_path / "teacher_log.jsonl", flush_s=60.0, max_bytes=1 << 20, queue_size=2, build=slow_build)
    for i in range(10):  # the writer holds one item, the queue two; the rest are dropped at once
        writer.put([record(f"s{i}")], 1)
    assert writer.dropped >= 7
    gate.set()
    writer.close()
    assert writer.written + writer.dropped == 10


def test_a_line_cut_by_a_crash_is_skipped_and_the_next_writer_starts_a_fresh_line(tmp_path):
    path = tmp_path / "teacher_log.jsonl"
    path.write_text(json.dumps(record("before").to_dict()) + "\n" + '{"time": 2.0, "replica"')
    writer = LogWriter(path, flush_s=60.0, max_bytes=1 << 20, queue_size=10)
    writer.put([record("after", t=3.0)], 1)
    writer.close()
    contents = read_log(path)
    assert [r.state_text for r in contents.records] == ["before", "after"] and contents.corrupt_lines == 1


def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path):
    # A real crash: a child process logs, flushes once, logs more, and is SIGKILLed before the next flush.
    script = textwrap.dedent(f"""
        import dataclasses, json, time
        from pathlib import Path
        from llmrl.teacher.teacher_log import LogWriter, TeacherLogRecord
        base = TeacherLogRecord.from_dict(json.loads({json.dumps(json.dumps(record().to_dict()))}))
        w = LogWriter(Path({str(tmp_path)!r}) / "teacher_log.jsonl", flush_s=3600.0, max_bytes=1 << 20, queue_size=100)
        for i in range(5):
            w.put([dataclasses.replace(base, state_text=f"flushed {{i}}")], 1)
        w.flush()
        w.put([dataclasses.replace(base, state_text="after the flush")], 1)
        print("ready", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    states = [r.state_text for r in read_log(tmp_path).records]
    assert states[:5] == [f"flushed {i}" for i in range(5)]  # everything up to the last flush survived


def test_service_logs_every_backend_answer_once_with_its_identity(tmp_path):
    cfg = TeacherConfig(max_wait_ms=1.0, log_flush_s=60.0)
    svc = TeacherService(cfg, backend=FirstOption(), replica=1, log_dir=str(tmp_path))
    svc.set_bank(BANK)
    # As if adapter version 5 were in service: the log records the version the answers were produced with.
    svc.adapters.version = AdapterVersion(5, "/nowhere", "model-x", "h", 1.0, 8)
    svc._teacher_log.identity = BackendIdentity("fake", "model-x", "sha256:ab", (("temperature", 0.5),))

    async def main():
        await svc.advise([q("s1"), q("s2")])
        await svc.advise([q("s1")])  # a cache hit: not logged again
        await svc.advise([q("s3", adapter="lora-a")])

    asyncio.run(main())
    assert svc.flush_log()
    (path,) = log_files(tmp_path)
    assert path.name == "teacher_log.replica1.jsonl"
    records = read_log(tmp_path).records
    assert sorted(r.state_text for r in records) == ["s1", "s2", "s3"]
    r3 = next(r for r in records if r.state_text == "s3")
    assert (r3.backend, r3.model_id, r3.weights_hash, dict(r3.decoding)) == ("fake", "model-x", "sha256:ab",
                                                                              {"temperature": 0.5})
    assert (r3.adapter, r3.adapter_version, r3.bank_version, r3.replica) == ("lora-a", 5, 3, 1)
    assert r3.prompt_hash == prompt_hash(q("s3", adapter="lora-a"), BANK)
    assert r3.probs == (1.0, 0.0) and r3.source == "fake" and r3.instance_id == svc.instance_id
    assert dict(svc.stats().extra)["log/written"] == 3.0
    asyncio.run(svc.close())


def test_log_off_or_no_run_folder_writes_nothing(tmp_path):
    svc = TeacherService(TeacherConfig(log=False), backend=FirstOption(), log_dir=str(tmp_path))
    asyncio.run(svc.advise([q("s")]))
    assert svc.flush_log() and not list(tmp_path.iterdir())
    assert TeacherService(TeacherConfig(), backend=FirstOption())._teacher_log is None


def test_identity_hashes_weight_files_fully_or_by_their_headers(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}" + b"\x01" * 100)
    full = weights_hash(tmp_path, max_full_mb=1.0)
    meta = weights_hash(tmp_path, max_full_mb=0.0)
    assert full.startswith("sha256:") and meta.startswith("meta:")
    (tmp_path / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}" + b"\x02" * 100)
    assert weights_hash(tmp_path, 1.0) != full  # same size, other weights
    assert weights_hash(tmp_path / "nothing", 1.0) == ""
    hf = backend_identity(TeacherConfig(backend="hf", hf=HFConfig(model=str(tmp_path))))
    assert hf.weights_hash == weights_hash(tmp_path, 2048.0) and dict(hf.decoding)["selection"] == "score"
    assert "device" not in dict(hf.decoding)
    served = backend_identity(TeacherConfig(backend="openai"))
    assert served.weights_hash.startswith("name:") and "base_url" not in dict(served.decoding)


def test_log_config_is_validated_and_named():
    cfg = load_config(None, ["teacher.log=false", "teacher.log_flush_s=0.5", "teacher.log_max_mb=1"])
    assert (cfg.teacher.log, cfg.teacher.log_flush_s, cfg.teacher.log_max_mb) == (False, 0.5, 1.0)
    for bad, key in (("teacher.log_flush_s=0", "teacher.log_flush_s"), ("teacher.log_max_mb=-1", "teacher.log_max_mb"),
                     ("teacher.log_queue_size=0", "teacher.log_queue_size"),
                     ("teacher.backend=replay", "teacher.replay.log"),
                     ("teacher.replay.fallback=maybe", "teacher.replay.fallback")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [bad])
    with pytest.raises(ConfigError, match=r"teacher\.hf\.model"):
        load_config(None, ["teacher.backend=replay", "teacher.replay.log=x", "teacher.replay.fallback=hf"])


def test_teacher_log_records_what_the_service_logged(tmp_path):
    log = TeacherLog(tmp_path, 0, "id", BackendIdentity("fake", "", "", ()), 60.0, 1.0, 10)
    log.record([q("a")], [Advice.none(("explore", "go to key, pick up key"), reason="unparseable",
                                      invalid_outputs=10)], BANK, 0.1)
    log.close()
    (r,) = read_log(tmp_path).records
    assert (r.probs, r.reason, r.invalid_outputs, r.source, r.batch_size) == ((), "unparseable", 10, "fake", 1)
