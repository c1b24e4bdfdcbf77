"""``llmrl bench teacher``: requests/s and latency of the real teacher service actor, batched and not.

    llmrl bench teacher [--backends scripted,hf] [--batch-sizes 1,8,32] [--concurrency 1,8,32]
                        [--requests N] [--out DIR]

For each backend and ``teacher.max_batch_size`` a fresh named service actor is started (the same
``start_teacher_service`` training uses); the driver then keeps ``concurrency`` single-query
``advise.remote([q])`` calls in flight, as that many env runners would, and times each call. Every point
asks about states no earlier point asked about, so the service cache answers nothing and the backend does
all the work; a last point per backend cycles through a few states to measure the cache hit ratio. The
one-at-a-time baseline (concurrency 1, max batch 1) is always measured in the same run, and every point's
``speedup`` is its requests/s over that baseline's.

States are real MiniGrid state texts and admissible options (``envs.minigrid``), over colours so that
there are ~10^5 distinct ones. The prompt bank is SimpleDoorKey's task description with three exemplars and
four feedback lines, as the feedback actor publishes mid-training. The hf backend runs a tiny Llama built
locally (``teacher.tiny_lm``) on CPU, in score mode. For hf, a last table times the backend alone (in this
process, no Ray) at each batch size: the most batching can give the service on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrl.bench.runs import load_average, machine, markdown_table, today
from llmrl.messages import PromptBankSnapshot, TeacherQuery

BACKENDS = ("scripted", "hf")
COLUMNS = ("backend", "max_batch_size", "concurrency", "per_call", "states", "requests", "requests_per_s", "speedup",
           "latency_p50_ms", "latency_p99_ms", "mean_batch_size", "backend_ms_per_batch", "cache_hit_ratio",
           "deduplicated")
TARGET_SPEEDUP = 10.0


# -- pure helpers (tested without Ray) ------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    """``"1,8,32"`` -> [1, 8, 32]; every value must be a positive integer."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def backend_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"backends must be among {', '.join(BACKENDS)}, got {text!r}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="llmrl bench teacher", description=__doc__.split("\n")[0])
    p.add_argument("--backends", type=backend_list, default=list(BACKENDS))
    p.add_argument("--batch-sizes", type=int_list, default=[1, 8, 32], help="teacher.max_batch_size values")
    p.add_argument("--concurrency", type=int_list, default=[1, 8, 32], help="single-query calls in flight")
    p.add_argument("--requests", type=int, default=256, help="timed requests per point")
    p.add_argument("--warmup", type=int, default=16, help="untimed requests before each point")
    p.add_argument("--repeated-states", type=int, default=16, help="distinct states in the cache-hit point")
    p.add_argument("--per-call", type=int, default=8,
                   help="queries per call in an extra point (as a runner sending a vector step's new states "
                        "at once); 0 skips it")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="teacher.max_wait_ms")
    p.add_argument("--lm", default="", help="hf model folder; default: build a tiny LM under --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench-teacher")
    args = p.parse_args(argv)
    if args.requests <= 0 or args.warmup < 0 or args.repeated_states <= 0 or args.per_call < 0:
        p.error("--requests and --repeated-states must be > 0, --warmup and --per-call >= 0")
    return args


