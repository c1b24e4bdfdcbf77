import json
import pickle

import pytest

from llmrl.config import FeedbackConfig
from llmrl.feedback.bank import PromptBank, trial_succeeded
from llmrl.messages import AdviceOutcome, EpisodeSummary

TASK = "Open the locked door."
S_KEY = "Agent sees <key>, <door>, holds <nothing>."
S_DOOR = "Agent sees <door>, holds <key>."
GET_KEY = "go to key, pick up key"
OPEN = "go to door, open door"
EXPLORE = "explore"


def cfg(**kw) -> FeedbackConfig:
    base = dict(publish_every=1, max_exemplars=3, max_feedback_lines=8, min_trials=3, max_tracked_states=100)
    base.update(kw)
    return FeedbackConfig(**base)


def outcome(state: str, option: str, done: int, total: int = 2) -> AdviceOutcome:
    return AdviceOutcome(state_text=state, option=option, steps_completed=done, steps_total=total)


def episode(success: bool, *outcomes: AdviceOutcome, **kw) -> EpisodeSummary:
    family = kw.pop("family", "minigrid")
    return EpisodeSummary(family=family, task="SimpleDoorKey", success=success, episode_return=float(success),
                          length=10, outcomes=tuple(outcomes), **kw)


def test_success_definition():
    assert trial_succeeded(outcome(S_KEY, GET_KEY, 2, 2))
    assert not trial_succeeded(outcome(S_KEY, GET_KEY, 1, 2))
    assert not trial_succeeded(outcome(S_KEY, GET_KEY, 0, 0))


def test_episode_credit_needs_the_episode_to_succeed():
    done = outcome(S_KEY, GET_KEY, 2, 2)
    assert trial_succeeded(done, episode_success=False, credit="plan")
    assert not trial_succeeded(done, episode_success=False, credit="episode")
    assert trial_succeeded(done, episode_success=True, credit="episode")
    assert not trial_succeeded(outcome(S_KEY, GET_KEY, 1, 2), episode_success=True, credit="episode")
    with pytest.raises(ValueError, match="credit"):
        trial_succeeded(done, credit="advantage")
    with pytest.raises(ValueError, match="feedback.credit"):
        PromptBank(cfg(credit="advantage"), TASK)


def test_episode_credit_stops_crediting_easy_plans_of_failed_episodes():
    # "explore" is completed every time but only the episodes that went for the key succeed: plan credit
    # rates explore best, task credit rates the key plan best.
    episodes = [episode(False, outcome(S_KEY, EXPLORE, 1, 1)) for _ in range(4)]
    episodes += [episode(True, outcome(S_KEY, GET_KEY, 2)), episode(False, outcome(S_KEY, GET_KEY, 1))]
    rates = {}
    for credit in ("plan", "episode"):
        bank = PromptBank(cfg(credit=credit, publish_every=len(episodes)), TASK)
        bank.record(episodes)
        stats = bank.snapshot().success_lookup()
        rates[credit] = {o: stats[(S_KEY, o)].success_estimate for o in (EXPLORE, GET_KEY)}
        assert bank.snapshot().exemplars == (f"State: {S_KEY}\nPlan: {GET_KEY}",)  # same evidence either way
    assert rates["plan"][EXPLORE] > rates["plan"][GET_KEY]
    assert rates["episode"][GET_KEY] > rates["episode"][EXPLORE]
    assert rates["episode"] == {EXPLORE: pytest.approx(1 / 6), GET_KEY: pytest.approx(2 / 4)}


def test_record_aggregates_pairs_and_laplace_estimates():
    bank = PromptBank(cfg(publish_every=3), TASK)
    n = bank.record([
        episode(True, outcome(S_KEY, GET_KEY, 2), outcome(S_DOOR, OPEN, 2)),
        episode(False, outcome(S_KEY, GET_KEY, 1)),
        episode(False, outcome(S_KEY, GET_KEY, 2), outcome(S_DOOR, OPEN, 0), outcome(S_KEY, EXPLORE, 0, 0)),
    ])
    assert n == 3
    assert bank.episodes == 3 and bank.successes == 1
    assert bank.ignored_outcomes == 1  # steps_total=0 is not a trial
    stats = bank.snapshot().success_lookup()
    assert (stats[(S_KEY, GET_KEY)].successes, stats[(S_KEY, GET_KEY)].trials) == (2, 3)
    assert stats[(S_KEY, GET_KEY)].success_estimate == pytest.approx(3 / 5)
    assert stats[(S_DOOR, OPEN)].success_estimate == pytest.approx(2 / 4)
    assert (S_KEY, EXPLORE) not in stats
    assert dict(bank.snapshot().subgoal_success) == {GET_KEY: pytest.approx(2 / 3), OPEN: pytest.approx(1 / 2)}
    assert bank.recent_success_rate == pytest.approx(1 / 3)  # window = publish_every = 3 episodes


