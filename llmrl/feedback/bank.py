"""The prompt bank: what the student's episodes teach the teacher, as versioned snapshots.

Success definition (used for every statistic here), chosen by ``feedback.credit``:
    A *trial* is one ``AdviceOutcome``: one piece of advice while it was in force. Outcomes with ``steps_total
    <= 0`` carry no progress measure and are not trials (they are counted in ``ignored_outcomes``).

    * ``credit="plan"``: the trial *succeeds* when the student completed every step of the advised option while
      that advice held, ``steps_completed >= steps_total``. This credits the advice itself, not whatever else
      happened later in the episode: in Crafter an outcome for "collect wood" succeeds when wood was collected
      before the teacher moved on, and in MiniGrid a plan "go to key, pick up key" succeeds when the key was
      picked up in the state the plan was given for. Its blind spot: a plan that is easy to complete but does
      not serve the task ("explore", "drop key") scores well (measured: docs/benchmarks/feedback.md).
    * ``credit="episode"``: the plan was completed *and* the episode it belongs to succeeded
      (``EpisodeSummary.success``), a Monte-Carlo task credit: only plans on the way to success score.

    Episode-level success also selects exemplars (completed advice in successful episodes) and feeds the
    episode success rate, whatever the credit.

Publishing: statistics change with every recorded episode, but a new snapshot is published (and ``version``
incremented) only after every ``publish_every``-th episode, because every version invalidates the teacher's
prompt cache. Snapshot k reflects exactly the first k * publish_every episodes.

Everything is bounded: (state, option) pairs and per-option totals by ``max_tracked_states`` (least recently
updated are dropped first), exemplars, feedback lines and the recent-episode window by their config fields.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmrl.config import FeedbackConfig
from llmrl.feedback.comprehension import Embedder, comprehension_score
from llmrl.messages import AdviceOutcome, EpisodeSummary, OptionStat, PromptBankSnapshot

STATE_DICT_FORMAT = 1


CREDITS = ("plan", "episode")


def trial_succeeded(outcome: AdviceOutcome, episode_success: bool = True, credit: str = "plan") -> bool:
    """The module's success definition for one piece of advice (see the module docstring)."""
    if credit not in CREDITS:
        raise ValueError(f"credit must be one of {', '.join(CREDITS)}, got {credit!r}")
    completed = outcome.steps_total > 0 and outcome.steps_completed >= outcome.steps_total
    return completed and (episode_success or credit == "plan")


def exemplar_text(state_text: str, option: str) -> str:
    return f"State: {state_text}\nPlan: {option}"


def feedback_line(state_text: str, option: str, successes: int, trials: int) -> str:
    return f"In state '{state_text}', plan '{option}' succeeded {successes}/{trials} times."


@dataclass(slots=True)
class _PairStat:
    successes: int = 0
    trials: int = 0
    wins: int = 0  # completed trials inside successful episodes: the evidence that makes an exemplar
    last_episode: int = 0  # episode number of the latest update, to prefer recent exemplars on ties

    def estimate(self) -> float:
        return (self.successes + 1.0) / (self.trials + 2.0)


def _snapshot_to_dict(s: PromptBankSnapshot) -> dict[str, Any]:
    return {
        "version": s.version,
        "exemplars": list(s.exemplars),
        "feedback_lines": list(s.feedback_lines),
        "option_stats": [[o.state_text, o.option, o.successes, o.trials] for o in s.option_stats],
        "subgoal_success": [[name, rate] for name, rate in s.subgoal_success],
        "comprehension": s.comprehension,
    }


def _snapshot_from_dict(d: dict[str, Any], task_description: str) -> PromptBankSnapshot:
    return PromptBankSnapshot(
        version=int(d["version"]),
        task_description=task_description,
        exemplars=tuple(d["exemplars"]),
        feedback_lines=tuple(d["feedback_lines"]),
        option_stats=tuple(OptionStat(s, o, int(k), int(n)) for s, o, k, n in d["option_stats"]),
        subgoal_success=tuple((name, float(rate)) for name, rate in d["subgoal_success"]),
        comprehension=d["comprehension"],
    )


def saved_credit(d: dict[str, Any]) -> str:
    """The credit a ``state_dict()`` was counted with (banks saved before the field existed used "plan")."""
    return str(d.get("credit", "plan"))


