"""Hindsight labels (``adapter.pair_label=achieved``): on a real MiniGrid task, a student that ignores a teacher
who always says "explore" and plays the right plan instead is recorded as having achieved the right plans, and
those become the adapter's training pairs. The advice source is a fake (the Ray teacher is tested elsewhere)."""

from __future__ import annotations

import dataclasses

from test_guided import Corridor  # walk right 3 cells; its text changes at every cell

from llmrl.config import Config, load_config
from llmrl.envs.guided import TeacherGuidedEnv
from llmrl.envs.minigrid.adapter import make_task
from llmrl.envs.minigrid.planner import EXPLORE, correct_option
from llmrl.envs.registry import family_spec
from llmrl.feedback.pairs import pairs_from_episode
from llmrl.messages import Advice


class AlwaysExplore:
    """A wrong teacher: every plan but "explore" gets probability 0."""

    def request(self, query):
        return Advice(query.options, tuple(float(o == EXPLORE) for o in query.options))

    def note_advised_step(self, advice):
        pass


class Sink:
    def __init__(self):
        self.summaries = []

    def send(self, summary):
        self.summaries.append(summary)


def play_the_right_plan(cfg: Config, seed: int = 3):
    """One SimpleDoorKey episode in which the student acts by the scripted planner, not by the advice."""
    task, sink = make_task(cfg.env, seed), Sink()
    env = TeacherGuidedEnv(task, cfg, AlwaysExplore(), sink)
    env.reset(seed=seed)
    done = False
    while not done:
        action = task.option_action(correct_option(task.state_text(), task.options()))
        _, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    (summary,) = sink.summaries
    return summary


def test_the_student_s_plans_are_recorded_and_become_pairs_where_the_teacher_was_wrong():
    cfg = load_config(None, ["env.name=SimpleDoorKey", "teacher.backend=hf", "teacher.hf.model=unused-here",
                             "adapter.enabled=true", "adapter.pair_label=achieved"])
    taught = set()
    for seed in range(5):
        summary = play_the_right_plan(cfg, seed)
        assert summary.success and all(o.option == EXPLORE for o in summary.outcomes)
        pairs = pairs_from_episode(summary, "episode", label="achieved")
        assert pairs
        for p in pairs:  # each pair is the student's plan for a state in which the teacher had said "explore"
            assert p.plan in p.query.options and p.plan == correct_option(p.query.state_text, p.query.options), p
        taught |= {p.plan.split(",")[-1].split()[0] for p in pairs}  # explore / pick (up) / open
        # The advised label teaches only what the teacher said and the student completed: never the key.
        assert all(p.plan == EXPLORE for p in pairs_from_episode(summary, "episode"))
    assert taught == {"explore", "pick", "open"}, taught  # SimpleDoorKey ends when the door opens


def test_nothing_is_recorded_unless_the_adapter_trains_on_hindsight_labels():
    off = play_the_right_plan(load_config(None, ["env.name=SimpleDoorKey"]))
    assert off.success and all(o.achieved == "" for o in off.outcomes)


def test_a_family_without_a_discovering_option_gets_the_skill_the_student_matched():
    class AlwaysWait:
        def request(self, query):
            return Advice(query.options, tuple(float(o == "wait") for o in query.options))

        def note_advised_step(self, advice):
            pass

    cfg = load_config(None, ["teacher.backend=hf", "teacher.hf.model=unused-here", "adapter.enabled=true",
                             "adapter.pair_label=achieved"])
    spec = dataclasses.replace(family_spec("SimpleDoorKey"), hindsight_explore="")
    sink = Sink()
    env = TeacherGuidedEnv(Corridor(), cfg, AlwaysWait(), sink, spec=spec)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step(1)  # the student walks right, whatever the teacher says
    (summary,) = sink.summaries
    assert [o.option for o in summary.outcomes] == ["wait"] * 3
    # Two moves ended with nothing finished but the "go right" skill matched; at the end both options read as
    # done (the corridor's progress is shared), and the one the student acted like wins.
    assert [o.achieved for o in summary.outcomes] == ["go right"] * 3
