"""The teacher as of a config or a checkpoint: which teacher it is, and the prompt bank it reads.

``llmrl eval --teacher`` and ``llmrl bench teacher-quality`` measure a teacher either as configured (a fresh
prompt bank: only the task description, which is what training starts with) or as it was at one point of a
run (that checkpoint's prompt bank). Everything that makes up "the teacher of a checkpoint" is loaded in one
place, ``teacher_of_checkpoint``, so each consumer gets the same teacher.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrl.config import Config, ConfigError, load_config
from llmrl.adapter.versions import AdapterError, latest_adapter
from llmrl.messages import AdapterVersion, PromptBankSnapshot
from llmrl.training.checkpoint import BANK_STATE, LOOP_STATE, config_of_checkpoint, newest_checkpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSetup:
    """A teacher to measure: its config (backend, model, env) and the prompt-bank snapshot it answers with."""

    cfg: Config
    bank: PromptBankSnapshot
    origin: str  # "config <path>" or "checkpoint <path>", for reports
    # The run's LoRA adapter in service at the checkpoint (its copy under <checkpoint>/adapter/v<N>/); None for a
    # config's teacher or a run without the online adapter. install_teacher switches the service to it.
    adapter: AdapterVersion | None = None

    @property
    def adapter_version(self) -> int:
        return self.adapter.version if self.adapter is not None else 0


def initial_bank(cfg: Config) -> PromptBankSnapshot:
    """The bank a run starts with: version 0, only the task description (no exemplars or feedback yet)."""
    from llmrl.training.graph import task_description_for

    return PromptBankSnapshot(version=0, task_description=task_description_for(cfg))


def teacher_of_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TeacherSetup:
    cfg = load_config(path, overrides)
    return TeacherSetup(cfg, initial_bank(cfg), f"config {path}")


def latest_checkpoint(path: Path) -> Path:
    """``path`` itself if it is a checkpoint; for a run folder, its newest checkpoint."""
    if (path / LOOP_STATE).is_file():
        return path
    found = newest_checkpoint(path)
    if found is None:
        raise FileNotFoundError(f"'{path}' is neither an llmrl checkpoint nor a run folder with checkpoints")
    return found


def teacher_of_checkpoint(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TeacherSetup:
    """The teacher of a run at a checkpoint (or at a run folder's newest checkpoint): the run's config (plus
    ``overrides``, e.g. a moved model folder), the prompt bank saved in that checkpoint and its LoRA adapter, if
    the run had one. A run without a saved bank (feedback off) gets the initial bank."""
    from llmrl.feedback.bank import PromptBank

    checkpoint = latest_checkpoint(Path(path))
    cfg = config_of_checkpoint(checkpoint, overrides)
    adapter = latest_adapter(checkpoint)  # the copy the checkpoint holds; None without the online adapter
    bank_file = checkpoint / BANK_STATE
    if not bank_file.is_file():
        logger.warning("%s has no prompt bank (feedback off?): the teacher gets the initial bank", checkpoint)
        return TeacherSetup(cfg, initial_bank(cfg), f"checkpoint {checkpoint}", adapter)
    state: dict[str, Any] = json.loads(bank_file.read_text())
    try:
        bank = PromptBank.from_state_dict(cfg.feedback, state).snapshot()
    except ValueError as exc:  # another feedback.credit in the overrides, or an unknown bank format
        raise ConfigError(str(exc)) from None
    return TeacherSetup(cfg, bank, f"checkpoint {checkpoint}", adapter)


def teacher_of(target: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TeacherSetup:
    """A config file's teacher, or a checkpoint's (a folder: a checkpoint or a run folder)."""
    return teacher_of_checkpoint(target, overrides) if Path(target).is_dir() else teacher_of_config(target, overrides)


def install_teacher(handles: list[Any], bank: PromptBankSnapshot, adapter: AdapterVersion | None = None) -> None:
    """Make running teacher-service replicas answer with ``bank`` and, if given, the LoRA ``adapter`` (before
    they serve any query). A refused adapter raises ``AdapterError`` (one line)."""
    import ray

    ray.get([h.set_bank.remote(bank) for h in handles])
    if adapter is not None and not all(ray.get([h.load_adapter.remote(adapter) for h in handles])):
        raise adapter_refused(adapter)


def adapter_refused(adapter: AdapterVersion) -> AdapterError:
    """The error for a run's adapter that the teacher would not load: measuring "the run's teacher" without its
    adapter would measure another teacher, so this is an error, not a fallback."""
    return AdapterError(f"teacher: adapter v{adapter.version} ({adapter.path}) was refused (another base model, "
                        f"another adapter.role than its '{adapter.role}', or damaged files: the teacher's log says "
                        "which)")
