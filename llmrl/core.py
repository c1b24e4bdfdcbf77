"""The small interfaces every llmrl component is written against (after Acme's ``core.py``).

The local mode and the Ray job build the same graph out of these parts (see ``llmrl.training.graph``); only
where each part runs changes. Keep this module free of heavy imports: it is imported by ``import llmrl``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from llmrl.messages import AdapterVersion, Advice, EpisodeSummary, PromptBankSnapshot, TeacherQuery, TeacherStats


@runtime_checkable
class Guidable(Protocol):
    """What an environment adapter exposes so that a teacher can guide it.

    Implemented by ``llmrl.envs.minigrid.MiniGridTask``, ``llmrl.envs.crafter.CrafterTask`` and a user's own
    env (``env.name=package.module:factory``, see ``docs/custom_env.md``); the teacher wrapper
    (``llmrl.envs.guided.TeacherGuidedEnv``) only talks to this. What the rest of llmrl needs to know about
    the env's family comes from its ``FamilySpec``.
    """

    family: str  # the family's name, e.g. "minigrid" | "crafter"
    task_name: str
    num_actions: int

    def task_description(self, style: str = "plain") -> str:
        """The task prompt an LLM gets before any state (LLM4Teach's task_info), in ``teacher.prompt_style``."""

    def state_text(self) -> str:
        """What the agent knows now, in words. Equal strings must mean equal advice."""

    def options(self) -> tuple[str, ...]:
        """Admissible plans / sub-goals in the current state, in a stable order."""

    def option_action(self, option: str) -> int | None:
        """The primitive action the scripted skills take now to make progress on ``option``; None if none."""

    def option_progress(self, option: str) -> tuple[int, int]:
        """(steps of ``option`` already done in the current state, total steps)."""

    def begin_option(self, option: str) -> None:
        """``option`` becomes the one being followed (Crafter: baseline for completion, sub-goal in the obs)."""

    def success(self) -> bool:
        """Whether the episode so far counts as a success (MiniGrid: task solved)."""


# How a family's teacher is asked (``FamilySpec.ask``).
ASK_ON_TEXT_CHANGE = "on_text_change"  # whenever the state text changes (LLM4Teach)
# Every ``env.ask_every_k`` steps and when the followed option completes (AdaRefiner). The task is conditioned on
# the option it follows: the wrapper re-reads ``current_obs()`` after ``begin_option``, keeps the recent actions
# for the comprehension score, and tells the teacher the recently completed options.
ASK_EVERY_K_OR_DONE = "every_k_or_done"
ASK_MODES = (ASK_ON_TEXT_CHANGE, ASK_EVERY_K_OR_DONE)


@dataclass(frozen=True)
class FamilySpec:
    """Everything family-specific that llmrl decides outside the family's own folder.

    Each family folder defines one (``llmrl/envs/<family>/family.py``) and ``llmrl.envs.registry`` maps names
    to it; a user's own family hangs one on its factory (``factory.family_spec``). Generic code (the RLlib
    config, the guided wrapper, the training loop, evaluation, prompts, the scripted teacher) reads only this.
    Hooks are plain functions so that a spec stays a light import (no gymnasium env, no torch).
    """

    name: str  # the family's name: TeacherQuery.family / EpisodeSummary.family ("minigrid", "crafter")
    num_actions: int  # size of the discrete action space (the student's policy head, the teacher distribution)
    # The student's observation encoder (``llmrl.rl.module.ENCODERS``): "grid" (MiniGrid cell encodings
    # {"grid": uint8 (H, W, 4)}), "grid_mission" (the same plus {"mission": int64 (L,)} word ids), "image_subgoal" ({"image", "inventory", "subgoal"}, Crafter) or "vector"
    # ({"vector": float (n,)}, an MLP).
    encoder: str
    # Every name this family owns that can be listed (errors suggest the closest ones); ``owns`` may accept more.
    names: Callable[[], Sequence[str]]
    # Whether ``env.name`` belongs to this family; default: it is one of ``names()``.
    owns: Callable[[str], bool] | None = None
    # ``(EnvConfig, seed) -> Guidable gym env``; None for a user's family (its factory is ``env.name`` itself).
    make_task: Callable[[Any, int | None], Any] | None = None
    # Module with the scripted planner: ``correct_option(state_text, options)`` and
    # ``wrong_options(state_text, options, correct)``; imported in the teacher service. None: no scripted teacher.
    planner: str | None = None
    ask: str = ASK_ON_TEXT_CHANGE  # one of ASK_MODES
    eval_explore: bool = False  # evaluation samples the student's policy instead of acting greedily
    # The student keeps its teacher at evaluation (it is conditioned on the teacher's options); otherwise the
    # student is evaluated alone.
    eval_with_teacher: bool = False
    option_word: tuple[str, str] = ("plan", "plans")  # (singular, plural) of an option in LM prompts
    # The task-prompt styles (``teacher.prompt_style``) its tasks write, ``task.task_description(style)``.
    prompt_styles: tuple[str, ...] = ("plain",)
    env_step_limit: bool = False  # env.max_steps=0 keeps the environment's own step limit (registered gym ids)
    # The option that discovers (MiniGrid: "explore"), for hindsight labels (adapter.pair_label=achieved): the
    # family asks when its state text changes, so a change while no option finished means something new came into
    # view, and the student was exploring, wherever its steps led. "" (Crafter, which asks on a timer): the label is
    # then the one option whose skill the student's actions matched most often.
    hindsight_explore: str = ""
    # Names an episode can unlock (``task.episode_achievements()``): logged per episode as ``llmrl/ach/<name>``.
    achievements: tuple[str, ...] = ()
    # ``(percent of episodes unlocking each achievement) -> the family's score`` (Crafter's geometric-mean score):
    # reported beside the rates by ``llmrl eval``. None: rates only.
    score: Callable[[Mapping[str, float]], float] | None = None
    # ``(EnvConfig) -> None``: the family's own config rules; raise ``llmrl.config.ConfigError`` naming the key.
    validate: Callable[[Any], None] | None = None
    # ``(RLlib result, LoopState) -> extra metrics-row fields``, once per iteration. It may keep running totals in
    # ``LoopState.family_state`` (saved in checkpoints, so they survive a resume).
    metrics: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    summary: Callable[[Any], dict[str, Any]] | None = None  # ``(LoopState) -> extra summary.json fields``
    # ``seed -> endless iterator of (state text, admissible options)``: realistic teacher queries without an env,
    # for benchmarks of the teacher service.
    sample_states: Callable[[int], Any] | None = None
    # ``(EnvConfig, seed) -> (reset(), step(action) -> episode over, number of actions)`` over the family's bare
    # environment, without llmrl's adapter: the ceiling rung of ``llmrl bench throughput``. None: not measured.
    raw_stepper: Callable[[Any, int], tuple[Callable[[], Any], Callable[[int], bool], int]] | None = None

    def __post_init__(self) -> None:
        if self.ask not in ASK_MODES:
            raise ValueError(f"FamilySpec {self.name!r}: ask must be one of {', '.join(ASK_MODES)}, got {self.ask!r}")
        if self.num_actions < 1:
            raise ValueError(f"FamilySpec {self.name!r}: num_actions must be >= 1, got {self.num_actions}")

    def owns_name(self, name: str) -> bool:
        return self.owns(name) if self.owns is not None else name in self.names()


class PlanBackend(Protocol):
    """A teacher backend: turns a batch of queries into option distributions.

    ``advise`` is async and batched so that the same interface fits a continuous-batching LLM engine (vLLM),
    a remote OpenAI-compatible server, a CPU transformers model and the scripted planner. A backend never
    raises for a bad LM output; it answers ``Advice.none(..., reason=...)`` and counts ``invalid_outputs``.
    """

    name: str

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]: ...

    async def close(self) -> None: ...


