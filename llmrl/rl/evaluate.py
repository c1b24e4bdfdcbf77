"""Evaluate a trained student from a checkpoint, in this process, without Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

MODULE_SUBDIR = Path("algo") / "learner_group" / "learner" / "rl_module" / "default_policy"


def load_student(checkpoint: Path) -> RLModule:
    path = checkpoint / MODULE_SUBDIR
    if not path.is_dir():
        raise FileNotFoundError(f"'{checkpoint}' has no student module at {MODULE_SUBDIR}")
    module = RLModule.from_checkpoint(str(path.resolve()))
    module.eval()
    return module


def _to_batch(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: torch.as_tensor(np.asarray(v))[None] for k, v in obs.items()}
    return torch.as_tensor(np.asarray(obs))[None]


def student_action(module: RLModule, obs: Any, greedy: bool, rng: np.random.Generator) -> int:
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: _to_batch(obs)})
    logits = out[Columns.ACTION_DIST_INPUTS][0].numpy()
    if greedy:
        return int(np.argmax(logits))
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))
