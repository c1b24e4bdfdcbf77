"""``load_checkpoint``'s checks that run before anything is restored (no Ray needed: they fail first)."""

import json
from types import SimpleNamespace

import pytest

from llmrl.config import Config, ConfigError
from llmrl.training.checkpoint import BANK_STATE, LOOP_STATE, load_checkpoint


class _Algo:
    """Stands in for the RLlib algorithm, to see whether a restore was attempted."""

    def __init__(self):
        self.restored = []

    def restore_from_path(self, path):
        self.restored.append(path)


def _graph(credit: str) -> SimpleNamespace:
    cfg = Config()
    cfg.feedback.credit = credit
    return SimpleNamespace(cfg=cfg, algo=_Algo(), feedback=object())


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.resume"):
        load_checkpoint(tmp_path, _graph("plan"), dict)


def test_resuming_with_another_credit_is_a_config_error_before_any_restore(tmp_path):
    (tmp_path / LOOP_STATE).write_text(json.dumps({}))
    (tmp_path / BANK_STATE).write_text(json.dumps({"format": 1, "credit": "episode"}))
    graph = _graph("plan")
    with pytest.raises(ConfigError, match="feedback.credit: .*credit=episode"):
        load_checkpoint(tmp_path, graph, dict)
    assert graph.algo.restored == []


def test_loop_state_of_an_older_checkpoint_keeps_crafters_running_totals(tmp_path):
    from llmrl.training.loop import LoopState

    (tmp_path / LOOP_STATE).write_text(json.dumps({"iteration": 3, "train_episodes": 7,
                                                   "train_achievements": {"collect_wood": 5.0}}))
    graph = SimpleNamespace(cfg=Config(), algo=_Algo(), feedback=None)
    state = load_checkpoint(tmp_path, graph, LoopState)
    assert state.iteration == 3
    assert state.family_state == {"train_episodes": 7, "train_achievements": {"collect_wood": 5.0}}


def test_an_older_checkpoints_adapter_trainer_restarts_join_the_other_actors_counts(tmp_path):
    from llmrl.training.loop import LoopState

    (tmp_path / LOOP_STATE).write_text(json.dumps({"iteration": 2, "adapter_trainer_restarts": 1,
                                                   "actor_restarts": {"feedback": 2}}))
    graph = SimpleNamespace(cfg=Config(), algo=_Algo(), feedback=None)
    state = load_checkpoint(tmp_path, graph, LoopState)
    assert state.actor_restarts == {"feedback": 2, "adapter_trainer": 1}
