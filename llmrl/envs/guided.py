"""The teacher-guided environment: advice in, teacher action distribution and episode summaries out.

It wraps any ``Guidable`` task. On each step it decides whether the teacher must be asked, as the task's family
says (``FamilySpec.ask``; MiniGrid: the text state changed; Crafter: every K steps or when the current sub-goal
is done), asks through the process-wide
``TeacherClient`` (local cache first, so repeated states never leave the process), turns the option
distribution into a distribution over primitive actions with the scripted skills (LLM4Teach's mediator), and
puts it in ``info["teacher_probs"]`` (all zeros = no advice), where the env-to-module connector picks it up.

At the end of every episode it sends an ``EpisodeSummary`` to the feedback actor. With ``teacher.backend=off``
the wrapper does no text work at all and reports zeros, so the baseline runs the same code path at full speed.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from llmrl.config import Config
from llmrl.core import ASK_EVERY_K_OR_DONE, AdviceSource, FamilySpec, teacher_action_distribution
from llmrl.messages import Advice, AdviceOutcome, EpisodeSummary, TeacherQuery

logger = logging.getLogger(__name__)

TEACHER_PROBS = "teacher_probs"


class FeedbackSender:
    """Buffers episode summaries and sends them to the feedback actor in small batches, fire-and-forget."""

    def __init__(self, actor_name: str, flush_every: int, namespace: str | None = None):
        self._actor_name = actor_name
        self._namespace = namespace
        self._flush_every = flush_every
        self._buffer: list[EpisodeSummary] = []
        self._handle: Any = None
        self.sent = 0
        self.dropped = 0

    def send(self, summary: EpisodeSummary) -> None:
        self._buffer.append(summary)
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            import ray

            if self._handle is None:
                self._handle = ray.get_actor(self._actor_name, namespace=self._namespace)
            self._handle.record.remote(batch)
            self.sent += len(batch)
        except Exception as exc:  # noqa: BLE001 - feedback is best effort; training must go on
            self._handle = None
            self.dropped += len(batch)
            logger.debug("feedback actor unavailable (%s): dropped %d summaries", exc, len(batch))


_SENDERS: dict[tuple[str, str | None], FeedbackSender] = {}


def shared_feedback_sender(actor_name: str, flush_every: int, namespace: str | None = None) -> FeedbackSender:
    """The process-wide sender for this feedback actor (one per env-runner process)."""
    key = (actor_name, namespace)
    if key not in _SENDERS:
        _SENDERS[key] = FeedbackSender(actor_name, flush_every, namespace)
    return _SENDERS[key]


def forget_feedback_senders() -> None:
    """Drop this process's senders once their run has ended (their feedback actor is gone with it)."""
    _SENDERS.clear()


def feedback_sender_stats() -> dict[str, float]:
    return {
        "feedback/sent": float(sum(s.sent for s in _SENDERS.values())),
        "feedback/dropped": float(sum(s.dropped for s in _SENDERS.values())),
    }


