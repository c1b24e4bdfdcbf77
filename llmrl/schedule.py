"""The distillation weight lambda(t) (LLM4Teach's annealed kickstarting coefficient); no RLlib here."""

from __future__ import annotations

from llmrl.config import DistillConfig


def distill_coef(updates: int, cfg: DistillConfig) -> float:
    """lambda after ``updates`` learner updates: start - decrement * t, floored; 0 past the cut-off.

    LLM4Teach: start 10, decrement 0.005, floor 0.1, removed after 3000 updates.
    """
    if cfg.cutoff_updates and updates >= cfg.cutoff_updates:
        return 0.0
    return max(cfg.coef_floor, cfg.coef_start - cfg.coef_decrement * updates)