class LoraTarget(Protocol):
    """What ``teacher.adapter_slot.AdapterSlot`` hot-loads LoRA versions into: a teacher backend (hf, vllm, openai)
    with ``adapter.role=teacher``, the analyst LM (``adapter.analyst.Analyst``) with ``adapter.role=analyst``.

    ``prepare_adapter`` is the slow part and runs while calls go on under the previous version;
    ``activate_adapter`` is the switch, made between two calls. Either raises to refuse a version. Local models
    also have ``adapter_base_hash()`` (the config hash an adapter must have been trained on); for a remote server
    the slot hashes the configured base model's folder instead.
    """

    async def prepare_adapter(self, version: AdapterVersion) -> None: ...

    async def activate_adapter(self, version: AdapterVersion) -> None: ...


class AdviceSource(Protocol):
    """How an env runner asks for advice (implemented by ``llmrl.teacher.client.TeacherClient``)."""

    def request(self, query: TeacherQuery) -> Advice | None:
        """Advice if available within the configured wait; None means "no advice for now" (never raises)."""

    def note_advised_step(self, advice: Advice) -> None:
        """One env step was guided by ``advice`` (for the count of steps guided by a superseded bank version)."""

    def stats(self) -> dict[str, float]: ...


class FeedbackSink(Protocol):
    """Where episode summaries go (implemented by the feedback actor)."""

    def record(self, summaries: Sequence[EpisodeSummary]) -> int: ...

    def snapshot(self) -> PromptBankSnapshot: ...


class TeacherServiceAPI(Protocol):
    """Methods of the teacher service actor that callers may use."""

    async def advise(self, queries: Sequence[TeacherQuery]) -> list[Advice]: ...

    def stats(self) -> TeacherStats: ...


def teacher_action_distribution(
    advice: Advice, option_actions: dict[str, int | None], num_actions: int, mode: str, rng: np.random.Generator
) -> np.ndarray | None:
    """LLM4Teach's mediator: turn an option distribution into a distribution over primitive actions.

    soft: pi_T = sum_k p_k * onehot(a_k);  hard: sample one option k ~ p, pi_T = onehot(a_k).
    Options whose skill yields no action are dropped and the rest renormalised; None if nothing is left.
    """
    if not advice.has_advice:
        return None
    probs = np.zeros(num_actions, dtype=np.float32)
    if mode == "hard":
        p = np.asarray(advice.probs, dtype=np.float64)
        usable = np.array([option_actions.get(o) is not None for o in advice.options])
        p = p * usable
        if p.sum() <= 0:
            return None
        k = int(rng.choice(len(p), p=p / p.sum()))
        probs[option_actions[advice.options[k]]] = 1.0
        return probs
    for option, p in zip(advice.options, advice.probs):
        action = option_actions.get(option)
        if action is not None and p > 0:
            probs[action] += p
    total = probs.sum()
    if total <= 0:
        return None
    return probs / total


def gym_stepper(env: Any, seed: int) -> tuple[Callable[[], Any], Callable[[int], bool], int]:
    """A gymnasium env as ``FamilySpec.raw_stepper``'s (reset, step -> episode over, number of actions)."""

    def step(action: int) -> bool:
        _, _, terminated, truncated, _ = env.step(action)
        return terminated or truncated

    return (lambda: env.reset(seed=seed)), step, int(env.action_space.n)