def test_exemplars_only_from_successful_episodes():
    bank = PromptBank(cfg(), TASK)
    bank.record([
        episode(False, outcome(S_KEY, EXPLORE, 1, 1)),  # completed advice, but the episode failed
        episode(True, outcome(S_KEY, GET_KEY, 2), outcome(S_DOOR, OPEN, 1)),  # OPEN not completed
        episode(True, outcome(S_KEY, GET_KEY, 2)),
    ])
    assert bank.snapshot().exemplars == (f"State: {S_KEY}\nPlan: {GET_KEY}",)


def test_exemplars_bounded_deduplicated_best_first():
    bank = PromptBank(cfg(max_exemplars=2), TASK)
    states = [f"state {i}" for i in range(4)]
    summaries = [episode(True, outcome(s, GET_KEY, 2)) for s in states]
    summaries += [episode(True, outcome(states[0], GET_KEY, 2))] * 3
    summaries += [episode(True, outcome(states[0], OPEN, 2))]  # a second plan for state 0 never doubles it
    bank.record(summaries)
    ex = bank.snapshot().exemplars
    assert len(ex) == 2 and len(set(ex)) == 2
    assert ex[0] == f"State: {states[0]}\nPlan: {GET_KEY}"  # 4/4 beats 1/1 ...
    assert ex[1] == f"State: {states[3]}\nPlan: {GET_KEY}"  # ... and among 1/1 the most recent wins


def test_feedback_lines_format_and_min_trials():
    bank = PromptBank(cfg(min_trials=3, max_feedback_lines=2), TASK)
    bank.record([episode(False, outcome(S_KEY, GET_KEY, 2)) for _ in range(4)])
    bank.record([episode(False, outcome(S_DOOR, OPEN, 0)) for _ in range(3)])
    bank.record([episode(False, outcome(S_KEY, EXPLORE, 0)) for _ in range(2)])  # below min_trials
    lines = bank.snapshot().feedback_lines
    assert len(lines) == 2
    assert f"In state '{S_KEY}', plan '{GET_KEY}' succeeded 4/4 times." in lines
    assert f"In state '{S_DOOR}', plan '{OPEN}' succeeded 0/3 times." in lines
    assert not any(EXPLORE in line for line in lines)


def test_feedback_lines_prefer_informative_pairs():
    bank = PromptBank(cfg(min_trials=3, max_feedback_lines=1), TASK)
    # 10 pairs at the typical rate (1/2) and one that always fails: the outlier is the informative line.
    for i in range(10):
        bank.record([episode(False, outcome(f"s{i}", GET_KEY, 2)), episode(False, outcome(f"s{i}", GET_KEY, 0))] * 2)
    bank.record([episode(False, outcome(S_DOOR, OPEN, 0))] * 4)
    assert bank.snapshot().feedback_lines == (f"In state '{S_DOOR}', plan '{OPEN}' succeeded 0/4 times.",)


def test_version_bumps_exactly_every_publish_every_episodes():
    bank = PromptBank(cfg(publish_every=5), TASK)
    assert bank.version == 0 and bank.snapshot().option_stats == ()
    seen = []
    for i in range(12):
        bank.record([episode(True, outcome(S_KEY, GET_KEY, 2))])
        seen.append(bank.version)
    assert seen == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]
    # Snapshot k reflects exactly the first k * publish_every episodes, even mid-way to the next version.
    assert bank.snapshot().success_lookup()[(S_KEY, GET_KEY)].trials == 10
    assert bank.option_stat(S_KEY, GET_KEY).trials == 12
    # One batch crossing two boundaries publishes twice.
    bank.record([episode(False)] * 10)
    assert bank.version == 4 and bank.episodes == 22
    assert bank.snapshot().task_description == TASK


