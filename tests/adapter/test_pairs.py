"""Adapter training pairs: which outcomes become pairs (credit), de-duplication, bounds, the cursor, checkpoints."""

from __future__ import annotations

import pytest
from adapter_episodes import DOOR_STATE, KEY_STATE, OPTIONS, episode, outcome, pair

from llmrl.config import FeedbackConfig
from llmrl.feedback.actor import PAIRS_KEY, FeedbackService
from llmrl.feedback.pairs import PairLog, pairs_from_episode


def test_episode_credit_takes_completed_plans_of_successful_episodes_only():
    won = episode(True, outcome(KEY_STATE, OPTIONS[1], 2), outcome(DOOR_STATE, OPTIONS[2], 1))
    lost = episode(False, outcome(KEY_STATE, OPTIONS[0], 1, 1))
    pairs = pairs_from_episode(won, "episode")
    assert [(p.query.state_text, p.plan) for p in pairs] == [(KEY_STATE, OPTIONS[1])]  # the unfinished plan is out
    assert pairs[0].query.options == OPTIONS and pairs[0].query.family == "minigrid"
    assert pairs_from_episode(lost, "episode") == []


def test_plan_credit_takes_completed_plans_whatever_the_episode():
    lost = episode(False, outcome(KEY_STATE, OPTIONS[0], 1, 1), outcome(DOOR_STATE, OPTIONS[2], 0))
    assert [p.plan for p in pairs_from_episode(lost, "plan")] == [OPTIONS[0]]


def test_outcomes_without_their_query_are_not_pairs():
    # No options recorded (an older runner), or a plan that is not among them: no prompt can be rebuilt.
    ep = episode(True, outcome(KEY_STATE, OPTIONS[1], 2, options=()), outcome(KEY_STATE, "fly", 2))
    assert pairs_from_episode(ep, "episode") == []


def test_hindsight_labels_teach_the_plan_the_student_finished_not_the_advised_one():
    # The teacher said "explore" by the key; the student fetched the key instead, and the episode succeeded.
    won = episode(True, outcome(KEY_STATE, OPTIONS[0], 0, 1, achieved=OPTIONS[1]),
                  outcome(DOOR_STATE, OPTIONS[2], 2, achieved=OPTIONS[2]),
                  outcome("Agent sees <door (open)>, holds <key>.", OPTIONS[0], 0, 1))  # nothing done: no pair
    # Advised labels: only the advice the student completed, so the key state teaches nothing.
    assert [p.query.state_text for p in pairs_from_episode(won, "episode")] == [DOOR_STATE]
    hindsight = pairs_from_episode(won, "episode", label="achieved")
    assert [(p.query.state_text, p.plan) for p in hindsight] == [(KEY_STATE, OPTIONS[1]), (DOOR_STATE, OPTIONS[2])]
    assert hindsight[0].query.options == OPTIONS
    lost = episode(False, outcome(KEY_STATE, OPTIONS[0], 0, 1, achieved=OPTIONS[1]))
    assert pairs_from_episode(lost, "episode", label="achieved") == []
    assert [p.plan for p in pairs_from_episode(lost, "plan", label="achieved")] == [OPTIONS[1]]


def test_hindsight_takes_each_state_s_last_visit_so_an_undone_detour_is_not_taught():
    # The student first took the wrong turn from the key state, came back to it, and then did the right thing.
    detour = episode(True, outcome(KEY_STATE, OPTIONS[1], 0, achieved=OPTIONS[0]),
                     outcome(DOOR_STATE, OPTIONS[2], 0, achieved=OPTIONS[0]),
                     outcome(KEY_STATE, OPTIONS[1], 2, achieved=OPTIONS[1]))
    got = [(p.query.state_text, p.plan) for p in pairs_from_episode(detour, "episode", label="achieved")]
    assert got == [(DOOR_STATE, OPTIONS[0]), (KEY_STATE, OPTIONS[1])]
    log = PairLog(10, "episode", label="achieved")
    assert log.record([detour]) == 2 and {p.plan for p in log.pairs()} == {OPTIONS[0], OPTIONS[1]}
    # A last visit that finished nothing (or an option that is not the query's) teaches nothing for its state.
    undone = episode(True, *detour.outcomes, outcome(KEY_STATE, OPTIONS[1], 0),
                     outcome(DOOR_STATE, OPTIONS[2], 0, achieved="fly"))
    assert pairs_from_episode(undone, "episode", label="achieved") == []


def test_hindsight_log_keeps_each_state_s_majority_plan_and_serves_a_change_as_a_new_pair():
    log = PairLog(10, "episode", label="achieved")
    right, wrong = OPTIONS[1], OPTIONS[2]

    def won(plan):
        return episode(True, outcome(KEY_STATE, OPTIONS[0], 0, achieved=plan))

    assert log.record([won(wrong)]) == 1 and [p.plan for p in log.pairs()] == [wrong]
    cursor = log.since(0).cursor
    assert log.record([won(right)]) == 0  # a 1-1 tie: the plan kept stays
    assert log.record([won(right)]) == 1 and [p.plan for p in log.pairs()] == [right]  # 2-1: the majority wins
    assert [p.plan for p in log.since(cursor).pairs] == [right]  # served again, as new
    assert log.record([won(wrong)]) == 0 and len(log) == 1  # 2-2: still the kept one, and one pair per state
    # The trainer's log (filled by add) replaces a state's pair with the newer one instead of keeping both.
    trainer = PairLog(10, "", label="achieved")
    assert trainer.add([pair(KEY_STATE, wrong)]) == 1 and trainer.add([pair(KEY_STATE, right)]) == 1
    assert [p.plan for p in trainer.pairs()] == [right]
    # The votes are part of the checkpointed state.
    again = PairLog(10, "episode", label="achieved")
    again.load_state_dict(log.state_dict())
    assert again.pairs() == log.pairs() and again.record([won(wrong)]) == 1  # 3-2 for the wrong plan now
    old = PairLog(10, "episode", label="achieved")
    old.load_state_dict({k: v for k, v in log.state_dict().items() if k != "votes"})  # an older checkpoint
    assert old.pairs() == log.pairs()