class TeacherGuidedEnv(gym.Wrapper):
    def __init__(
        self,
        task: Any,
        cfg: Config,
        advice_source: AdviceSource | None,
        feedback: FeedbackSender | None,
        seed: int = 0,
        spec: FamilySpec | None = None,
    ):
        super().__init__(task)
        if spec is None:
            from llmrl.envs.registry import family_spec

            spec = family_spec(cfg.env.name)
        self.family_spec = spec
        self.task = task
        self.cfg = cfg
        self.advice_source = advice_source
        self.feedback = feedback
        self.num_actions = int(task.num_actions)
        self._rng = np.random.default_rng(seed)
        self._zeros = np.zeros(self.num_actions, dtype=np.float32)
        self._per_option_ask = spec.ask == ASK_EVERY_K_OR_DONE
        # Hindsight labels cost every option's skill action per step and its progress per query: only when the
        # adapter trains on them.
        self._label_achieved = cfg.adapter.enabled and cfg.adapter.pair_label == "achieved"
        self._reset_episode_state()

    # -- gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.task.reset(seed=seed, options=options)
        self._reset_episode_state()
        probs = self._update_advice(force=True)
        return self._observe(obs), self._with_probs(info, probs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.task.step(action)
        self._length += 1
        self._return += float(reward)
        if self._last_probs is not None:
            self._advised_steps += 1
            self._followed += int(int(action) == int(np.argmax(self._last_probs)))
        if self._option_actions is not None:  # hindsight labels: which option's skill did the student act like?
            for option, skill_action in self._option_actions.items():
                matched = int(skill_action is not None and skill_action == int(action))
                self._skill_matches[option] = self._skill_matches.get(option, 0) + matched
        if self._recent_actions is not None:
            self._recent_actions.append(int(action))
        # The bonus belongs to the sub-goal this step's action served: pay it before a completed sub-goal makes
        # the teacher move on to the next one (and on the last step of an episode too).
        reward += self._intrinsic_bonus()
        probs = None
        if not (terminated or truncated):
            probs = self._update_advice(force=False)
        else:
            self._close_advice(state_changed=False)
            self._finish_episode()
            achievements = getattr(self.task, "episode_achievements", None)
            if achievements is not None:
                # The env's own return too: RLlib's episode return includes the intrinsic bonus.
                info = {**info, "episode_achievements": tuple(achievements()), "episode_env_return": self._return}
        return self._observe(obs), reward, terminated, truncated, self._with_probs(info, probs)

    # -- advice ------------------------------------------------------------------------------------------

    def _reset_episode_state(self) -> None:
        self._text: str | None = None
        self._query: TeacherQuery | None = None  # the query the current advice answered
        self._advice: Advice | None = None
        self._current: str | None = None  # option being followed (best-rated)
        # Hindsight labels only (adapter.pair_label=achieved): the query's options already finished when it was
        # asked, every option's skill action in the current state, and on how many steps the student took it.
        self._done_at_ask: frozenset[str] = frozenset()
        self._option_actions: dict[str, int | None] | None = None
        self._skill_matches: dict[str, int] = {}
        self._last_probs: np.ndarray | None = None
        self._since_ask = 0
        self._length = 0
        self._return = 0.0
        self._advised_steps = 0
        self._followed = 0
        self._period_steps = 0
        self._followed_at_period_start = 0
        self._outcomes: list[AdviceOutcome] = []
        self._completed: list[str] = []
        self._recent_actions: deque[int] | None = deque(maxlen=100) if self._per_option_ask else None
        self._bonus_paid = False

    def _needs_new_advice(self, force: bool) -> bool:
        if force or self._advice is None:
            return True
        if self._per_option_ask:
            done = self._current is not None and self._progress_done(self._current)
            return self._since_ask >= self.cfg.env.ask_every_k or (self.cfg.env.ask_on_subgoal_done and done)
        return self.task.state_text() != self._text

    def _update_advice(self, force: bool) -> np.ndarray | None:
        if self.advice_source is None:
            return None
        self._since_ask += 1
        if self._needs_new_advice(force):
            self._close_advice()
            self._text = self.task.state_text()
            query = TeacherQuery(
                family=self.family_spec.name,
                task=self.task.task_name,
                state_text=self._text,
                options=tuple(self.task.options()),
                context=self._context(),
            )
            self._query = query
            self._advice = self.advice_source.request(query) if query.options else None
            self._since_ask = 0
            self._bonus_paid = False
            self._current = self._advice.best() if self._advice is not None else None
            if self._current is not None:
                self.task.begin_option(self._current)
            if self._label_achieved:
                self._done_at_ask = frozenset(o for o in query.options if self._progress_done(o))
                self._skill_matches = dict.fromkeys(query.options, 0)
        if self._advice is None:
            self._last_probs = None
            self._option_actions = None
            return None
        self._period_steps += 1
        self.advice_source.note_advised_step(self._advice)
        # Hindsight labels need every option's action, not only those the teacher rates above 0.
        actions = {o: self.task.option_action(o) for o, p in zip(self._advice.options, self._advice.probs)
                   if p > 0 or self._label_achieved}
        self._option_actions = actions if self._label_achieved else None
        probs = teacher_action_distribution(self._advice, actions, self.num_actions, self.cfg.teacher.mode, self._rng)
        self._last_probs = probs
        return probs

    def _progress_done(self, option: str) -> bool:
        done, total = self.task.option_progress(option)
        return total > 0 and done >= total

    def _close_advice(self, state_changed: bool = True) -> None:
        """Record how the student did with the advice that is about to be replaced (``state_changed``: because
        the state moved on, not because the episode ended)."""
        if self._current is None or self._text is None:
            return
        done, total = self.task.option_progress(self._current)
        if total > 0 and done >= total:
            self._completed.append(self._current)
        followed = (self._followed - self._followed_at_period_start) / max(self._period_steps, 1)
        options, context = (self._query.options, self._query.context) if self._query is not None else ((), "")
        # The analysis the teacher read (adapter.role=analyst): completing the sub-goal makes it a training pair.
        analysis = self._advice.analysis if self._advice is not None else ""
        achieved = self._achieved_option(options, state_changed) if self._label_achieved else ""
        self._outcomes.append(AdviceOutcome(self._text, self._current, int(done), int(total), followed,
                                            options, context, analysis, achieved))
        self._period_steps = 0
        self._followed_at_period_start = self._followed
        self._current = None

    def _achieved_option(self, options: tuple[str, ...], state_changed: bool) -> str:
        """The option the student carried out while the advice held (the hindsight label), or "" if unclear.

        Of the query's options finished now and not when it was asked, the one whose skill the student's actions
        matched most often (ties: the advised option, then the query's order): finishing one option can finish
        another as a by-product (MiniGrid's "explore" is done once nothing is left to see, which fetching the key
        can also bring about). If none finished and the state moved on: the family's discovering option
        (``FamilySpec.hindsight_explore``; MiniGrid: something new came into view) or, for a family without one,
        the option whose skill the student matched most often, if exactly one did (two skills that agreed on
        every step say nothing about which one the student meant).
        """
        order = sorted(options, key=lambda o: o != self._current)  # stable: the advised option first
        finished = [o for o in order if o not in self._done_at_ask and self._progress_done(o)]
        if finished:
            return max(finished, key=lambda o: self._skill_matches.get(o, 0))
        if not state_changed:
            return ""
        explore = self.family_spec.hindsight_explore
        if explore:
            return explore if explore in options else ""
        counts = sorted((self._skill_matches.get(o, 0), o) for o in options)
        if not counts or counts[-1][0] == 0 or (len(counts) > 1 and counts[-2][0] == counts[-1][0]):
            return ""
        return counts[-1][1]

    def _intrinsic_bonus(self) -> float:
        coef = self.cfg.env.intrinsic_reward
        if coef <= 0 or self._current is None or self._bonus_paid:
            return 0.0
        if self._progress_done(self._current):
            self._bonus_paid = True  # once per suggested sub-goal
            return coef
        return 0.0

    def _context(self) -> str:
        if not self._per_option_ask or not self._completed:
            return ""
        return "Recently completed: " + ", ".join(self._completed[-3:]) + "."

    # -- episode end ---------------------------------------------------------------------------------------

    def _finish_episode(self) -> None:
        if self.feedback is None:
            return
        achievements = tuple(getattr(self.task, "episode_achievements", tuple)())
        names = getattr(self.task, "action_names", None)
        recent = tuple(names[a] for a in self._recent_actions) if names and self._recent_actions else ()
        self.feedback.send(
            EpisodeSummary(
                family=self.family_spec.name,
                task=self.task.task_name,
                success=bool(self.task.success()),
                episode_return=self._return,
                length=self._length,
                outcomes=tuple(self._outcomes),
                subgoals_completed=tuple(self._completed),
                achievements=achievements,
                recent_actions=recent,
                teacher_steps=self._advised_steps,
            )
        )

    # -- observation plumbing ---------------------------------------------------------------------------------

    def _observe(self, obs: Any) -> Any:
        # Sub-goal-conditioned tasks refresh their observation after begin_option() changed the sub-goal.
        current_obs = getattr(self.task, "current_obs", None)
        return current_obs() if current_obs is not None and self._per_option_ask else obs

    def _with_probs(self, info: dict, probs: np.ndarray | None) -> dict:
        info = dict(info)
        info[TEACHER_PROBS] = probs if probs is not None else self._zeros
        info["success"] = bool(self.task.success())
        return info