def test_snapshot_is_immutable_and_picklable():
    bank = PromptBank(cfg(), TASK)
    bank.record([episode(True, outcome(S_KEY, GET_KEY, 2))])
    snap = bank.snapshot()
    with pytest.raises(AttributeError):
        snap.version = 7
    assert pickle.loads(pickle.dumps(snap)) == snap
    bank.record([episode(False, outcome(S_KEY, GET_KEY, 0))])
    assert snap.success_lookup()[(S_KEY, GET_KEY)].trials == 1  # an old snapshot never changes


def test_eviction_drops_least_recently_updated():
    bank = PromptBank(cfg(max_tracked_states=3), TASK)
    for s in ["a", "b", "c"]:
        bank.record([episode(False, outcome(s, GET_KEY, 0))])
    bank.record([episode(False, outcome("a", GET_KEY, 0))])  # "a" is now the most recently updated
    bank.record([episode(False, outcome("d", GET_KEY, 0))])
    assert bank.tracked_pairs == 3
    assert {s.state_text for s in bank.snapshot().option_stats} == {"a", "c", "d"}
    bank.record([episode(False, *(outcome(f"x{i}", f"opt{i}", 0) for i in range(10)))])
    assert bank.tracked_pairs == 3 and len(bank.snapshot().subgoal_success) == 3


def test_record_rejects_wrong_types_without_partial_updates():
    bank = PromptBank(cfg(), TASK)
    with pytest.raises(TypeError):
        bank.record([episode(True), {"success": True}])
    assert bank.episodes == 0


def test_comprehension_from_crafter_episodes():
    bank = PromptBank(cfg(), "Crafter")
    assert bank.snapshot().comprehension is None
    bank.record([episode(False, outcome("s", "place table", 1, 1), family="crafter",
                         recent_actions=("place_table", "place_table"))])
    assert bank.snapshot().comprehension > 0.9
    bank.record([episode(False, family="crafter", recent_actions=("noop", "move_left"),
                         subgoals_completed=("make iron pickaxe",))])
    assert bank.snapshot().comprehension < 0.3


def test_state_dict_round_trip():
    c = cfg(publish_every=3)
    bank = PromptBank(c, TASK)
    bank.record([
        episode(True, outcome(S_KEY, GET_KEY, 2), outcome(S_DOOR, OPEN, 2)),
        episode(False, outcome(S_KEY, GET_KEY, 1), outcome(S_KEY, EXPLORE, 0, 0)),
        episode(True, outcome(S_KEY, GET_KEY, 2), family="crafter", recent_actions=("do",)),
        episode(False, outcome(S_DOOR, OPEN, 0)),  # recorded after the last publish
    ])
    d = json.loads(json.dumps(bank.state_dict()))  # plain JSON data
    restored = PromptBank.from_state_dict(c, d)
    assert restored.snapshot() == bank.snapshot()
    assert restored.state_dict() == d
    assert restored.version == 1 and restored.episodes == 4
    # Both go on identically: the unpublished episode is not lost.
    more = [episode(True, outcome(S_DOOR, OPEN, 2))] * 2
    bank.record(more)
    restored.record(more)
    assert restored.snapshot() == bank.snapshot() and restored.version == 2
    with pytest.raises(ValueError):
        PromptBank.from_state_dict(c, {**d, "format": 99})


def test_state_dict_keeps_its_credit_and_refuses_to_mix_credits():
    bank = PromptBank(cfg(credit="episode"), TASK)
    bank.record([episode(False, outcome(S_KEY, GET_KEY, 2))])
    d = json.loads(json.dumps(bank.state_dict()))
    assert d["credit"] == "episode"
    assert PromptBank.from_state_dict(cfg(credit="episode"), d).option_stat(S_KEY, GET_KEY).trials == 1
    with pytest.raises(ValueError, match="feedback.credit=episode"):
        PromptBank.from_state_dict(cfg(credit="plan"), d)
    legacy = {k: v for k, v in d.items() if k != "credit"}  # saved before the field existed: plan credit
    assert PromptBank.from_state_dict(cfg(credit="plan"), legacy).episodes == 1


def test_from_state_dict_reapplies_smaller_bound():
    bank = PromptBank(cfg(), TASK)
    bank.record([episode(False, outcome(f"s{i}", GET_KEY, 0)) for i in range(10)])
    restored = PromptBank.from_state_dict(cfg(max_tracked_states=4), bank.state_dict())
    assert restored.tracked_pairs == 4
    assert restored.option_stat("s9", GET_KEY).trials == 1 and restored.option_stat("s0", GET_KEY).trials == 0
