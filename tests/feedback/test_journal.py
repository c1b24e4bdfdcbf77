"""The feedback journal (snapshot + append-only log): exact round trips, a torn last line, compaction.

Plain files and plain ``FeedbackService`` objects, no Ray (tests/feedback/test_actor.py kills a real actor).
"""

import json
import time

import pytest

from llmrl.config import FeedbackConfig
from llmrl.feedback.actor import FeedbackService
from llmrl.feedback.bank import PromptBank
from llmrl.feedback.journal import LOG, SNAPSHOT, BankJournal, summary_from_json, summary_to_json
from llmrl.messages import AdviceOutcome, EpisodeSummary

TASK = "Open the locked door."


def episodes(n: int, start: int = 0) -> list[EpisodeSummary]:
    """Varied summaries (states, plans, outcomes), so a replay in the wrong order or twice would show."""
    out = []
    for i in range(start, start + n):
        outcome = AdviceOutcome(state_text=f"state {i % 4}", option=f"plan {i % 3}", steps_completed=i % 3,
                                steps_total=2, followed_frac=0.5)
        out.append(EpisodeSummary(family="minigrid", task="SimpleDoorKey", success=i % 2 == 0, episode_return=0.1 * i,
                                  length=10 + i, outcomes=(outcome,), subgoals_completed=(f"plan {i % 3}",)))
    return out


def cfg(**kw) -> FeedbackConfig:
    return FeedbackConfig(publish_every=3, min_trials=1, **{"flush_s": 0.0, **kw})


def journaled(c: FeedbackConfig, directory, batches: list[list[EpisodeSummary]]) -> PromptBank:
    """A bank fed batch by batch with its journal flushed after each, as the actor does with flush_s=0."""
    bank, journal = PromptBank(c, TASK), BankJournal(directory, c)
    for batch in batches:
        bank.record(batch)
        journal.append(batch)
        journal.flush(bank.state_dict)
    return bank


def test_summary_json_round_trip():
    s = episodes(1)[0]
    assert summary_from_json(json.loads(json.dumps(summary_to_json(s)))) == s


def test_snapshot_plus_log_rebuilds_the_bank_exactly(tmp_path):
    c = cfg()
    batches = [episodes(2, 0), episodes(3, 2), episodes(1, 5), episodes(4, 6)]
    bank = journaled(c, tmp_path, batches)
    assert len((tmp_path / LOG).read_text().splitlines()) == len(batches) - 1  # the first write was a snapshot
    found = BankJournal(tmp_path, c).recover(c, TASK)
    assert found.bank.state_dict() == bank.state_dict() and found.bank.version == bank.version == 3
    assert found.replayed_batches == 3 and found.torn_lines == 0


def test_torn_last_line_is_ignored_and_the_journal_starts_clean(tmp_path):
    c = cfg()
    bank = journaled(c, tmp_path, [episodes(2, 0), episodes(2, 2)])
    with (tmp_path / LOG).open("a") as f:
        f.write('{"seq": 3, "summaries": [{"family": "mini')  # the process died mid-write
    journal = BankJournal(tmp_path, c)
    found = journal.recover(c, TASK)
    assert found.torn_lines == 1 and found.bank.state_dict() == bank.state_dict()
    # Recovery wrote a fresh snapshot: the next append cannot land after the partial line.
    assert (tmp_path / LOG).read_text() == ""
    found.bank.record(episodes(1, 4))
    journal.append(episodes(1, 4))
    journal.flush(found.bank.state_dict)
    again = BankJournal(tmp_path, c).recover(c, TASK)
    assert again.torn_lines == 0 and again.bank.episodes == 5


def test_compaction_bounds_the_log_and_keeps_the_bank(tmp_path):
    c = cfg(compact_every=4)
    bank = journaled(c, tmp_path, [episodes(1, i) for i in range(10)])
    journal_lines = (tmp_path / LOG).read_text().splitlines()
    assert len(journal_lines) < 4  # folded into the snapshot every 4 summaries
    saved = json.loads((tmp_path / SNAPSHOT).read_text())
    assert 6 <= saved["seq"] <= 10 and saved["bank"]["episodes"] == saved["seq"]
    assert BankJournal(tmp_path, c).recover(c, TASK).bank.state_dict() == bank.state_dict()


def test_log_lines_already_in_the_snapshot_are_not_replayed(tmp_path):
    # A crash after the new snapshot was renamed into place but before the log was truncated.
    c = cfg()
    journaled(c, tmp_path, [episodes(2, 0), episodes(2, 2), episodes(2, 4)])
    stale_log = (tmp_path / LOG).read_text()
    bank = PromptBank.from_state_dict(c, BankJournal(tmp_path, c).recover(c, TASK).bank.state_dict())
    (tmp_path / LOG).write_text(stale_log)  # recover() compacted; put the old lines back
    assert BankJournal(tmp_path, c).recover(c, TASK).bank.state_dict() == bank.state_dict()


def test_service_recovers_within_one_flush_and_never_reuses_a_version(tmp_path):
    c = cfg(flush_s=3600.0)  # the timer never fires within the test: only what record writes itself is on disk
    svc = FeedbackService(c, TASK, persist_dir=str(tmp_path))
    svc.record(episodes(3, 0))  # publishes version 1: written at once
    svc.record(episodes(1, 3))  # no new version: buffered until the next flush
    crashed = FeedbackService(c, TASK, persist_dir=str(tmp_path), recover=True)
    assert crashed.bank.version == svc.bank.version == 1
    assert crashed.bank.episodes == 3  # the unflushed batch (one interval's worth) is what a crash loses
    assert crashed.stats()["recovered_episodes"] == 3
    svc.close()  # a clean close writes the buffer
    closed = FeedbackService(c, TASK, persist_dir=str(tmp_path), recover=True)
    assert closed.bank.state_dict() == svc.bank.state_dict()


def test_service_flushes_on_its_timer(tmp_path):
    svc = FeedbackService(cfg(flush_s=0.05), TASK, persist_dir=str(tmp_path))
    svc.record(episodes(3, 0))  # publishes version 1: written at once, as the journal's first snapshot
    svc.record(episodes(1, 3))  # buffered; the flusher thread writes it
    log = tmp_path / LOG
    for _ in range(200):
        if log.is_file() and log.read_text():
            break
        time.sleep(0.05)
    svc.close()
    assert json.loads(log.read_text().splitlines()[0])["seq"] == 2


def test_fresh_service_starts_over_and_reseeding_restarts_the_journal(tmp_path):
    c = cfg()
    old = FeedbackService(c, TASK, persist_dir=str(tmp_path))
    old.record(episodes(6, 0))
    checkpoint = old.state_dict()
    old.record(episodes(3, 6))
    # A resumed run: a fresh actor (no recovery), re-seeded from the checkpoint.
    resumed = FeedbackService(c, TASK, persist_dir=str(tmp_path))
    assert resumed.bank.episodes == 0
    assert resumed.load_state_dict(checkpoint) == 2
    assert BankJournal(tmp_path, c).recover(c, TASK).bank.state_dict() == checkpoint


def test_persist_and_flush_config_are_validated():
    from llmrl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="feedback.flush_s"):
        load_config(None, ["feedback.flush_s=-1"])
    with pytest.raises(ConfigError, match="feedback.compact_every"):
        load_config(None, ["feedback.compact_every=0"])
    assert load_config(None, ["feedback.persist=false"]).feedback.persist is False
