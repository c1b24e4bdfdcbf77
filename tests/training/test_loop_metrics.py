"""The training loop's reading of RLlib's result dict (pure; no Ray)."""

import math

from llmrl.training.loop import sampled_steps


def test_an_iteration_whose_env_runner_died_sampled_zero_steps():
    assert sampled_steps({"env_runners": {"num_env_steps_sampled": 512}}) == 512
    # RLlib's count when its only env runner died mid-sample and no samples came back (seen in bench faults).
    assert sampled_steps({"env_runners": {"num_env_steps_sampled": math.nan}}) == 0
    assert sampled_steps({}) == 0
