"""The ``llmrl`` command.

    llmrl train CONFIG [key=value ...]         train on this machine (local Ray), live progress, run folder
    llmrl eval CHECKPOINT [--episodes N]       evaluate a trained student
    llmrl eval --teacher CONFIG [key=value]    evaluate the teacher acting alone through its skills
    llmrl bench NAME [args ...]                benchmarks: overhead, sample-efficiency, teacher, scaling, crafter, envs
    llmrl make-tiny-lm DIR                     build a tiny local causal LM (for the hf backend without downloads)

A bad config prints one line naming the key and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from llmrl.config import ConfigError, load_config

BENCHMARKS = {
    "overhead": "llmrl.bench.overhead",
    "sample-efficiency": "llmrl.bench.sample_efficiency",
    "teacher": "llmrl.bench.teacher",
    "scaling": "llmrl.bench.scaling",
    "crafter": "llmrl.bench.crafter",
    "envs": "llmrl.bench.envs",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmrl", description="LLM-taught reinforcement learning on Ray/RLlib.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train locally")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", help="key=value, e.g. teacher.backend=off run.max_env_steps=50000")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    e = sub.add_parser("eval", help="evaluate a student checkpoint, or the teacher alone")
    e.add_argument("target", help="checkpoint folder, or a config with --teacher")
    e.add_argument("overrides", nargs="*")
    e.add_argument("--teacher", action="store_true", help="evaluate the teacher acting alone (target is a config)")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--sample", action="store_true", help="student samples actions instead of acting greedily")
    b = sub.add_parser("bench", help="benchmarks (each prints its own table)")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("args", nargs=argparse.REMAINDER)
    m = sub.add_parser("make-tiny-lm", help="build a tiny causal LM in DIR")
    m.add_argument("dir")
    return p


def _one_line_errors() -> tuple[type[Exception], ...]:
    from llmrl.teacher.backends import BackendError
    from llmrl.training.placement import ResourceError

    return (BackendError, ResourceError)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "train":
            cfg = load_config(args.config, args.overrides)
            from llmrl.training.loop import train

            summary = train(cfg, stream=None if args.quiet else sys.stdout)
            print(json.dumps(summary, indent=2, default=float))
            return 0
        if args.command == "eval":
            from llmrl.training.evaluate import evaluate_student, evaluate_teacher

            if args.teacher:
                result = evaluate_teacher(load_config(args.target, args.overrides), args.episodes)
            else:
                if args.overrides:
                    raise ConfigError("eval CHECKPOINT takes no key=value overrides (the run's config is used)")
                result = evaluate_student(Path(args.target), args.episodes, greedy=not args.sample)
            print(json.dumps(result, indent=2, default=float))
            return 0
        if args.command == "bench":
            return int(importlib.import_module(BENCHMARKS[args.name]).main(args.args) or 0)
        if args.command == "make-tiny-lm":
            from llmrl.teacher.tiny_lm import build_tiny_lm

            print(build_tiny_lm(Path(args.dir)))
            return 0
    except ConfigError as exc:
        print(f"llmrl: config error: {exc}", file=sys.stderr)
        return 2
    except _one_line_errors() as exc:  # a missing model, no vllm, a GPU request the cluster cannot hold
        print(f"llmrl: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"llmrl: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
