"""The verdicts of ``llmrl bench sample-efficiency`` (pure; the arms themselves are integration runs)."""

from llmrl.bench.sample_efficiency import judge


def _arm(steps_to_success=None, final=0.0):
    return {"steps_to_success": steps_to_success, "final_eval_success": final}


def test_guided_must_reach_the_threshold_in_a_third_of_ppos_steps():
    assert judge({"guided": _arm(20_000), "ppo": _arm(None)}, float("nan")) == {"guided_3x_faster": True}
    assert judge({"guided": _arm(20_000), "ppo": _arm(60_000)}, 0.0)["guided_3x_faster"]
    assert not judge({"guided": _arm(20_001), "ppo": _arm(60_000)}, 0.0)["guided_3x_faster"]
    assert not judge({"guided": _arm(None), "ppo": _arm(None)}, 0.0)["guided_3x_faster"]


def test_a_tie_with_the_noisy_teacher_is_not_a_win():
    tie = (0.7 + 0.8 + 0.6) / 3  # 0.7000000000000001, as in a recorded run
    assert tie > 0.7
    assert judge({"noisy": _arm(final=tie)}, 0.7) == {"student_beats_noisy_teacher": False}
    assert judge({"noisy": _arm(final=0.75)}, 0.7) == {"student_beats_noisy_teacher": True}