class PromptBank:
    """Aggregates ``EpisodeSummary`` s into a versioned ``PromptBankSnapshot`` (pure Python, no Ray).

    ``embed`` replaces the comprehension score's default bag-of-words embedding (see ``comprehension``).
    """

    def __init__(self, cfg: FeedbackConfig, task_description: str, embed: Embedder | None = None) -> None:
        if cfg.credit not in CREDITS:
            raise ValueError(f"feedback.credit: must be one of {', '.join(CREDITS)}, got {cfg.credit!r}")
        self.cfg = cfg
        self.task_description = task_description
        self._embed = embed
        # Insertion order = update order (moved to the end on every update), so eviction pops from the front.
        self._pairs: OrderedDict[tuple[str, str], _PairStat] = OrderedDict()
        self._options: OrderedDict[str, list[int]] = OrderedDict()  # option -> [successes, trials], all states
        self._episodes = 0
        self._successes = 0
        self._ignored_outcomes = 0
        self._recent: deque[bool] = deque(maxlen=cfg.publish_every)
        self._comprehension: float | None = None
        self._published = PromptBankSnapshot(version=0, task_description=task_description)

    # -- recording -----------------------------------------------------------------------------------------

    def record(self, summaries: Sequence[EpisodeSummary]) -> int:
        """Add episodes; publish a new version after every ``publish_every``-th. Returns how many were added."""
        batch = list(summaries)
        for s in batch:
            # Checked before anything is added, so a bad batch changes nothing and the sender sees the error.
            if not isinstance(s, EpisodeSummary):
                raise TypeError(f"PromptBank.record expects EpisodeSummary items, got {type(s).__name__}")
        for s in batch:
            self._add(s)
            if self._episodes % self.cfg.publish_every == 0:
                self._publish()
        return len(batch)

    def _add(self, s: EpisodeSummary) -> None:
        self._episodes += 1
        self._successes += int(s.success)
        self._recent.append(bool(s.success))
        for outcome in s.outcomes:
            if outcome.steps_total <= 0:
                self._ignored_outcomes += 1
                continue
            completed = trial_succeeded(outcome)
            ok = trial_succeeded(outcome, s.success, self.cfg.credit)
            key = (outcome.state_text, outcome.option)
            stat = self._pairs.get(key)
            if stat is None:
                stat = self._pairs[key] = _PairStat()
            else:
                self._pairs.move_to_end(key)
            stat.trials += 1
            stat.successes += int(ok)
            stat.wins += int(completed and s.success)
            stat.last_episode = self._episodes
            totals = self._options.get(outcome.option)
            if totals is None:
                totals = self._options[outcome.option] = [0, 0]
            else:
                self._options.move_to_end(outcome.option)
            totals[0] += int(ok)
            totals[1] += 1
        self._evict()
        if s.recent_actions:
            # AdaRefiner compares the recent actions with the sub-goals the teacher suggested; only Crafter
            # runners fill recent_actions. Fall back to completed sub-goals when no advice was logged.
            subgoals = [o.option for o in s.outcomes] or list(s.subgoals_completed)
            self._comprehension = comprehension_score(s.recent_actions, subgoals, self._embed)

    def _evict(self) -> None:
        bound = self.cfg.max_tracked_states
        while len(self._pairs) > bound:
            self._pairs.popitem(last=False)
        while len(self._options) > bound:
            self._options.popitem(last=False)

    # -- publishing ----------------------------------------------------------------------------------------

    def _publish(self) -> None:
        self._published = PromptBankSnapshot(
            version=self._published.version + 1,
            task_description=self.task_description,
            exemplars=self._exemplars(),
            feedback_lines=self._feedback_lines(),
            option_stats=tuple(
                OptionStat(state, option, st.successes, st.trials)
                for (state, option), st in sorted(self._pairs.items())
                if st.trials > 0
            ),
            subgoal_success=tuple((option, k / n) for option, (k, n) in sorted(self._options.items()) if n > 0),
            comprehension=self._comprehension,
        )

    def _exemplars(self) -> tuple[str, ...]:
        """Advice that worked in successful episodes: best estimate first, then most wins, then most recent.

        At most one exemplar per state, so the few exemplar slots show different situations instead of
        competing plans for one.
        """
        if self.cfg.max_exemplars <= 0:
            return ()
        candidates = [(key, st) for key, st in self._pairs.items() if st.wins > 0]
        candidates.sort(key=lambda kv: (-kv[1].estimate(), -kv[1].wins, -kv[1].last_episode, kv[0]))
        out: list[str] = []
        states: set[str] = set()
        for (state, option), _ in candidates:
            if state in states:
                continue
            states.add(state)
            out.append(exemplar_text(state, option))
            if len(out) == self.cfg.max_exemplars:
                break
        return tuple(out)

    def _feedback_lines(self) -> tuple[str, ...]:
        """Lines for pairs with at least ``min_trials`` trials, most informative first.

        Informative = far from the pooled success rate of all tracked advice, weighted by evidence:
        |k/n - mean| * sqrt(n), a z-score up to a constant. Pure deviation would favour pairs with 3 lucky trials,
        pure trial counts would repeat what the teacher already does well.
        """
        if self.cfg.max_feedback_lines <= 0:
            return ()
        eligible = [(key, st) for key, st in self._pairs.items() if st.trials >= self.cfg.min_trials]
        if not eligible:
            return ()
        total_trials = sum(st.trials for st in self._pairs.values())
        mean = sum(st.successes for st in self._pairs.values()) / total_trials

        def informativeness(kv: tuple[tuple[str, str], _PairStat]) -> tuple:
            st = kv[1]
            return (-abs(st.successes / st.trials - mean) * math.sqrt(st.trials), -st.trials, kv[0])

        eligible.sort(key=informativeness)
        return tuple(
            feedback_line(state, option, st.successes, st.trials)
            for (state, option), st in eligible[: self.cfg.max_feedback_lines]
        )

    def snapshot(self) -> PromptBankSnapshot:
        """The latest published snapshot (version 0: empty, before ``publish_every`` episodes)."""
        return self._published

    # -- introspection -------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._published.version

    @property
    def episodes(self) -> int:
        return self._episodes

    @property
    def successes(self) -> int:
        return self._successes

    @property
    def tracked_pairs(self) -> int:
        return len(self._pairs)

    @property
    def ignored_outcomes(self) -> int:
        return self._ignored_outcomes

    @property
    def comprehension(self) -> float | None:
        """Latest comprehension score (may be newer than the published one); None before any Crafter episode."""
        return self._comprehension

    @property
    def recent_success_rate(self) -> float:
        """Episode success rate over the last ``publish_every`` episodes (0.0 before any)."""
        return sum(self._recent) / len(self._recent) if self._recent else 0.0

    def option_stat(self, state_text: str, option: str) -> OptionStat:
        """Current (unpublished) statistics of one pair; zero trials when untracked."""
        st = self._pairs.get((state_text, option), _PairStat())
        return OptionStat(state_text, option, st.successes, st.trials)

    # -- checkpoints ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: lists, strings, numbers, None. Includes the published snapshot verbatim, so a
        restored bank serves the same content under the same version as before."""
        return {
            "format": STATE_DICT_FORMAT,
            "credit": self.cfg.credit,
            "task_description": self.task_description,
            "episodes": self._episodes,
            "successes": self._successes,
            "ignored_outcomes": self._ignored_outcomes,
            "recent": list(self._recent),
            "comprehension": self._comprehension,
            "pairs": [[s, o, st.successes, st.trials, st.wins, st.last_episode] for (s, o), st in self._pairs.items()],
            "options": [[o, k, n] for o, (k, n) in self._options.items()],
            "published": _snapshot_to_dict(self._published),
        }

    @classmethod
    def from_state_dict(cls, cfg: FeedbackConfig, d: dict[str, Any], embed: Embedder | None = None) -> PromptBank:
        """Rebuild a bank from ``state_dict()``; ``cfg`` may differ from the saved run's (bounds are re-applied)."""
        if d.get("format") != STATE_DICT_FORMAT:
            raise ValueError(f"prompt bank state: unsupported format {d.get('format')!r}")
        saved = saved_credit(d)
        if saved != cfg.credit:
            # Counts made under one success definition would silently mix with the other's.
            raise ValueError(f"feedback.credit: the saved prompt bank counted successes with credit={saved}; "
                             f"resume with feedback.credit={saved} or start a new run")
        bank = cls(cfg, d["task_description"], embed)
        bank._episodes = int(d["episodes"])
        bank._successes = int(d["successes"])
        bank._ignored_outcomes = int(d["ignored_outcomes"])
        bank._recent.extend(bool(x) for x in d["recent"])
        bank._comprehension = None if d["comprehension"] is None else float(d["comprehension"])
        for s, o, k, n, wins, last in d["pairs"]:
            bank._pairs[(s, o)] = _PairStat(int(k), int(n), int(wins), int(last))
        for o, k, n in d["options"]:
            bank._options[o] = [int(k), int(n)]
        bank._evict()
        bank._published = _snapshot_from_dict(d["published"], bank.task_description)
        return bank
