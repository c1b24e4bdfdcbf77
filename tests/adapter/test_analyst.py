"""adapter.role=analyst without a running service: the analyst's prompt, the teacher prompt's analysis line, the
analyst's training pairs and text, and the config that selects the role."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrl.adapter.analyst import ANSWER_CUE, AnalystPrompts, analysis_continuation, analyst_prompt, clean_analysis
from llmrl.adapter.data import pair_text
from llmrl.config import ConfigError, FeedbackConfig, analyst_config, load_config
from llmrl.feedback.actor import FeedbackService
from llmrl.feedback.pairs import PairLog, pairs_from_episode
from llmrl.messages import AdviceOutcome, EpisodeSummary, PromptBankSnapshot, TeacherQuery, TrainingPair
from llmrl.teacher.prompting import build_prompt

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OPTIONS = ("collect wood", "place table", "explore")
STATE = "You see tree, grass. Nearby: tree 2 steps north. Inventory: wood 1."
CONTEXT = "Recently completed: collect wood."
ANALYSIS = "The agent has wood and a tree is near, so it should collect more wood first."
QUERY = TeacherQuery("crafter", "Crafter", STATE, OPTIONS, CONTEXT)
BANK = PromptBankSnapshot(version=3, task_description="You are playing Crafter.", comprehension=0.4213)


# -- the analyst's prompt ----------------------------------------------------------------------------------------


def test_the_analyst_prompt_holds_the_state_recent_sub_goals_options_and_comprehension_score():
    text = analyst_prompt(QUERY, BANK)
    lines = text.splitlines()
    assert lines[0].startswith("Analyse the agent's situation")
    assert f"State: {STATE}" in lines and f"Context: {CONTEXT}" in lines
    assert "Allowed sub-goals: collect wood; place table; explore." in lines
    assert any(line.startswith("Comprehension score: 0.42 ") for line in lines)  # the bank's score, 2 decimals
    assert "You are playing Crafter." not in text  # the task description is the teacher's, not repeated here


def test_the_analyst_prompt_leaves_out_what_the_query_or_bank_does_not_have():
    bare = analyst_prompt(TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>.", ("explore",)),
                          PromptBankSnapshot(version=0, task_description="Open the door."))
    assert "Context:" not in bare and "Comprehension score" not in bare  # MiniGrid has no score
    assert "Allowed plans: explore." in bare  # the family's word for an option
    # The score is part of what the analyst reads, so a new score is a new prompt (and a new cache key).
    assert analyst_prompt(QUERY, BANK) != analyst_prompt(QUERY, PromptBankSnapshot(4, "x", comprehension=0.9))


def test_rendering_plain_text_and_through_a_chat_template(tiny_lm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    assert not getattr(tok, "chat_template", None)
    assert AnalystPrompts(tok).build(QUERY, BANK) == analyst_prompt(QUERY, BANK) + "\n" + ANSWER_CUE
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}" \
                        "{% if add_generation_prompt %}<assistant>{% endif %}"
    chat = AnalystPrompts(tok).build(QUERY, BANK)
    assert chat == f"<user>{analyst_prompt(QUERY, BANK)}</user><assistant>{ANSWER_CUE}"


def test_an_analysis_is_the_first_non_empty_line_of_what_the_analyst_wrote():
    assert clean_analysis("\n  Collect   wood first.\nPlan: explore") == "Collect wood first."
    assert clean_analysis(" \n\t\n") == "" and clean_analysis("") == ""
    assert analysis_continuation("  Collect wood first. ") == " Collect wood first.\n"


# -- the teacher's prompt ------------------------------------------------------------------------------------------


def test_the_analysis_goes_into_the_teacher_prompt_after_the_context_and_changes_the_query_key():
    import dataclasses

    plain = build_prompt(QUERY, BANK)
    analysed_query = dataclasses.replace(QUERY, analysis=ANALYSIS)
    analysed = build_prompt(analysed_query, BANK)
    assert "Analysis:" not in plain
    lines = analysed.splitlines()
    assert lines[lines.index(f"Context: {CONTEXT}") + 1] == f"Analysis: {ANALYSIS}"
    assert analysed.replace(f"Analysis: {ANALYSIS}\n", "") == plain  # nothing else changes
    assert analysed_query.key() != QUERY.key()


# -- training pairs ------------------------------------------------------------------------------------------------


def _episode(*outcomes: AdviceOutcome, success: bool = False) -> EpisodeSummary:
    return EpisodeSummary("crafter", "Crafter", success, 0.0, 50, tuple(outcomes))


def _outcome(option: str, done: int, analysis: str, state: str = STATE) -> AdviceOutcome:
    return AdviceOutcome(state, option, done, 1, 1.0, OPTIONS, CONTEXT, analysis)


def test_analyst_pairs_are_the_analyses_that_preceded_completed_sub_goals():
    ep = _episode(_outcome("collect wood", 1, ANALYSIS), _outcome("place table", 0, "Place a table now."),
                  _outcome("explore", 1, ""))
    pairs = pairs_from_episode(ep, "plan", role="analyst")
    # Completed with an analysis: a pair; not completed: none; completed without an analysis: nothing to learn.
    assert [(p.plan, p.analysis) for p in pairs] == [("collect wood", ANALYSIS)]
    assert pairs[0].query == QUERY
    assert pairs_from_episode(ep, "episode", role="analyst") == []  # credit=episode: the episode must succeed
    # The teacher role takes the same outcomes as plan pairs and ignores the analyses.
    assert [(p.plan, p.analysis) for p in pairs_from_episode(ep, "plan")] == [("collect wood", ""), ("explore", "")]


def test_the_feedback_actor_keeps_analyst_pairs_across_a_checkpoint():
    fb = FeedbackService(FeedbackConfig(credit="plan"), "Crafter.", max_pairs=10, pair_role="analyst")
    fb.record([_episode(_outcome("collect wood", 1, ANALYSIS), _outcome("collect wood", 1, "Other words."))])
    assert {p.analysis for p in fb.pairs_since(0).pairs} == {ANALYSIS, "Other words."}  # two analyses, two pairs
    restored = FeedbackService(FeedbackConfig(credit="plan"), "Crafter.", max_pairs=10, pair_role="analyst")
    restored.load_state_dict(fb.state_dict())
    assert restored.pairs_since(0).pairs == fb.pairs_since(0).pairs


def test_pairs_saved_before_the_analyst_existed_still_load():
    log = PairLog(10, "plan")
    state = {"seq": 1, "episodes": 1, "pairs": [[1, "crafter", "Crafter", STATE, list(OPTIONS), CONTEXT, "explore"]]}
    log.load_state_dict(state)
    assert log.pairs() == [TrainingPair(QUERY, "explore")]


def test_an_analyst_pair_is_trained_as_analyst_prompt_to_analysis(tiny_lm_dir):
    from transformers import AutoTokenizer

    prompts = AnalystPrompts(AutoTokenizer.from_pretrained(tiny_lm_dir))
    pair = TrainingPair(QUERY, "collect wood", ANALYSIS)
    assert pair_text(pair, BANK, prompts, analyst=True) == (prompts.build(QUERY, BANK), f" {ANALYSIS}\n")
    assert pair_text(pair, BANK) == (build_prompt(QUERY, BANK), " collect wood\n")  # the teacher role's text
    assert pair.key() != TrainingPair(QUERY, "collect wood").key()


# -- config --------------------------------------------------------------------------------------------------------


def test_role_analyst_is_validated_and_selects_the_analyst():
    with pytest.raises(ConfigError, match="adapter.role"):
        load_config(None, ["adapter.role=critic"])
    with pytest.raises(ConfigError, match="adapter.enabled: needs an LM teacher"):  # the scripted teacher reads
        load_config(None, ["adapter.enabled=true", "adapter.role=analyst"])   # no prompt
    for bad, key in (["adapter.analysis_tokens=0"], "adapter.analysis_tokens"), \
            (["adapter.analysis_temperature=-1"], "adapter.analysis_temperature"), \
            (["adapter.analysis_cache_size=0"], "adapter.analysis_cache_size"):
        with pytest.raises(ConfigError, match=key):
            load_config(None, bad)
    lm = ["adapter.enabled=true", "adapter.role=analyst", "teacher.backend=hf", "teacher.hf.model=/m"]
    assert analyst_config(load_config(None, lm)).role == "analyst"
    assert analyst_config(load_config(None, lm[:1] + lm[2:])) is None  # role=teacher: no analyst
    # The teacher LM stays frozen, so a vLLM teacher needs no LoRA support for it.
    vllm = load_config(None, ["adapter.enabled=true", "adapter.role=analyst", "teacher.backend=vllm",
                              "teacher.vllm.model=/m"])
    assert analyst_config(vllm) is not None and not vllm.teacher.vllm.enable_lora


SHIPPED = sorted((CONFIGS / "crafter").glob("*.yaml")) + sorted((CONFIGS / "minigrid").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_crafter_configs_use_the_analyst_and_minigrid_configs_the_teacher(path):
    cfg = load_config(path)
    assert cfg.adapter.role == ("analyst" if path.parent.name == "crafter" else "teacher")
