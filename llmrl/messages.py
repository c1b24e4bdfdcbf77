"""Typed messages that cross actor boundaries.

Every value sent between env runners, the teacher service, the feedback actor and the learner is one of
these frozen dataclasses, never a bare dict: a field rename then fails loudly at the sender instead of
silently at the receiver. They hold only plain Python values so Ray pickles them cheaply.

An *option* is what the teacher chooses among: a MiniGrid plan such as ``"go to key, pick up key"`` or a
Crafter sub-goal such as ``"collect wood"``. Options are canonical strings; the environment family that
produced them knows how to parse them into skills.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TeacherQuery:
    """One request for advice: the text view of a state and the options admissible in it."""

    family: str  # environment family, e.g. "minigrid" or "crafter"; selects planner and prompt template
    task: str  # task name, e.g. "SimpleDoorKey"
    state_text: str  # what the agent knows, in words
    options: tuple[str, ...]  # admissible plans / sub-goals, in a stable order
    context: str = ""  # extra text for LM prompts (Crafter: recent sub-goals and comprehension score)
    adapter: str = ""  # LoRA adapter name to answer with ("" = base model); backends without LoRA ignore it
    # The analyst's analysis of the situation (adapter.role=analyst), put into the teacher's prompt by the teacher
    # service; runners always send "".
    analysis: str = ""

    def key(self) -> tuple[str, ...]:
        """Identity used for de-duplication and caching (context, adapter and analysis change the answer)."""
        return (self.family, self.task, self.state_text, self.context, self.adapter, self.analysis, *self.options)


@dataclass(frozen=True, slots=True)
class Advice:
    """The teacher's answer: a probability for each admissible option, or no advice with a reason.

    ``probs`` is aligned with the query's ``options``. An empty ``probs`` means "no advice" (the LM output
    could not be parsed, the teacher was unreachable, ...) and ``reason`` says why.
    """

    options: tuple[str, ...]
    probs: tuple[float, ...]
    bank_version: int = 0  # prompt-bank version the advice was produced with
    source: str = ""  # backend that produced it: "scripted", "hf:<model>", ... ; "cache" flags a cache hit
    reason: str = ""  # for no-advice answers: "unparseable", "teacher_unavailable", "timeout", ...
    invalid_outputs: int = 0  # LM samples that could not be parsed or were not admissible
    adapter_version: int = 0  # version of the LoRA adapter the advice was produced with (0 = base model)
    # The analysis the teacher read (adapter.role=analyst; "" = none): it travels to the feedback actor with the
    # outcome, which makes it a training pair of the analyst when the student completes the sub-goal.
    analysis: str = ""

    @property
    def has_advice(self) -> bool:
        return len(self.probs) > 0

    def best(self) -> str | None:
        if not self.has_advice:
            return None
        return self.options[max(range(len(self.probs)), key=self.probs.__getitem__)]

    @staticmethod
    def none(options: tuple[str, ...], reason: str, bank_version: int = 0, invalid_outputs: int = 0) -> Advice:
        return Advice(options=options, probs=(), bank_version=bank_version, reason=reason, invalid_outputs=invalid_outputs)


@dataclass(frozen=True, slots=True)
class AdviceOutcome:
    """How the student fared while one piece of advice was in force (one row of an episode summary)."""

    state_text: str
    option: str  # the option the teacher rated highest
    steps_completed: int  # plan steps / sub-goal the student completed while the advice held
    steps_total: int
    followed_frac: float = 0.0  # fraction of advised steps on which the student took the teacher's action
    # The query the advice answered (with ``state_text``), so the teacher's prompt for it can be rebuilt when
    # the outcome becomes an adapter training pair (llmrl.feedback.pairs).
    options: tuple[str, ...] = ()
    context: str = ""
    analysis: str = ""  # the analyst's analysis the teacher read for this advice (adapter.role=analyst)
    # The option of the query the student finished while the advice held, advised or not ("" = none, or not
    # recorded: only with adapter.pair_label=achieved, the hindsight label of the adapter's training pairs).
    achieved: str = ""


@dataclass(frozen=True, slots=True)
class EpisodeSummary:
    """Sent by every env runner to the feedback actor at the end of every episode."""

    family: str
    task: str
    success: bool
    episode_return: float
    length: int
    outcomes: tuple[AdviceOutcome, ...] = ()
    subgoals_completed: tuple[str, ...] = ()  # options (sub-goals / plan steps) completed, in order
    achievements: tuple[str, ...] = ()  # Crafter achievements unlocked this episode
    recent_actions: tuple[str, ...] = ()  # Crafter: last actions, for the comprehension score
    teacher_steps: int = 0  # steps on which advice was available


@dataclass(frozen=True, slots=True)
class OptionStat:
    """Success statistics of one option in one state (or for one sub-goal overall, state_text="")."""

    state_text: str
    option: str
    successes: int
    trials: int

    @property
    def success_estimate(self) -> float:
        # Laplace smoothing: an untried option is 0.5, not 0 or 1, so reweighting never zeroes it out.
        return (self.successes + 1.0) / (self.trials + 2.0)


@dataclass(frozen=True, slots=True)
class PromptBankSnapshot:
    """An immutable, versioned view of the prompt bank, handed to the teacher service."""

    version: int
    task_description: str
    exemplars: tuple[str, ...] = ()
    feedback_lines: tuple[str, ...] = ()
    option_stats: tuple[OptionStat, ...] = ()
    subgoal_success: tuple[tuple[str, float], ...] = ()  # per sub-goal success rate (Crafter)
    comprehension: float | None = None  # AdaRefiner comprehension score, when computed

    def success_lookup(self) -> dict[tuple[str, str], OptionStat]:
        return {(s.state_text, s.option): s for s in self.option_stats}


@dataclass(frozen=True, slots=True)
class TeacherStats:
    """Counters reported by a teacher service replica (cumulative since it started)."""

    requests: int = 0
    llm_calls: int = 0  # prompts actually sent to the backend (after cache and de-duplication)
    cache_hits: int = 0
    batches: int = 0
    batched_prompts: int = 0
    no_advice: int = 0
    invalid_outputs: int = 0
    deduplicated: int = 0  # requests that shared a slot with an equal request in the same batch
    reweighted: int = 0  # answers reweighted by the student's measured success
    rescored: int = 0  # answers computed in the background for a new prompt bank, before runners asked
    bank_version: int = 0
    backend: str = ""
    instance_id: str = ""  # changes when Ray restarts the replica, so the driver can count restarts
    latency_s_sum: float = 0.0  # summed backend time of all batches
    adapter_version: int = 0  # LoRA adapter version advice is produced with now (0 = base model)
    adapter_loads: int = 0  # adapter versions hot-loaded
    adapter_load_failures: int = 0  # versions refused or failed to load (the previous one stayed in service)
    # adapter.role=analyst: prompts sent to the analyst LM, analyses put into teacher prompts, and analyses the
    # analyst could not give (empty text, or a failed call): those queries go to the teacher without one.
    analyst_calls: int = 0
    analyses: int = 0
    analyses_empty: int = 0
    analyst_failures: int = 0
    extra: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    @property
    def mean_batch_size(self) -> float:
        return self.batched_prompts / self.batches if self.batches else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """One supervised example for the LoRA adapter: the teacher's query and the plan that worked, and (with
    ``adapter.role=analyst``) the analysis the teacher read before it, the analyst's target.

    The prompt is not stored: it is rebuilt (``llmrl.adapter.data.pair_text``) from ``query`` and the prompt bank
    when the adapter trains, so it is exactly what the teacher (or the analyst) reads at that time.
    """

    query: TeacherQuery
    plan: str  # the option the student completed in an episode that earned credit (feedback.credit)
    analysis: str = ""  # the analysis that preceded it ("" with role=teacher)

    def key(self) -> tuple[str, ...]:
        """Identity for de-duplication and the held-out split (the adapter name does not change the pair)."""
        q = self.query
        key = (q.family, q.task, q.state_text, q.context, *q.options, "->", self.plan)
        # Teacher-role pairs keep their old identity (and held-out split); an analysis makes another pair.
        return (*key, "=>", self.analysis) if self.analysis else key


@dataclass(frozen=True, slots=True)
class PairBatch:
    """The feedback actor's answer to ``pairs_since(cursor)``: pairs first seen after ``cursor``."""

    pairs: tuple[TrainingPair, ...]
    cursor: int  # pass this back next time; it only grows within one feedback-actor lifetime
    episodes: int  # episodes recorded so far (the trainer's "every N episodes" clock)
    total_pairs: int  # distinct pairs the actor holds (bounded by adapter.max_pairs)
    # Hindsight: the queries of the states still short of adapter.min_label_votes (all of them, not only since
    # the cursor). A fine-tune judged on plan accuracy may not change the teacher's top plan in any of them.
    held: tuple[TeacherQuery, ...] = ()


