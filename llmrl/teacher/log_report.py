"""``llmrl teacher-log``: what a teacher log says, and how two logs differ.

    llmrl teacher-log inspect LOG [--json] [--rows N]
    llmrl teacher-log diff LOG_A LOG_B [--tolerance T] [--json] [--rows N]

LOG is a ``teacher_log.jsonl`` or the run folder holding it (all replicas and rotated files are read).

``inspect`` prints the teachers that answered (backend, model, weights hash, decoding), answers per prompt-bank
version, no-advice reasons, a replay run's hits, misses and fallbacks, and per state the mean plan distribution
over its answers and the newest top plan. ``diff`` compares, for every state both logs hold, the newest answer in
each: a state changed if its top plan differs or its distributions are more than ``--tolerance`` apart in total
variation (half the L1 distance). States are told apart by what was asked (family, task, state text, context,
adapter, options), whatever the prompt bank, so two runs with different bank histories can be compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from llmrl.teacher.backends.replay import MISS_REASON
from llmrl.teacher.teacher_log import LogContents, TeacherLogRecord, read_log

NO_ADVICE = "(no advice)"


def _top(probs: Sequence[float], options: Sequence[str], k: int) -> list[tuple[str, float]]:
    ranked = sorted(zip(options, probs), key=lambda op: -op[1])
    return [(o, round(p, 4)) for o, p in ranked[:k] if p > 0]


def replay_counts(records: Sequence[TeacherLogRecord]) -> dict[str, int]:
    """A replay run's own log: hits are answered by "replay"; misses by the fallback or with reason replay_miss."""
    replayed = [r for r in records if r.backend == "replay"]
    hits = sum(1 for r in replayed if r.source == "replay" and r.reason != MISS_REASON)
    fallbacks = sum(1 for r in replayed if r.source != "replay")
    return {"hits": hits, "misses": len(replayed) - hits, "fallbacks": fallbacks}


def inspect(contents: LogContents) -> dict[str, Any]:
    records = contents.records
    teachers = Counter((r.backend, r.model_id, r.weights_hash, json.dumps(dict(r.decoding), sort_keys=True))
                       for r in records)
    per_bank: dict[int, Counter] = defaultdict(Counter)
    for r in records:
        per_bank[r.bank_version]["answers"] += 1
        per_bank[r.bank_version]["advice" if r.has_advice else "no_advice"] += 1
    states: dict[tuple, list[TeacherLogRecord]] = defaultdict(list)
    for r in records:
        states[r.state_key()].append(r)
    state_rows = []
    for answers in states.values():
        advised = [r for r in answers if r.has_advice]
        newest = answers[-1]
        mean = [sum(r.probs[i] for r in advised) / len(advised) for i in range(len(newest.options))] if advised else []
        state_rows.append({
            "state": newest.state_text, "task": newest.task, "adapter": newest.adapter, "answers": len(answers),
            "bank_versions": sorted({r.bank_version for r in answers}),
            "mean_distribution": dict(zip(newest.options, (round(p, 4) for p in mean))),
            "newest_top": newest.top_option() or NO_ADVICE,
            "top_plans": sorted({r.top_option() or NO_ADVICE for r in answers}),
        })
    state_rows.sort(key=lambda s: -s["answers"])
    report: dict[str, Any] = {
        "files": [str(f) for f in contents.files],
        "records": len(records),
        "corrupt_lines": contents.corrupt_lines,
        "replicas": sorted({r.replica for r in records}),
        "instances": len({r.instance_id for r in records}),
        "teachers": [{"backend": b, "model_id": m, "weights_hash": w, "decoding": json.loads(d), "answers": n}
                     for (b, m, w, d), n in teachers.most_common()],
        "per_bank_version": [{"bank_version": v, **per_bank[v]} for v in sorted(per_bank)],
        "no_advice_reasons": dict(Counter(r.reason or "(none)" for r in records if not r.has_advice).most_common()),
        "mean_latency_s": sum(r.latency_s for r in records) / len(records) if records else 0.0,
        "states": state_rows,
    }
    if any(r.backend == "replay" for r in records):
        report["replay"] = replay_counts(records)
    return report


def total_variation(a: Sequence[float], b: Sequence[float]) -> float:
    if not a or not b:
        return 0.0 if not a and not b else 1.0  # advice against no advice is a full change
    return 0.5 * sum(abs(x - y) for x, y in zip(a, b))


