"""Checkpoints: RLlib's algorithm state (module, optimizer, learner state incl. the lambda schedule), the
prompt bank (with the adapter's training pairs), the LoRA adapter in service (``adapter/v<N>/``) and the loop
state, written to ``<run>/checkpoints/iter_<n>``. A checkpoint is written to a
temporary folder and renamed into place, so a crash mid-save never leaves a half checkpoint behind."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from llmrl.config import Config, ConfigError, load_config
from llmrl.feedback.bank import saved_credit

logger = logging.getLogger(__name__)

LOOP_STATE = "llmrl_state.json"
BANK_STATE = "prompt_bank.json"
ALGO_DIR = "algo"
RUN_CONFIG = "config.yaml"  # the resolved config, in the run folder above checkpoints/
S = TypeVar("S")


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to: ``<run>/checkpoints/iter_<n>``."""
    return checkpoint.resolve().parent.parent


def newest_checkpoint(run_dir: Path) -> Path | None:
    """A run folder's newest complete checkpoint, or None. Not a "<name>.tmp" folder, nor one without its loop
    state: that is a checkpoint still being written (see save_checkpoint)."""
    done = sorted(p for p in (run_dir / "checkpoints").glob("iter_*")
                  if p.name.removeprefix("iter_").isdigit() and (p / LOOP_STATE).is_file())
    return done[-1] if done else None


def config_of_checkpoint(checkpoint: Path, overrides: Iterable[str] = ()) -> Config:
    """The run's resolved config, plus ``overrides`` (e.g. a model folder that has moved since)."""
    cfg_file = run_dir_of(checkpoint) / RUN_CONFIG
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no {RUN_CONFIG} in the run folder of '{checkpoint}'")
    return load_config(cfg_file, overrides)


def save_checkpoint(run_dir: Path, graph: Any, state: Any) -> Path:
    import ray

    final = run_dir / "checkpoints" / f"iter_{state.iteration:06d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    graph.algo.save_to_path(str((tmp / ALGO_DIR).resolve()))
    if graph.feedback is not None:
        try:
            bank = ray.get(graph.feedback.state_dict.remote(), timeout=30)
            (tmp / BANK_STATE).write_text(json.dumps(bank))
        except Exception as exc:  # noqa: BLE001 - keep the RL checkpoint even if the bank is unreachable
            logger.warning("prompt bank not saved in %s: %s", final.name, exc)
    _save_adapter(graph, tmp)
    (tmp / LOOP_STATE).write_text(json.dumps(dataclasses.asdict(state), indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def load_checkpoint(path: Path, graph: Any, state_cls: type[S]) -> S:
    import ray

    if not (path / LOOP_STATE).is_file():
        raise FileNotFoundError(f"run.resume: '{path}' is not an llmrl checkpoint (no {LOOP_STATE})")
    bank_file = path / BANK_STATE
    bank = json.loads(bank_file.read_text()) if graph.feedback is not None and bank_file.is_file() else None
    if bank is not None and saved_credit(bank) != graph.cfg.feedback.credit:
        # Checked before anything is restored: counts under two success definitions must not mix.
        saved = saved_credit(bank)
        raise ConfigError(f"feedback.credit: the checkpoint's prompt bank counted successes with credit={saved}; "
                          f"resume with feedback.credit={saved} or start a new run")
    graph.algo.restore_from_path(str((path / ALGO_DIR).resolve()))
    if bank is not None:
        ray.get(graph.feedback.load_state_dict.remote(bank))
    saved = json.loads((path / LOOP_STATE).read_text())
    # Checkpoints from before family specs kept Crafter's running totals at the top level.
    legacy = {k: saved.pop(k) for k in ("train_episodes", "train_achievements") if k in saved}
    if legacy:
        saved.setdefault("family_state", {}).update(legacy)
    # ... and the adapter trainer's restarts in a field of their own (now counted with the other actors').
    if "adapter_trainer_restarts" in saved:
        saved.setdefault("actor_restarts", {})["adapter_trainer"] = int(saved.pop("adapter_trainer_restarts"))
    _restore_adapter(graph, path)
    return state_cls(**saved)


def _save_adapter(graph: Any, checkpoint_tmp: Path) -> None:
    """Copy the adapter version in service into the checkpoint (versions on disk are complete and immutable)."""
    if getattr(graph, "adapter_trainer", None) is None or graph.run_dir is None:
        return
    from llmrl.adapter.versions import copy_into_checkpoint, latest_adapter

    version = latest_adapter(graph.run_dir)
    if version is not None:
        copy_into_checkpoint(version, checkpoint_tmp)


def _restore_adapter(graph: Any, checkpoint: Path) -> None:
    """Put the checkpoint's adapter back in service and have the trainer (and through it the teacher) use it."""
    if getattr(graph, "adapter_trainer", None) is None or graph.run_dir is None:
        return
    import ray

    from llmrl.adapter.versions import restore_from_checkpoint

    version = restore_from_checkpoint(checkpoint, graph.run_dir)
    if version is not None:
        ray.get(graph.adapter_trainer.reload.remote(), timeout=60)
        logger.info("resumed with adapter v%d", version.version)
