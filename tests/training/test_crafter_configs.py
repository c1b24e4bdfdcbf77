"""The shipped Crafter configs load, take the usual overrides, and fit the machines they are written for."""

from pathlib import Path

import pytest

from llmrl.config import load_config
from llmrl.training.placement import check_resources, plan_resources

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "crafter"
OVERRIDES = (
    [],
    ["teacher.backend=off"],
    ["teacher.backend=scripted"],
    ["teacher.backend=hf", "teacher.hf.model=runs/tiny-lm"],
    ["run.max_env_steps=512", "run.seed=3", "run.out_dir=/tmp/x"],
)


# What each config is written for: this project's 2-core machines, and a 16-core machine with one GPU.
MACHINES = {"default.yaml": {"CPU": 2.0}, "smollm.yaml": {"CPU": 2.0}, "adarefiner_1m.yaml": {"CPU": 16.0, "GPU": 1.0}}


@pytest.mark.parametrize("overrides", OVERRIDES)
@pytest.mark.parametrize("name", sorted(MACHINES))
def test_crafter_configs_load_and_fit(name, overrides):
    cfg = load_config(CONFIGS / name, overrides)
    assert cfg.env.family == "crafter" and cfg.env.crafter_size == 64
    assert (cfg.ppo.gamma, cfg.ppo.gae_lambda) == (0.95, 0.65)  # AdaRefiner
    check_resources(plan_resources(cfg), MACHINES[name])


def test_the_1m_config_is_the_1m_run():
    cfg = load_config(CONFIGS / "adarefiner_1m.yaml")
    assert cfg.run.max_env_steps == 1_000_000 and cfg.env.max_steps == 10_000
    assert (cfg.ppo.train_batch_size, cfg.ppo.minibatch_size, cfg.ppo.num_epochs, cfg.ppo.lr) == (4096, 128, 4, 1e-4)
