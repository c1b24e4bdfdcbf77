"""``run.parallel_eval``: evaluation on its own env runner, beside training, and dated at the policy it scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.config.schema import RunConfig
from llmrl.rl.algo import build_ppo_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "minigrid" / "simple_doorkey.yaml"


def test_parallel_eval_gets_a_remote_eval_runner_that_reserves_no_cpu():
    ppo = build_ppo_config(load_config(CONFIG, ["run.parallel_eval=true"]))
    assert ppo.evaluation_parallel_to_training
    assert ppo.evaluation_num_env_runners == 1
    assert ppo.get_evaluation_config_object().num_cpus_per_env_runner == 0
    assert ppo.num_cpus_per_env_runner == 1  # training runners keep theirs


def test_sequential_evaluation_runs_in_the_driver_and_is_the_schema_default():
    assert RunConfig().parallel_eval is False
    ppo = build_ppo_config(load_config(CONFIG, ["run.parallel_eval=false"]))
    assert not ppo.evaluation_parallel_to_training
    assert ppo.evaluation_num_env_runners == 0


def test_the_quickstart_config_evaluates_in_parallel_with_two_learner_threads():
    # docs/benchmarks/throughput.md: the same steps to 0.9 in 0.83x the wall time on 2 cores.
    cfg = load_config(CONFIG, [])
    assert cfg.run.parallel_eval and cfg.resources.learner_torch_threads == 2
    assert build_ppo_config(cfg).evaluation_parallel_to_training


@pytest.mark.integration
def test_a_run_with_parallel_eval_evaluates_and_dates_success_at_the_scored_policy(tmp_path, ray_local):
    from llmrl.training.loop import train

    cfg = load_config(CONFIG, ["ppo.train_batch_size=256", "ppo.num_epochs=1", "run.eval_episodes=2",
                               "resources.num_envs_per_env_runner=2", "run.max_env_steps=512",
                               "run.parallel_eval=true", "run.success_threshold=0.0", f"run.out_dir={tmp_path}"])
    summary = train(cfg, stream=None)
    assert summary["eval_success"] is not None
    # Threshold 0 is met by the first evaluation, which scored the initial policy (0 env steps trained).
    assert summary["steps_to_success"] == 0
