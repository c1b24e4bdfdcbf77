"""Adapter training pairs from the student's episodes: (the teacher's query, the plan the student succeeded with).

A pair comes from one ``AdviceOutcome`` that earned credit under ``feedback.credit``, the same rule as every
statistic of the prompt bank (``bank.trial_succeeded``):

* ``credit="episode"``: the student completed the advised plan *and* the episode succeeded, so only plans on
  the way to success teach the adapter (the right choice on MiniGrid, where "explore" is easy to complete and
  does not open the door);
* ``credit="plan"``: the student completed the advised plan, whatever the episode did.

With ``adapter.pair_label=achieved`` (hindsight) the plan of a pair is not the teacher's but the one the student
finished from that state (``AdviceOutcome.achieved``, recorded by the env runner), under the same credit rule;
where the teacher was wrong and the student did better, the pair teaches the teacher the student's plan.

With ``adapter.role=analyst`` a pair also carries the analyst's analysis the teacher read before that advice
(``AdviceOutcome.analysis``): the analyses that preceded sub-goals the student then completed are the analyst's
training targets. Outcomes without one (the analyst wrote nothing, or failed) make no analyst pair.

A student's behaviour is noisy: across episodes the same state gets different hindsight labels (a step towards
the door on the way to the key reads as "open the door"). So with hindsight labels ``PairLog`` holds one pair
per state, the plan with the most votes over all the episodes that passed the credit rule; a pair whose state
changes its majority plan comes out again as a new pair, and replaces the old one in the trainer too.

A young student's majority is not yet its plan: on LavaDoorKey, 16k steps in, "key in view, nothing held" had
2 votes for ``explore`` against 1 for fetching the key, and a fine-tune on that label taught the teacher to
explore there; 16k steps later the vote was 122 to 30 the other way. So a state's pair is handed to the
trainer only once ``min_votes`` credited episodes have voted on it (``adapter.min_label_votes``); until then it
is held, counted and checkpointed like any other, but ``since`` and ``pairs`` leave it out.

``PairLog`` keeps the distinct pairs in the feedback actor, bounded (least recently seen dropped first), each
with the sequence number of its first appearance, so the adapter trainer fetches only what is new since its
cursor. The log is part of the feedback actor's checkpointed state, so training data survives a resume.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Any

from llmrl.feedback.bank import trial_succeeded
from llmrl.messages import EpisodeSummary, PairBatch, TeacherQuery, TrainingPair


def pairs_from_episode(summary: EpisodeSummary, credit: str, role: str = "teacher",
                       label: str = "advised") -> list[TrainingPair]:
    """The pairs one episode contributes (outcomes without their query's options cannot be prompted: skipped;
    with ``role="analyst"``, outcomes without an analysis too). ``label`` is ``adapter.pair_label``."""
    if label == "achieved":
        return _hindsight_pairs(summary, credit)
    out = []
    for outcome in summary.outcomes:
        if not outcome.options or outcome.option not in outcome.options:
            continue
        analysis = outcome.analysis.strip() if role == "analyst" else ""
        if role == "analyst" and not analysis:
            continue
        if trial_succeeded(outcome, summary.success, credit):
            query = TeacherQuery(summary.family, summary.task, outcome.state_text, outcome.options, outcome.context)
            out.append(TrainingPair(query, outcome.option, analysis))
    return out


def _hindsight_pairs(summary: EpisodeSummary, credit: str) -> list[TrainingPair]:
    """(query -> the option the student finished from that state), from the last visit to each state: when the
    student came back to a state, what it did the first time was a detour (a key dropped and picked up again);
    a last visit that finished nothing teaches nothing about its state."""
    if credit == "episode" and not summary.success:
        return []
    last: dict[tuple[str, ...], TrainingPair | None] = {}  # the state as PairLog keys it
    for outcome in summary.outcomes:
        query = TeacherQuery(summary.family, summary.task, outcome.state_text, outcome.options, outcome.context)
        state = _query_key(query)
        last.pop(state, None)  # re-inserted: the pairs keep the order of their final visits
        if outcome.achieved and outcome.achieved in outcome.options:
            last[state] = TrainingPair(query, outcome.achieved)
        else:
            last[state] = None
    return [p for p in last.values() if p is not None]


def _pair_to_list(p: TrainingPair) -> list[Any]:
    q = p.query
    return [q.family, q.task, q.state_text, list(q.options), q.context, p.plan, p.analysis]


def _pair_from_list(d: list[Any]) -> TrainingPair:
    family, task, state, options, context, plan, *analysis = d  # checkpoints before the analyst have 6 fields
    return TrainingPair(TeacherQuery(family, task, state, tuple(options), context), plan, "".join(analysis))


def _query_key(q: TeacherQuery) -> tuple[str, ...]:
    return (q.family, q.task, q.state_text, q.context, *q.options)


def _state_key(pair: TrainingPair) -> tuple[str, ...]:
    return _query_key(pair.query)


class PairLog:
    """Distinct training pairs, bounded by ``max_pairs``; ``since(cursor)`` gives the ones first seen later.

    The feedback actor fills it from episodes (``record``); the adapter trainer keeps its own from the batches
    it fetches (``add``), so a restarted feedback actor does not empty the trainer's dataset. With
    ``label="achieved"`` (hindsight) there is one pair per state: ``record`` counts the episodes' votes for each
    state's plans and keeps the majority, and ``add`` replaces a state's pair with a newer one.
    """

    def __init__(self, max_pairs: int, credit: str, role: str = "teacher", label: str = "advised",
                 min_votes: int = 1) -> None:
        if max_pairs <= 0:
            raise ValueError(f"max_pairs must be > 0, got {max_pairs}")
        if min_votes < 1:
            raise ValueError(f"min_votes must be >= 1, got {min_votes}")
        self.max_pairs = max_pairs
        self.credit = credit
        self.role = role  # adapter.role: "analyst" pairs carry (and need) the analysis
        self.label = label  # adapter.pair_label: the advised plan, or the one the student achieved
        self.min_votes = min_votes  # hindsight: votes a state needs before its pair is handed out
        self._pairs: OrderedDict[tuple[str, ...], tuple[int, TrainingPair]] = OrderedDict()  # key -> (seq, pair)
        self._votes: dict[tuple[str, ...], Counter[str]] = {}  # hindsight: state key -> plan -> episodes
        self._seq = 0
        self.episodes = 0
        self.duplicates = 0  # pairs seen again (they refresh recency, not the cursor)

    def _key(self, pair: TrainingPair) -> tuple[str, ...]:
        return _state_key(pair) if self.label == "achieved" else pair.key()

    def record(self, summaries: list[EpisodeSummary]) -> int:
        """Add the pairs of these episodes; returns how many were new (hindsight: states whose plan changed, held
        ones included, or that just reached ``min_votes``)."""
        new = 0
        for s in summaries:
            self.episodes += 1
            pairs = pairs_from_episode(s, self.credit, self.role, self.label)
            new += self.add([self._vote(p) for p in pairs] if self.label == "achieved" else pairs)
        return new

    def _vote(self, pair: TrainingPair) -> TrainingPair:
        """Count one episode's vote for this state's plan; returns the state's majority pair (ties: the one kept)."""
        key = _state_key(pair)
        votes = self._votes.setdefault(key, Counter())
        votes[pair.plan] += 1
        kept = self._pairs[key][1].plan if key in self._pairs else pair.plan
        winner = max(votes, key=lambda plan: (votes[plan], plan == kept))
        if votes.total() == self.min_votes > 1:
            # Just came of age: a fresh sequence number, so a trainer whose cursor passed it fetches it now.
            self._pairs.pop(key, None)
        return TrainingPair(pair.query, winner, pair.analysis)

    def _mature(self, key: tuple[str, ...]) -> bool:
        votes = self._votes.get(key)
        return votes is None or votes.total() >= self.min_votes

    def add(self, pairs: Iterable[TrainingPair]) -> int:
        """Add pairs (a pair seen before only becomes the most recent); returns how many were new."""
        new = 0
        for pair in pairs:
            key = self._key(pair)
            if key in self._pairs and self._pairs[key][1] == pair:
                self._pairs.move_to_end(key)
                self.duplicates += 1
                continue
            self._pairs.pop(key, None)  # hindsight: the state's majority plan changed
            self._seq += 1
            self._pairs[key] = (self._seq, pair)
            new += 1
        self._bound()
        return new

    def _bound(self) -> None:
        while len(self._pairs) > self.max_pairs:
            key, _ = self._pairs.popitem(last=False)
            self._votes.pop(key, None)

    def pairs(self) -> list[TrainingPair]:
        """The pairs a trainer may use (hindsight: of the states with ``min_votes`` votes)."""
        return [p for key, (_, p) in self._pairs.items() if self._mature(key)]

    def since(self, cursor: int) -> PairBatch:
        fresh = sorted(((seq, p) for key, (seq, p) in self._pairs.items() if seq > cursor and self._mature(key)),
                       key=lambda sp: sp[0])
        held = tuple(p.query for key, (_, p) in self._pairs.items() if not self._mature(key))
        return PairBatch(pairs=tuple(p for _, p in fresh), cursor=self._seq, episodes=self.episodes,
                         total_pairs=len(self._pairs) - len(held), held=held)

    def __len__(self) -> int:
        return len(self._pairs)

    def state_dict(self) -> dict[str, Any]:
        state = {"seq": self._seq, "episodes": self.episodes, "credit": self.credit,
                 "pairs": [[seq, *_pair_to_list(p)] for seq, p in self._pairs.values()]}
        if self._votes:  # hindsight: one {plan: votes} per pair, in the same order
            state["votes"] = [dict(self._votes.get(key, {})) for key in self._pairs]
        return state

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self._pairs.clear()
        self._votes.clear()
        stored = d.get("pairs", [])
        votes = list(d.get("votes") or [])  # absent before hindsight labels: no votes, every pair kept
        votes += [{}] * (len(stored) - len(votes))
        for (seq, *rest), pair_votes in zip(stored, votes):
            pair = _pair_from_list(rest)
            key = self._key(pair)
            self._pairs[key] = (int(seq), pair)
            if pair_votes:
                self._votes[key] = Counter({plan: int(n) for plan, n in pair_votes.items()})
        self._seq = int(d.get("seq", 0))
        self.episodes = int(d.get("episodes", 0))
        self._bound()