@dataclass(frozen=True, slots=True)
class AdapterVersion:
    """One saved LoRA adapter version: ``<run>/adapters/v<version>/`` (peft files + ``llmrl_adapter.json``)."""

    version: int
    path: str  # the version's folder (peft ``save_pretrained`` output)
    base_model: str  # the base model as configured (teacher.hf.model, ...)
    base_hash: str  # hash of the base model's config: an adapter only loads on the base it was trained on
    heldout_loss: float  # mean per-token NLL of the held-out plans with this adapter
    pairs_used: int  # training pairs of the fine-tune that produced it
    role: str = "teacher"

    @property
    def name(self) -> str:
        """Adapter name in peft / vLLM / an OpenAI-compatible server."""
        return f"llmrl-v{self.version}"


@dataclass(frozen=True, slots=True)
class AdapterTrainerStats:
    """Counters of the adapter trainer (cumulative since this instance started)."""

    instance_id: str  # changes when Ray restarts the trainer, so the driver can count restarts
    version: int = 0  # latest accepted adapter version (0 = none yet)
    attempts: int = 0  # fine-tunes started
    accepted: int = 0  # ... that improved the held-out loss and became a version
    rejected: int = 0  # ... that did not improve it (previous version stays)
    diverged: int = 0  # ... stopped by a non-finite loss
    out_of_memory: int = 0
    failed: int = 0  # ... that raised anything else
    no_pairs: int = 0  # triggers skipped because there were too few pairs for a held-out split
    unchanged: int = 0  # triggers skipped because the inputs were those of the last rejected fine-tune
    pairs: int = 0  # distinct pairs held
    heldout_loss: float = float("nan")  # of the latest accepted version
    train_s: float = 0.0  # seconds spent fine-tuning


# The outcome counters above, by name: the trainer keeps them (and saves them across its restarts) and the
# driver's metrics row reports them, from this one list.
ADAPTER_TRAINER_COUNTERS = ("attempts", "accepted", "rejected", "diverged", "out_of_memory", "failed", "no_pairs",
                            "unchanged")
