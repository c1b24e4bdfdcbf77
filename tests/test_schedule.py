from llmrl.config import DistillConfig
from llmrl.schedule import distill_coef


def test_llm4teach_schedule():
    cfg = DistillConfig(coef_start=10.0, coef_decrement=0.005, coef_floor=0.1, cutoff_updates=3000)
    assert distill_coef(0, cfg) == 10.0
    assert abs(distill_coef(100, cfg) - 9.5) < 1e-9
    assert distill_coef(1980, cfg) == 0.1  # reaches the floor
    assert distill_coef(2500, cfg) == 0.1
    assert distill_coef(3000, cfg) == 0.0  # removed after the cut-off


def test_no_cutoff_keeps_floor():
    cfg = DistillConfig(coef_start=1.0, coef_decrement=0.5, coef_floor=0.2, cutoff_updates=0)
    assert distill_coef(10**6, cfg) == 0.2