def diff(a: LogContents, b: LogContents, tolerance: float) -> dict[str, Any]:
    newest_a = {r.state_key(): r for r in a.records}
    newest_b = {r.state_key(): r for r in b.records}
    changed = []
    for key in newest_a.keys() & newest_b.keys():
        ra, rb = newest_a[key], newest_b[key]
        tv = total_variation(ra.probs, rb.probs)
        top_a, top_b = ra.top_option() or NO_ADVICE, rb.top_option() or NO_ADVICE
        if top_a != top_b or tv > tolerance:
            changed.append({"state": ra.state_text, "task": ra.task, "adapter": ra.adapter, "top_a": top_a,
                            "top_b": top_b, "top_changed": top_a != top_b, "total_variation": round(tv, 4)})
    changed.sort(key=lambda c: (not c["top_changed"], -c["total_variation"], c["state"]))
    return {
        "tolerance": tolerance,
        "states_a": len(newest_a),
        "states_b": len(newest_b),
        "common": len(newest_a.keys() & newest_b.keys()),
        "only_in_a": len(newest_a.keys() - newest_b.keys()),
        "only_in_b": len(newest_b.keys() - newest_a.keys()),
        "top_changed": sum(1 for c in changed if c["top_changed"]),
        "changed": changed,
    }


# -- tables --------------------------------------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 60) -> str:
    cells = [[_cut(str(c), width) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def format_inspect(report: dict[str, Any], rows: int) -> str:
    out = [f"{report['records']} answers in {len(report['files'])} file(s), replicas {report['replicas']}, "
           f"{report['instances']} replica instance(s), {report['corrupt_lines']} unreadable line(s), "
           f"mean batch latency {report['mean_latency_s']:.4f} s", ""]
    out.append(table(["backend", "model", "weights", "decoding", "answers"],
                     [[t["backend"], t["model_id"] or "-", _cut(t["weights_hash"] or "-", 24),
                       json.dumps(t["decoding"], sort_keys=True), t["answers"]] for t in report["teachers"]], 70))
    out += ["", table(["bank version", "answers", "advice", "no advice"],
                      [[b["bank_version"], b["answers"], b.get("advice", 0), b.get("no_advice", 0)]
                       for b in report["per_bank_version"]])]
    if report["no_advice_reasons"]:
        out += ["", table(["no-advice reason", "answers"], list(report["no_advice_reasons"].items()))]
    if "replay" in report:
        r = report["replay"]
        out += ["", table(["replay hits", "misses", "fallbacks"], [[r["hits"], r["misses"], r["fallbacks"]]])]
    shown = report["states"][:rows]
    out += ["", f"plan distribution per state ({len(shown)} of {len(report['states'])} states, most answered first):",
            table(["state", "answers", "mean distribution (top 3)", "newest top plan", "top plans seen"],
                  [[s["state"], s["answers"],
                    "; ".join(f"{o} {p:.2f}" for o, p in _top(list(s["mean_distribution"].values()),
                                                               list(s["mean_distribution"]), 3)) or NO_ADVICE,
                    s["newest_top"], len(s["top_plans"])] for s in shown], 48)]
    return "\n".join(out)


def format_diff(report: dict[str, Any], rows: int) -> str:
    out = [f"states: {report['states_a']} in A, {report['states_b']} in B, {report['common']} in both "
           f"({report['only_in_a']} only in A, {report['only_in_b']} only in B)",
           f"changed beyond total variation {report['tolerance']}: {len(report['changed'])} "
           f"(top plan changed: {report['top_changed']})"]
    if report["changed"]:
        shown = report["changed"][:rows]
        out += ["", table(["state", "top plan A", "top plan B", "total variation"],
                          [[c["state"], c["top_a"], c["top_b"], f"{c['total_variation']:.3f}"] for c in shown], 48)]
        if len(shown) < len(report["changed"]):
            out.append(f"... {len(report['changed']) - len(shown)} more (--rows, or --json for all)")
    return "\n".join(out)


def _load(path: str) -> LogContents:
    try:
        return read_log(path)
    except ValueError as exc:
        raise FileNotFoundError(f"teacher log '{path}': {exc}") from None


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``teacher-log`` actions, added to the CLI's sub-parser (the logic stays here)."""
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser("inspect", help="answers per bank version, plan distribution per state, misses, reasons")
    i.add_argument("log", help="teacher_log.jsonl or the run folder")
    d = sub.add_parser("diff", help="states whose plan changed between two logs")
    d.add_argument("log_a")
    d.add_argument("log_b")
    d.add_argument("--tolerance", type=_unit_interval, default=0.1, help="total-variation distance that counts as a change")
    for s in (i, d):
        s.add_argument("--json", action="store_true", help="the full report as JSON")
        s.add_argument("--rows", type=int, default=30, help="table rows to print")


def run(args: argparse.Namespace) -> int:
    """Print the report; a missing or unreadable log raises FileNotFoundError (the CLI: one line, exit 2)."""
    if args.action == "inspect":
        report = inspect(_load(args.log))
        text = format_inspect(report, args.rows)
    else:
        report = diff(_load(args.log_a), _load(args.log_b), args.tolerance)
        text = format_diff(report, args.rows)
    print(json.dumps(report, indent=2) if args.json else text, file=sys.stdout)
    return 0