def test_a_state_s_hindsight_pair_is_held_back_until_min_votes_episodes_voted_on_it():
    log = PairLog(10, "episode", label="achieved", min_votes=3)
    young, grown = OPTIONS[0], OPTIONS[1]

    def won(plan):
        return episode(True, outcome(KEY_STATE, OPTIONS[0], 0, achieved=plan),
                       outcome(DOOR_STATE, OPTIONS[2], 2, achieved=OPTIONS[2]))

    log.record([won(young), won(young)])
    assert log.pairs() == [] and log.since(0).pairs == () and log.since(0).total_pairs == 0
    cursor = log.since(0).cursor  # a trainer that already polled: the held states must still reach it
    log.record([won(grown)])  # 3 votes each: both states come of age, the key state with its 2-1 majority
    assert [(p.query.state_text, p.plan) for p in log.since(cursor).pairs] == [(KEY_STATE, young),
                                                                              (DOOR_STATE, OPTIONS[2])]
    log.record([won(grown)])  # 2-2: the kept plan stays, nothing new
    assert log.since(log.since(0).cursor).pairs == ()
    log.record([won(grown)])  # 3-2: the grown student's plan, served as new
    assert [p.plan for p in log.since(cursor).pairs if p.query.state_text == KEY_STATE] == [grown]
    # Held votes are checkpointed: a restored log goes on counting them.
    held = PairLog(10, "episode", label="achieved", min_votes=3)
    held.record([won(young), won(young)])
    again = PairLog(10, "episode", label="achieved", min_votes=3)
    again.load_state_dict(held.state_dict())
    assert again.pairs() == [] and (again.record([won(grown)]), len(again.pairs())) == (2, 2)
    with pytest.raises(ValueError, match="min_votes"):
        PairLog(10, "episode", label="achieved", min_votes=0)


def test_log_deduplicates_bounds_and_serves_what_is_new_since_a_cursor():
    log = PairLog(max_pairs=2, credit="episode")
    assert log.add([pair(KEY_STATE, OPTIONS[1]), pair(KEY_STATE, OPTIONS[1])]) == 1
    first = log.since(0)
    assert len(first.pairs) == 1 and first.cursor == 1 and log.duplicates == 1
    assert log.add([pair(DOOR_STATE, OPTIONS[2]), pair(KEY_STATE, OPTIONS[0])]) == 2
    assert len(log) == 2  # bounded: the least recently seen pair went
    assert [p.plan for p in log.since(first.cursor).pairs] == [OPTIONS[2], OPTIONS[0]]
    assert log.since(log.since(0).cursor).pairs == ()


def test_log_state_round_trips():
    log = PairLog(10, "episode")
    log.record([episode(True, outcome(KEY_STATE, OPTIONS[1], 2))])
    again = PairLog(10, "episode")
    again.load_state_dict(log.state_dict())
    assert again.pairs() == log.pairs() and again.since(0) == log.since(0)


def test_feedback_actor_keeps_pairs_only_with_the_adapter_and_checkpoints_them():
    cfg = FeedbackConfig(credit="episode", publish_every=1)
    off = FeedbackService(cfg, "task")
    off.record([episode(True, outcome(KEY_STATE, OPTIONS[1], 2))])
    assert off.pairs_since(0).pairs == () and PAIRS_KEY not in off.state_dict()
    on = FeedbackService(cfg, "task", max_pairs=100)
    on.record([episode(True, outcome(KEY_STATE, OPTIONS[1], 2)), episode(False)])
    batch = on.pairs_since(0)
    assert len(batch.pairs) == 1 and batch.episodes == 2
    restored = FeedbackService(cfg, "task", max_pairs=100)
    restored.load_state_dict(on.state_dict())
    assert restored.pairs_since(0) == batch
    assert restored.bank.episodes == 2
    # adapter.min_label_votes reaches the actor's log: one credited episode is too few votes for a hindsight pair.
    votes = FeedbackService(cfg, "task", max_pairs=100, pair_label="achieved", min_label_votes=2)
    votes.record([episode(True, outcome(KEY_STATE, OPTIONS[0], 0, achieved=OPTIONS[1]))])
    assert votes.pairs_since(0).pairs == ()
    votes.record([episode(True, outcome(KEY_STATE, OPTIONS[0], 0, achieved=OPTIONS[1]))])
    assert [p.plan for p in votes.pairs_since(0).pairs] == [OPTIONS[1]]


def test_bad_bound_is_refused():
    with pytest.raises(ValueError, match="max_pairs"):
        PairLog(0, "plan")
