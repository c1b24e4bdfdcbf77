"""``llmrl teacher-log``: inspect and diff, as tables and as JSON, through the real CLI entry point."""

from __future__ import annotations

import json

from llmrl.cli import main
from llmrl.messages import Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.identity import BackendIdentity
from llmrl.teacher.log_report import diff, inspect, total_variation
from llmrl.teacher.teacher_log import TeacherLog, read_log

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")


def q(state: str) -> TeacherQuery:
    return TeacherQuery(family="minigrid", task="SimpleDoorKey", state_text=state, options=OPTIONS)


def write(folder, answers: list[tuple[str, int, tuple[float, ...], str]], backend="hf", source="") -> None:
    """answers: (state, bank version, probs, reason); one batch each, in order."""
    log = TeacherLog(folder, 0, "id", BackendIdentity(backend, "m", "sha256:1", (("temperature", 1.0),)), 60.0, 1.0, 100)
    for state, version, probs, reason in answers:
        advice = Advice(OPTIONS, probs, version, source, reason)
        log.record([q(state)], [advice], PromptBankSnapshot(version=version, task_description=""), 0.01)
    log.close()


def test_inspect_counts_answers_per_bank_version_reasons_and_plans_per_state(tmp_path):
    write(tmp_path, [("s1", 0, (0.0, 1.0, 0.0), ""), ("s2", 0, (), "unparseable"),
                     ("s1", 1, (0.0, 0.5, 0.5), ""), ("s1", 2, (0.0, 0.0, 1.0), "")])
    report = inspect(read_log(tmp_path))
    assert report["records"] == 4
    assert report["per_bank_version"] == [{"bank_version": 0, "answers": 2, "advice": 1, "no_advice": 1},
                                          {"bank_version": 1, "answers": 1, "advice": 1},
                                          {"bank_version": 2, "answers": 1, "advice": 1}]
    assert report["no_advice_reasons"] == {"unparseable": 1}
    s1 = next(s for s in report["states"] if s["state"] == "s1")
    assert s1["answers"] == 3 and s1["newest_top"] == "go to door, open door"
    assert s1["mean_distribution"] == {"explore": 0.0, "go to key, pick up key": 0.5, "go to door, open door": 0.5}
    assert s1["top_plans"] == ["go to door, open door", "go to key, pick up key"]
    assert "replay" not in report


def test_inspect_tells_replay_hits_from_misses_and_fallbacks(tmp_path):
    write(tmp_path / "hits", [("s1", 0, (1.0, 0.0, 0.0), "")], backend="replay", source="replay")
    write(tmp_path / "hits", [("s2", 0, (), "replay_miss")], backend="replay", source="")
    write(tmp_path / "hits", [("s3", 0, (1.0, 0.0, 0.0), "")], backend="replay", source="scripted")
    assert inspect(read_log(tmp_path / "hits"))["replay"] == {"hits": 1, "misses": 2, "fallbacks": 1}


def test_diff_reports_states_whose_top_plan_or_distribution_changed(tmp_path):
    write(tmp_path / "a", [("same", 0, (0.0, 1.0, 0.0), ""), ("flip", 0, (0.0, 1.0, 0.0), ""),
                           ("drift", 0, (0.0, 0.6, 0.4), ""), ("small", 0, (0.0, 0.6, 0.4), ""),
                           ("only a", 0, (1.0, 0.0, 0.0), "")])
    # B has a newer bank version for "flip": states match by what was asked, not by prompt hash.
    write(tmp_path / "b", [("same", 0, (0.0, 1.0, 0.0), ""), ("flip", 5, (0.0, 0.0, 1.0), ""),
                           ("drift", 0, (0.0, 0.9, 0.1), ""), ("small", 0, (0.0, 0.65, 0.35), ""),
                           ("only b", 0, (), "unparseable")])
    report = diff(read_log(tmp_path / "a"), read_log(tmp_path / "b"), tolerance=0.1)
    assert (report["common"], report["only_in_a"], report["only_in_b"], report["top_changed"]) == (4, 1, 1, 1)
    assert [c["state"] for c in report["changed"]] == ["flip", "drift"]
    assert report["changed"][1]["total_variation"] == 0.3 and not report["changed"][1]["top_changed"]
    assert total_variation((), (1.0,)) == 1.0 and total_variation((), ()) == 0.0


def test_cli_prints_tables_and_json_and_fails_in_one_line(tmp_path, capsys):
    write(tmp_path / "a", [("s1", 0, (0.0, 1.0, 0.0), "")])
    write(tmp_path / "b", [("s1", 0, (0.0, 0.0, 1.0), "")])
    assert main(["teacher-log", "inspect", str(tmp_path / "a" / "teacher_log.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "bank version" in out and "go to key, pick up key 1.00" in out and "sha256:1" in out
    assert main(["teacher-log", "diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["top_changed"] == 1 and report["changed"][0]["top_b"] == "go to door, open door"
    assert main(["teacher-log", "inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and err.strip().count("\n") == 0
