"""The parts of ``llmrl bench teacher`` that run without Ray: argument parsing, the point grid, percentiles, tables,
states, and the hf backend timed alone on a tiny local LM."""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import random

import numpy as np
import pytest

from llmrl.bench import teacher as tb


def test_int_and_backend_lists():
    assert tb.int_list("1,8, 32") == [1, 8, 32]
    for bad in ("", "1,x", "0,4", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            tb.int_list(bad)
    assert tb.backend_list("hf") == ["hf"]
    assert tb.backend_list("scripted, hf") == ["scripted", "hf"]
    with pytest.raises(argparse.ArgumentTypeError):
        tb.backend_list("vllm")


def test_parse_args_defaults_and_errors(capsys):
    args = tb.parse_args([])
    assert args.backends == ["scripted", "hf"] and args.batch_sizes == [1, 8, 32] and args.concurrency == [1, 8, 32]
    args = tb.parse_args(["--backends", "hf", "--batch-sizes", "4", "--concurrency", "2,16", "--requests", "10",
                          "--out", "x"])
    assert (args.backends, args.batch_sizes, args.concurrency, args.requests, args.out) == (["hf"], [4], [2, 16], 10,
                                                                                               "x")
    for bad in (["--requests", "0"], ["--batch-sizes", "a"], ["--backends", "nope"], ["--per-call", "-1"]):
        with pytest.raises(SystemExit):
            tb.parse_args(bad)
    capsys.readouterr()


def test_grid_always_starts_with_the_one_at_a_time_baseline():
    assert tb.grid([8, 32], [8]) == [(1, 1), (8, 8), (32, 8)]
    assert tb.grid([1, 8], [1, 8]) == [(1, 1), (1, 8), (8, 1), (8, 8)]


def test_percentile_matches_numpy():
    rng = random.Random(0)
    for n in (1, 2, 7, 100):
        xs = [rng.expovariate(1.0) for _ in range(n)]
        for q in (0, 1, 50, 90, 99, 100):
            assert tb.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert math.isnan(tb.percentile([], 50))
    with pytest.raises(ValueError):
        tb.percentile([1.0], 101)


def test_state_stream_is_distinct_and_parseable():
    from llmrl.envs.minigrid.text import parse_state_text

    stream = tb.state_stream(0)
    states = [next(stream) for _ in range(3000)]
    assert len({s for s, _ in states}) == len(states)
    for text, options in states[:200]:
        assert parse_state_text(text) is not None
        assert options and options[0] == "explore"
    assert next(tb.state_stream(1))[0] != states[0][0]  # the seed changes the order


def test_bench_bank_prompt_has_the_shared_prefix_first():
    from llmrl.messages import TeacherQuery
    from llmrl.teacher.prompting import bank_prefix, build_prompt

    bank = tb.bench_bank()
    text, options = next(tb.state_stream(0))
    prompt = build_prompt(TeacherQuery("minigrid", "SimpleDoorKey", text, options), bank)
    assert prompt.startswith(bank_prefix(bank) + "\n\n")
    assert len(bank.exemplars) == 3 and len(bank.feedback_lines) == 4


def _row(backend, batch, conc, rps, states="distinct", per_call=1):
    return {"backend": backend, "max_batch_size": batch, "concurrency": conc, "per_call": per_call, "states": states,
            "requests": 10, "requests_per_s": rps, "speedup": math.nan, "latency_p50_ms": 1.5,
            "latency_p99_ms": 3.25, "mean_batch_size": 1.0, "backend_ms_per_batch": 0.5, "cache_hit_ratio": 0.0,
            "deduplicated": 0}


def test_speedups_best_batched_table_and_csv(tmp_path):
    rows = [_row("hf", 1, 1, 50.0), _row("hf", 8, 8, 200.0), _row("hf", 32, 32, 400.0, per_call=8),
            _row("hf", 32, 32, 900.0, states="16 repeated"), _row("scripted", 1, 1, 500.0),
            _row("scripted", 8, 8, 250.0)]
    tb.speedups(rows)
    assert [r["speedup"] for r in rows] == [1.0, 4.0, 8.0, 18.0, 1.0, 0.5]
    # Only distinct states, one query per call and max batch > 1 compete for "best batched".
    assert tb.best_batched(rows, "hf") is rows[1]
    assert tb.best_batched(rows, "scripted") is rows[5]
    assert tb.best_batched(rows, "vllm") is None
    table = tb.results_table(rows).splitlines()
    assert table[0].startswith("| backend | max batch | concurrency | per call | states | requests/s | speedup")
    assert table[1] == "|" + "---|" * 13
    assert table[2] == "| hf | 1 | 1 | 1 | distinct | 50 | 1 | 1.5 | 3.25 | 1 | 0.5 | 0 | 0 |"
    tb.write_csv(rows, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open() as f:
        back = list(csv.DictReader(f))
    assert tuple(back[0]) == tb.COLUMNS and float(back[1]["speedup"]) == 4.0


class _FakeHandle:
    """``advise.remote(call)`` as an awaitable, recording how many calls are in flight."""

    def __init__(self):
        self.in_flight = self.peak = 0
        self.calls: list[list] = []
        self.advise = self

    def remote(self, call):
        async def answer():
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.calls.append(list(call))
            await asyncio.sleep(0.001)
            self.in_flight -= 1
            return [None] * len(call)

        return answer()


@pytest.mark.parametrize("concurrency,per_call", [(1, 1), (4, 1), (3, 5)])
def test_fire_keeps_the_asked_concurrency(concurrency, per_call):
    handle = _FakeHandle()
    queries = list(range(23))
    point = asyncio.run(tb._fire(handle, queries, concurrency, per_call))
    assert len(point.latencies_s) == len(queries) and point.wall_s > 0
    assert handle.peak == min(concurrency, math.ceil(len(queries) / per_call))
    assert sorted(q for call in handle.calls for q in call) == queries
    assert all(len(call) <= per_call for call in handle.calls)


def test_backend_alone_times_the_real_hf_backend_per_batch_size(tmp_path):
    from llmrl.teacher.tiny_lm import build_tiny_lm

    lm = str(build_tiny_lm(tmp_path / "lm", seed=0))
    rows = tb.backend_alone(lm, [4, 2], requests=8, states=tb.state_stream(0))
    assert [r["batch"] for r in rows] == [1, 2, 4]  # batch 1, the reference, always first
    assert [r["queries"] for r in rows] == [8, 8, 8]
    assert rows[0]["speedup"] == 1.0
    for r in rows:
        assert r["ms_per_query"] > 0 and r["ms_per_batch"] == pytest.approx(r["ms_per_query"] * r["batch"])
    table = tb.backend_alone_table(rows)
    assert table.count("\n") == len(rows) + 1 and "ms/query" in table