def grid(batch_sizes: Sequence[int], concurrency: Sequence[int]) -> list[tuple[int, int]]:
    """(max_batch_size, concurrency) points, the one-at-a-time baseline (1, 1) first whatever was asked."""
    points = [(1, 1)] + [(b, c) for b in batch_sizes for c in concurrency]
    return list(dict.fromkeys(points))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    xs = sorted(values)
    rank = (len(xs) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def state_stream(seed: int) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Endless distinct (MiniGrid state text, admissible options), in a seeded random order (the MiniGrid
    family's ``sample_states``)."""
    from llmrl.envs.registry import family_spec

    return family_spec("minigrid").sample_states(seed)


def bench_bank() -> PromptBankSnapshot:
    """A mid-training prompt bank: task description, three exemplars and four feedback lines."""
    from llmrl.config import EnvConfig
    from llmrl.envs.registry import make_task
    from llmrl.feedback.bank import exemplar_text, feedback_line

    task = make_task(EnvConfig(name="SimpleDoorKey"))
    description = task.task_description()
    task.close()

    key, door = "Agent sees <key>, <door (locked)>, holds <nothing>.", "Agent sees <door (locked)>, holds <key>."
    return PromptBankSnapshot(
        version=1,
        task_description=description,
        exemplars=(exemplar_text(key, "go to key, pick up key"), exemplar_text(door, "go to door, open door"),
                   exemplar_text("Agent sees <nothing>, holds <nothing>.", "explore")),
        feedback_lines=(feedback_line(key, "go to key, pick up key", 9, 10), feedback_line(door, "explore", 1, 6),
                        feedback_line(door, "go to door, open door", 7, 8),
                        feedback_line("Agent sees <key>, holds <nothing>.", "explore", 0, 4)),
    )


def speedups(rows: list[dict[str, Any]]) -> None:
    """Fill each row's ``speedup``: requests/s over its backend's one-at-a-time baseline."""
    base = {r["backend"]: r["requests_per_s"] for r in rows
            if r["max_batch_size"] == 1 and r["concurrency"] == 1 and r["per_call"] == 1 and r["states"] == "distinct"}
    for r in rows:
        b = base.get(r["backend"])
        r["speedup"] = r["requests_per_s"] / b if b else math.nan


def best_batched(rows: list[dict[str, Any]], backend: str) -> dict[str, Any] | None:
    cands = [r for r in rows if r["backend"] == backend and r["states"] == "distinct" and r["max_batch_size"] > 1
             and r["per_call"] == 1]
    return max(cands, key=lambda r: r["requests_per_s"], default=None)


def results_table(rows: list[dict[str, Any]]) -> str:
    header = ["backend", "max batch", "concurrency", "per call", "states", "requests/s", "speedup", "p50 ms",
              "p99 ms", "mean batch", "backend ms/batch", "cache hit", "dedup"]
    keys = ["backend", "max_batch_size", "concurrency", "per_call", "states", "requests_per_s", "speedup",
            "latency_p50_ms",
            "latency_p99_ms", "mean_batch_size", "backend_ms_per_batch", "cache_hit_ratio", "deduplicated"]
    return markdown_table(header, [[r[k] for k in keys] for r in rows])


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# -- measurement (Ray) -----------------------------------------------------------------------------------


@dataclass
class Point:
    latencies_s: list[float]
    wall_s: float


async def _fire(handle: Any, queries: list[TeacherQuery], concurrency: int, per_call: int = 1) -> Point:
    """Keep ``concurrency`` calls of ``per_call`` queries in flight until every query is answered.

    Each query's latency is its call's; requests/s counts queries, not calls.
    """
    latencies: list[float] = []
    calls = [queries[i:i + per_call] for i in range(0, len(queries), per_call)]
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:  # the shared iterator hands each call to exactly one worker
            t0 = time.perf_counter()
            await handle.advise.remote(call)
            latencies.extend([time.perf_counter() - t0] * len(call))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(calls)))))
    return Point(latencies, time.perf_counter() - t0)


def _queries(states: Iterator[tuple[str, tuple[str, ...]]], n: int) -> list[TeacherQuery]:
    return [TeacherQuery("minigrid", "SimpleDoorKey", text, opts) for text, opts in itertools.islice(states, n)]


def _measure(handle: Any, queries: list[TeacherQuery], concurrency: int,
             per_call: int = 1) -> tuple[Point, dict[str, float]]:
    import ray

    before = ray.get(handle.stats.remote())
    point = asyncio.run(_fire(handle, queries, concurrency, per_call))
    after = ray.get(handle.stats.remote())
    delta = {k: getattr(after, k) - getattr(before, k)
             for k in ("requests", "cache_hits", "batches", "batched_prompts", "deduplicated", "latency_s_sum")}
    return point, delta


def _row(backend: str, batch: int, concurrency: int, states: str, point: Point, d: dict[str, float],
         per_call: int = 1) -> dict:
    ms = [x * 1e3 for x in point.latencies_s]
    return {
        "backend": backend, "max_batch_size": batch, "concurrency": concurrency, "per_call": per_call,
        "states": states,
        "requests": len(ms), "requests_per_s": len(ms) / point.wall_s, "speedup": math.nan,
        "latency_p50_ms": percentile(ms, 50), "latency_p99_ms": percentile(ms, 99),
        "mean_batch_size": d["batched_prompts"] / d["batches"] if d["batches"] else 0.0,
        "backend_ms_per_batch": 1e3 * d["latency_s_sum"] / d["batches"] if d["batches"] else 0.0,
        "cache_hit_ratio": d["cache_hits"] / d["requests"] if d["requests"] else 0.0,
        "deduplicated": int(d["deduplicated"]),
    }


