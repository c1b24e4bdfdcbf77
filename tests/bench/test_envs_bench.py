"""``llmrl bench envs`` on a few ids: real envs, the real planner and skills, SmolLM2's tokenizer when it is cached
(``llmrl models fetch smollm2-135m``, as CI does; else the words estimate, which the test then asks for), the
table written where asked."""

from __future__ import annotations

from llmrl.bench import envs
from llmrl.cli import main as cli_main
from llmrl.models import cached_folder, lookup


def test_table_over_a_few_ids(tmp_path):
    out = tmp_path / "envs.md"
    counting = ["--tokenizer", "smollm2-135m"] if cached_folder(lookup("smollm2-135m")) else ["--words"]
    rc = cli_main(["bench", "envs", "--episodes", "2", "--ids", "BabyAI-GoToRedBallNoDists-v0",
                   "MiniGrid-Unlock-v0", "MiniGrid-MemoryS7-v0", "--out", str(out), *counting])
    text = out.read_text()
    assert rc == 0 and "| BabyAI-GoToRedBallNoDists-v0 | 1 | - | 1 |" in text and "| MiniGrid-Unlock-v0 | 1 | - | 1 |" in text
    assert "MiniGrid-MemoryS7-v0" in text and "load" in text and "--episodes 2" in text


def test_a_tiny_prompt_budget_is_reported_as_not_fitting():
    row = envs.run_id("MiniGrid-Unlock-v0", 1, lambda text: len(text.split()), max_prompt_tokens=10)
    assert row["crash"] is None and row["fit"] == 0 and row["max_tokens"] > 10


def test_unknown_id_is_a_one_line_error(capsys):
    assert cli_main(["bench", "envs", "--ids", "MiniGrid-Nope-v0", "--words"]) == 2
    assert "unknown ids MiniGrid-Nope-v0" in capsys.readouterr().err


def test_every_known_limit_names_a_registered_family_of_ids():
    from llmrl.envs.registered.family import registered_ids

    for key, _ in envs.LIMITS:
        assert any(key in i for i in registered_ids()), key


def test_a_missing_tokenizer_is_a_one_line_error(tmp_path, capsys):
    assert cli_main(["bench", "envs", "--ids", "MiniGrid-Unlock-v0", "--tokenizer", str(tmp_path / "none")]) == 2
    assert "--tokenizer" in capsys.readouterr().err


def test_below_the_goal_the_bot_alone_is_measured_and_an_unbuildable_id_is_listed(tmp_path):
    """BabyAIBot alone loops on UnlockToUnlock seed 4 (of 0..4), as the teacher does: the row says the bot does not
    solve the level. A WFC maze (minigrid lacks its images here) is listed as not built, not as a crash."""
    row = envs.run_id("BabyAI-UnlockToUnlock-v0", 5, lambda text: 1, max_prompt_tokens=10)
    assert row["crash"] is None and row["success"] == row["bot_alone"] == 0.8
    assert "a level the bot does not solve" in envs.table([row])
    assert envs.run_id("BabyAI-GoToRedBallNoDists-v0", 2, lambda text: 1, 10)["bot_alone"] is None  # at the goal
    wfc = envs.run_id("MiniGrid-WFC-MazeSimple-v0", 1, lambda text: 1, 10)
    if wfc["unbuildable"] is not None:
        assert wfc["crash"] is None and "NOT BUILT env.name: minigrid cannot build" in envs.table([wfc])
