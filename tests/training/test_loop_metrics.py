"""The training loop's reading of RLlib's result dict (pure; no Ray)."""

import math

from llmrl.training.loop import sampled_steps


def test_an_iteration_whose_env_runner_died_sampled_zero_steps():
    assert sampled_steps({"env_runners": {"num_env_steps_sampled": 512}}) == 512
    # RLlib's count when its only env runner died mid-sample and no samples came back (seen in bench faults).
    assert sampled_steps({"env_runners": {"num_env_steps_sampled": math.nan}}) == 0
    assert sampled_steps({}) == 0


def test_a_nan_counter_of_a_failed_iteration_adds_nothing_to_the_totals():
    from llmrl.training.loop import add_client_counters

    totals: dict[str, float] = {}
    add_client_counters(totals, {"env_runners": {"llmrl/feedback/sent": 4.0, "episode_return_mean": 1.0},
                                 "evaluation": {"env_runners": {"llmrl/teacher_client/requests": 2.0}}})
    add_client_counters(totals, {"env_runners": {"llmrl/feedback/sent": math.nan}})
    add_client_counters(totals, {"env_runners": {"llmrl/feedback/sent": 3.0}})
    assert totals == {"feedback/sent": 7.0, "teacher_client/requests": 2.0}