def backend_alone(lm: str, batch_sizes: Sequence[int], requests: int,
                  states: Iterator[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    """The hf backend called directly, in this process (no Ray, no service): ms per query against the batch
    size, over distinct states. The service cannot beat its backend, so this bounds what batching can give:
    ``speedup`` is batch 1's ms per query over batch b's (1.0 when the model's work grows with the batch)."""
    from llmrl.config import HFConfig
    from llmrl.teacher.backends.hf import HFBackend

    backend = HFBackend(HFConfig(model=lm, device="cpu"))
    bank = bench_bank()
    sizes = sorted({1, *batch_sizes})

    async def run() -> list[dict[str, Any]]:
        out = []
        try:
            await backend.advise(_queries(states, 4), bank)  # untimed: computes the bank prefix's KV cache
            for b in sizes:
                n = max(b, requests // b * b)
                queries = _queries(states, n)
                t0 = time.perf_counter()
                for i in range(0, n, b):
                    await backend.advise(queries[i:i + b], bank)
                dt = time.perf_counter() - t0
                out.append({"batch": b, "queries": n, "ms_per_batch": 1e3 * dt * b / n, "ms_per_query": 1e3 * dt / n})
        finally:
            await backend.close()
        return out

    rows = asyncio.run(run())
    for r in rows:
        r["speedup"] = rows[0]["ms_per_query"] / r["ms_per_query"]
    return rows


def backend_alone_table(rows: list[dict[str, Any]]) -> str:
    keys = ["batch", "queries", "ms_per_batch", "ms_per_query", "speedup"]
    return markdown_table(["batch", "queries", "ms/batch", "ms/query", "speedup"], [[r[k] for k in keys] for r in rows])


def _teacher_config(backend: str, batch: int, args: argparse.Namespace, lm: str):
    from llmrl.config import HFConfig, TeacherConfig

    return TeacherConfig(backend=backend, max_batch_size=batch, max_wait_ms=args.max_wait_ms, cache_size=1 << 16,
                         actor_name=f"bench_teacher_{backend}_{batch}", hf=HFConfig(model=lm, device="cpu"))


def run_backend(backend: str, args: argparse.Namespace, lm: str, states: Iterator) -> list[dict[str, Any]]:
    import ray

    from llmrl.teacher.replicas import start_teacher_service

    rows = []
    points = grid(args.batch_sizes, args.concurrency)
    bank = bench_bank()
    for batch in dict.fromkeys(b for b, _ in points):
        (handle,) = start_teacher_service(_teacher_config(backend, batch, args, lm), args.seed)
        try:
            ray.get(handle.set_bank.remote(bank))
            for b, concurrency in points:
                if b != batch:
                    continue
                asyncio.run(_fire(handle, _queries(states, args.warmup), concurrency))
                point, delta = _measure(handle, _queries(states, args.requests), concurrency)
                rows.append(_row(backend, batch, concurrency, "distinct", point, delta))
                print(f"  {backend} max_batch={batch} concurrency={concurrency}: "
                      f"{rows[-1]['requests_per_s']:.0f} req/s", flush=True)
            if batch == max(b for b, _ in points):
                concurrency = max(args.concurrency)
                if args.per_call > 1:
                    point, delta = _measure(handle, _queries(states, args.requests), concurrency, args.per_call)
                    rows.append(_row(backend, batch, concurrency, "distinct", point, delta, args.per_call))
                # Repeated states: the first request per state misses, every later one should hit.
                few = _queries(states, args.repeated_states)
                repeated = [few[i % len(few)] for i in range(args.requests)]
                point, delta = _measure(handle, repeated, concurrency)
                rows.append(_row(backend, batch, concurrency, f"{len(few)} repeated", point, delta))
        finally:
            ray.kill(handle, no_restart=True)
    return rows


def _prompt_tokens(lm: str) -> dict[str, int]:
    from transformers import AutoTokenizer

    from llmrl.teacher.prompting import bank_prefix, build_prompt

    tok = AutoTokenizer.from_pretrained(lm)
    bank = bench_bank()
    text, opts = next(state_stream(0))
    prompt = build_prompt(TeacherQuery("minigrid", "SimpleDoorKey", text, opts), bank)
    return {"prompt_tokens": len(tok(prompt)["input_ids"]),
            "bank_prefix_tokens": len(tok(bank_prefix(bank) + "\n\n")["input_ids"])}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lm = args.lm
    if "hf" in args.backends and not lm:
        from llmrl.teacher.tiny_lm import build_tiny_lm

        lm = str(build_tiny_lm(out / "tiny-lm", seed=args.seed))
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, namespace="llmrl-bench", log_to_driver=False,
                 object_store_memory=200 * 1024 * 1024)
    rows: list[dict[str, Any]] = []
    states = state_stream(args.seed)
    try:
        for backend in args.backends:
            rows += run_backend(backend, args, lm, states)
    finally:
        if started:
            ray.shutdown()
    speedups(rows)
    table = results_table(rows)
    write_csv(rows, out / "teacher.csv")
    if "hf" in args.backends:
        import torch

        alone = backend_alone(lm, args.batch_sizes, args.requests, states)
        table += (f"\n\nhf backend alone (in-process, no Ray; torch threads {torch.get_num_threads()}):\n\n"
                  + backend_alone_table(alone))
    verdicts = []
    for backend in args.backends:
        best = best_batched(rows, backend)
        if best is not None:
            met = "met" if best["speedup"] >= TARGET_SPEEDUP else "NOT met"
            verdicts.append(f"{backend}: best batched {best['requests_per_s']:.0f} req/s = {best['speedup']:.1f}x "
                            f"one-at-a-time (max batch {best['max_batch_size']}, concurrency {best['concurrency']});"
                            f" target >= {TARGET_SPEEDUP:.0f}x {met}")
    info = {"date": today(), "machine": machine(), "load_average_after": load_average(), "args": vars(args)}
    if lm:
        info.update(_prompt_tokens(lm))
    (out / "teacher.md").write_text(table + "\n\n" + "\n".join(verdicts) + "\n\n" + json.dumps(info, indent=2) + "\n")
    print(table)
    print("\n".join(verdicts))
    return 0
