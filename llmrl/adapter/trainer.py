"""The adapter trainer: a named Ray actor that fine-tunes the teacher's LoRA adapter while RL runs.

A background thread of the actor, every ``adapter.poll_s``:

1. fetches the training pairs first seen since its cursor from the feedback actor (``pairs_since``);
2. when ``adapter.min_new_pairs`` new pairs came in, or ``adapter.train_every_episodes`` episodes passed since
   the last attempt, fine-tunes (``finetune.LoraFineTuner``) from the version in service on the training
   side of the split, with prompts built from the feedback actor's current prompt bank;
3. keeps the result as a new version (``versions.write_version``) only when the held-out loss improved or,
   with ``adapter.accept=plan_accuracy``, when the teacher's top plan is the labelled plan in more of all the
   labelled states (ties: a lower choice loss) and is unchanged in every state whose label is still held back
   (``adapter.min_label_votes``): with few labelled states, a fine-tune on them can carry a plan over to
   similar states the student has not shown it (LavaDoorKey: "go to the door" from "door in view, key held" to
   "key and door in view, nothing held"). After a rejection it does not fine-tune again until its inputs change
   (``_FineTuneInputs``).

With ``adapter.role=analyst`` the base model is the analyst LM and a pair's text is (the analyst's prompt, the
analysis that preceded the completed sub-goal), rendered with the analyst's own tokenizer
(``analyst.AnalystPrompts``); its versions say ``role: analyst``, and only an analyst loads them.

The teacher service asks ``latest()`` and hot-loads what it gets. Everything that can go wrong is counted in
``stats()`` (kept in ``<run>/adapters/trainer_counters.json``, so they survive restarts), logged, and journaled
per fine-tune with its verdict (``<run>/adapters/attempts.jsonl``), and leaves
the version in service as it was: too few pairs for a held-out split, a
non-finite loss, running out of memory, any other error. It runs in its own process, so a fine-tune never
blocks an env runner or the learner. When Ray restarts it (``adapter.max_restarts``), the new instance starts
from the version ``latest.json`` names and fetches the feedback actor's pairs again from the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import astuple, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from llmrl.adapter.data import pair_choices, pair_text, split_pairs
from llmrl.adapter.versions import ADAPTERS_DIR, latest_adapter, write_json_atomic, write_version
from llmrl.config import AdapterConfig
from llmrl.feedback.pairs import PairLog
from llmrl.messages import (ADAPTER_TRAINER_COUNTERS, AdapterTrainerStats, AdapterVersion, PairBatch,
                            PromptBankSnapshot, TeacherQuery, TrainingPair)

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 30.0  # a feedback call slower than this is skipped until the next poll
COUNTERS_FILE = "trainer_counters.json"  # in <run>/adapters/: the counters survive a restart of the trainer
# In <run>/adapters/: one JSON line per fine-tune, its outcome and why, so a run says afterwards why a version was
# or was not kept (the log lines go with the actor's process).
ATTEMPTS_FILE = "attempts.jsonl"
_ATTEMPT_OUTCOMES = ("accepted", "rejected", "diverged", "out_of_memory", "failed")


def read_attempts(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's fine-tune journal (``ATTEMPTS_FILE``), oldest first; [] when it has none."""
    path = Path(run_dir) / ADAPTERS_DIR / ATTEMPTS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


@dataclass(frozen=True)
class _FineTuneInputs:
    """Everything a fine-tune reads. After a rejection the trainer does not fine-tune again until these change (a
    new or relabelled pair, a state whose label comes of age, a new prompt bank text, a new version to start
    from): a rerun on the same inputs differs only in batch order and dropout, and keeping whichever rerun
    passes would be a search over the acceptance test, not something learnt from the student."""

    start: str | None  # the adapter version to start from (None: a fresh adapter)
    pairs: int  # training pairs
    held_out: int  # held-out pairs
    train_text: tuple = ()  # (prompt, continuation) per pair, for adapter.loss=nll
    heldout_text: tuple = ()
    train_choices: tuple = ()  # (prompt, continuations, label) per pair, for loss=choice and accept=plan_accuracy
    heldout_choices: tuple = ()
    unlabelled: tuple = ()  # the same for the states whose labels are still held back (accept=plan_accuracy)

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()


class AdapterTrainer:
    """Fine-tunes and versions the adapter. ``feedback`` is the feedback actor's name (Ray) or, in-process, an
    object with ``pairs_since`` and ``snapshot`` (a ``FeedbackService``)."""

    def __init__(self, cfg: AdapterConfig, base_model: str, run_dir: str, feedback: Any,
                 namespace: str | None = None, max_prompt_tokens: int = 1024, autostart: bool = True,
                 chat_template: str = "off") -> None:
        import torch

        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        self.cfg = cfg
        self.base_model = base_model
        self.run_dir = Path(run_dir)
        self._feedback = feedback
        self._namespace = namespace
        self._max_prompt_tokens = max_prompt_tokens
        self._tuner: Any = None
        # role=teacher: how the teacher renders a query (teacher.hf.chat_template; "off" for vllm and openai,
        # which send plain prompts), so the pairs are the very prompts it scores.
        self._chat_template = chat_template
        self._prompts: Any = None
        self._tuner_error = ""
        self._pairs = PairLog(cfg.max_pairs, credit="", label=cfg.pair_label)  # hindsight: newer pair per state wins
        self._held: tuple[TeacherQuery, ...] = ()  # states short of min_label_votes, as of the last poll
        self._cursor = 0
        self._episodes = 0
        self._new_since_attempt = 0
        self._episodes_at_attempt = 0
        self._rejected_digest = ""  # of the inputs of the last fine-tune, when it was rejected
        self._latest: AdapterVersion | None = latest_adapter(self.run_dir)
        self._instance_id = uuid.uuid4().hex[:12]  # a new one per Ray restart: the loop counts restarts by it
        self._counts = dict.fromkeys(ADAPTER_TRAINER_COUNTERS, 0)
        self._train_s = 0.0
        self._load_counters()
        self._lock = threading.Lock()  # one fine-tune at a time (the loop and train_now)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._latest is not None:
            log.info("adapter trainer %s continues from adapter v%d", self._instance_id, self._latest.version)
        if autostart:
            self._thread = threading.Thread(target=self._loop, name="adapter-trainer", daemon=True)
            self._thread.start()

    # -- public --------------------------------------------------------------------------------------------

    def latest(self) -> AdapterVersion | None:
        """The version in service (what the teacher should serve), None before the first accepted fine-tune."""
        return self._latest

    def reload(self) -> int:
        """Re-read ``latest.json`` (after a resume restored a checkpoint's adapter); returns its version."""
        self._latest = latest_adapter(self.run_dir)
        return self._latest.version if self._latest is not None else 0

    def instance_id(self) -> str:
        """This process's id (``training.restarts`` counts Ray restarts by its changes)."""
        return self._instance_id

    def stats(self) -> AdapterTrainerStats:
        latest = self._latest
        return AdapterTrainerStats(
            instance_id=self._instance_id, version=latest.version if latest else 0, pairs=len(self._pairs),
            heldout_loss=latest.heldout_loss if latest else math.nan, train_s=self._train_s, **self._counts)

    def poll_once(self) -> int:
        """Fetch pairs new since the cursor; returns how many were new to the trainer."""
        batch: PairBatch = self._call("pairs_since", self._cursor)
        if batch.cursor < self._cursor or batch.episodes < self._episodes:
            # The feedback actor restarted or was re-seeded from an older checkpoint: fetch everything again
            # (pairs the trainer already has are de-duplicated).
            self._cursor, self._episodes_at_attempt = 0, 0
            batch = self._call("pairs_since", 0)
        self._cursor, self._episodes, self._held = batch.cursor, batch.episodes, batch.held
        # An analyst learns only from pairs that carry the analysis it wrote (the feedback actor sends no others).
        pairs = [p for p in batch.pairs if p.analysis] if self.cfg.role == "analyst" else batch.pairs
        new = self._pairs.add(pairs)
        self._new_since_attempt += new
        return new

    def due(self) -> bool:
        return (self._new_since_attempt >= self.cfg.min_new_pairs
                or self._episodes - self._episodes_at_attempt >= self.cfg.train_every_episodes)

    def train_now(self) -> str:
        """One fine-tune attempt now; returns its outcome (a key of ``stats()``'s counters)."""
        with self._lock:
            return self._attempt()

    def stop(self) -> None:
        self._stop.set()

    # -- internals -----------------------------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Any:
        if not isinstance(self._feedback, str):
            return getattr(self._feedback, method)(*args)
        import ray

        handle = ray.get_actor(self._feedback, namespace=self._namespace)
        return ray.get(getattr(handle, method).remote(*args), timeout=_CALL_TIMEOUT_S)

    def _loop(self) -> None:
        while not self._stop.wait(self.cfg.poll_s):
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the feedback actor restarting: try again next poll
                log.debug("adapter trainer: fetching pairs failed: %s", exc)
                continue
            if self.due():
                self.train_now()

    def _ensure_tuner(self) -> Any:
        if self._tuner is None and not self._tuner_error:
            from llmrl.adapter.finetune import LoraFineTuner

            try:
                tuner = LoraFineTuner(self.base_model, self.cfg, self._max_prompt_tokens)
                if self.cfg.role == "analyst":
                    from llmrl.adapter.analyst import AnalystPrompts

                    self._prompts = AnalystPrompts(tuner.tokenizer)
                else:
                    from llmrl.teacher.backends.hf import prompt_format

                    self._prompts = prompt_format(self._chat_template, tuner.tokenizer, self.base_model)
                self._tuner = tuner
            except Exception as exc:  # noqa: BLE001 - a base model that will not load: report once, stop trying
                self._tuner_error = " ".join(str(exc).split()) or type(exc).__name__
                log.error("adapter trainer: cannot load base model '%s': %s", self.base_model, self._tuner_error)
        return self._tuner

    def _start_weights(self, tuner: Any) -> str | None:
        latest = self._latest
        if latest is not None and latest.base_hash != tuner.base_hash:
            log.warning("adapter v%d was trained on another base model (%s); starting a fresh adapter",
                        latest.version, latest.base_model)
            return None
        return latest.path if latest is not None else None

    def _attempt(self) -> str:
        self._new_since_attempt = 0
        self._episodes_at_attempt = self._episodes
        # The salt counts fine-tunes kept so far: a rejected attempt is retried on the same split.
        salt = str(self._counts["accepted"]) if self.cfg.rotate_heldout else ""
        train, heldout = split_pairs(self._pairs.pairs(), self.cfg.heldout_frac, salt)
        if not train or not heldout:
            return self._count("no_pairs", f"{len(self._pairs)} distinct pairs: too few for a held-out split")
        tuner = self._ensure_tuner()
        if tuner is None:
            return self._count("failed", f"no base model ({self._tuner_error})")
        t0: float | None = None  # train_s counts attempts, not the rendering that finds a trigger unchanged
        try:
            inputs = self._inputs(tuner, train, heldout)
            if inputs.digest == self._rejected_digest:
                return self._count("unchanged", "the same pairs, prompts and start weights as the last "
                                   "rejected fine-tune", logging.DEBUG)
            self._counts["attempts"] += 1
            t0 = time.perf_counter()
            outcome = self._fine_tune(tuner, inputs)
            self._rejected_digest = inputs.digest if outcome == "rejected" else ""
            return outcome
        except Exception as exc:  # noqa: BLE001 - any failure keeps the version in service
            from llmrl.adapter.finetune import DivergedError, is_out_of_memory

            kind = ("diverged" if isinstance(exc, DivergedError)
                    else "out_of_memory" if is_out_of_memory(exc) else "failed")
            return self._count(kind, " ".join(str(exc).split()) or type(exc).__name__)
        finally:
            if t0 is not None:
                self._train_s += time.perf_counter() - t0
            self._save_counters()

    def _inputs(self, tuner: Any, train: list, heldout: list) -> _FineTuneInputs:
        """The texts a fine-tune reads, rendered with the feedback actor's current prompt bank."""
        bank: PromptBankSnapshot = self._call("snapshot")
        prompts, analyst = self._prompts, self.cfg.role == "analyst"

        def choices(pairs: list) -> tuple:
            return tuple(pair_choices(p, bank, prompts) for p in pairs)

        def texts(pairs: list) -> tuple:
            return tuple(pair_text(p, bank, prompts, analyst) for p in pairs)

        plan_accuracy, by_text = self.cfg.accept == "plan_accuracy", self.cfg.loss == "nll"
        by_choice = plan_accuracy or not by_text  # plan_accuracy judges by the choices whatever the loss
        return _FineTuneInputs(
            start=self._start_weights(tuner), pairs=len(train), held_out=len(heldout),
            train_text=texts(train) if by_text else (), heldout_text=texts(heldout) if by_text else (),
            train_choices=choices(train) if by_choice else (), heldout_choices=choices(heldout) if by_choice else (),
            unlabelled=choices([TrainingPair(q, q.options[0]) for q in self._held if q.options])
            if plan_accuracy else ())

    def _fine_tune(self, tuner: Any, inputs: _FineTuneInputs) -> str:
        tuner.load(inputs.start)
        by_choice = self.cfg.loss == "choice"
        if by_choice:
            train_ex = tuner.encode_choices(inputs.train_choices)
            heldout_ex = tuner.encode_choices(inputs.heldout_choices)
        else:
            train_ex, heldout_ex = tuner.encode(inputs.train_text), tuner.encode(inputs.heldout_text)
        # plan_accuracy judges by every labelled state, the held-out pairs first (loss=choice: already encoded),
        # and by the top plans of the states whose labels are still held back.
        held_choices, labelled, unlabelled, tops_before = [], [], [], []
        if self.cfg.accept == "plan_accuracy":
            held_choices = heldout_ex if by_choice else tuner.encode_choices(inputs.heldout_choices)
            labelled = held_choices + (train_ex if by_choice else tuner.encode_choices(inputs.train_choices))
            unlabelled = tuner.encode_choices(inputs.unlabelled)
            tops_before = tuner.top_choices(unlabelled)
        before = tuner.loss(heldout_ex)
        choices_before = tuner.plan_choices(labelled)
        train_loss = tuner.train(train_ex)
        after = tuner.loss(heldout_ex)
        if not math.isfinite(after):
            from llmrl.adapter.finetune import DivergedError

            raise DivergedError(f"held-out loss is {after}")
        if self.cfg.accept == "plan_accuracy":
            why_not = (_plan_accuracy_verdict(choices_before, tuner.plan_choices(labelled), len(held_choices))
                       or _unlabelled_verdict(tops_before, tuner.top_choices(unlabelled)))
        else:
            why_not = "" if after < before else f"held-out loss {after:.4f} did not improve on {before:.4f}"
        figures = {"heldout_loss_before": before, "heldout_loss_after": after, "train_loss": train_loss,
                   "train_pairs": inputs.pairs, "heldout_pairs": inputs.held_out}
        if why_not:
            return self._count("rejected", why_not, logging.INFO, **figures)
        version = write_version(self.run_dir, tuner.save, base_model=self.base_model, base_hash=tuner.base_hash,
                                heldout_loss=after, pairs_used=inputs.pairs, role=self.cfg.role)
        self._latest = version
        log.info("adapter v%d: held-out loss %.4f -> %.4f (train loss %.4f, %d pairs, %d held out)",
                 version.version, before, after, train_loss, inputs.pairs, inputs.held_out)
        return self._count("accepted", "", **figures)

    def _load_counters(self) -> None:
        path = self.run_dir / ADAPTERS_DIR / COUNTERS_FILE
        try:
            saved = json.loads(path.read_text())
            self._counts.update({k: int(saved[k]) for k in ADAPTER_TRAINER_COUNTERS if k in saved})
            self._train_s = float(saved.get("train_s", 0.0))
        except (OSError, ValueError, TypeError):
            pass  # a first start (or an unreadable file: the counters restart at zero)

    def _save_counters(self) -> None:
        (self.run_dir / ADAPTERS_DIR).mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / ADAPTERS_DIR / COUNTERS_FILE, {**self._counts, "train_s": self._train_s})

    def _count(self, outcome: str, why: str = "", level: int = logging.WARNING, **figures: Any) -> str:
        self._counts[outcome] += 1
        self._save_counters()
        in_service = self._latest.version if self._latest else 0
        if why:
            log.log(level, "adapter fine-tune %s: %s; the version in service stays (v%d)", outcome, why, in_service)
        if outcome in _ATTEMPT_OUTCOMES:
            record = {"time": time.time(), "outcome": outcome, "why": why, "episodes": self._episodes,
                      "pairs": len(self._pairs), "in_service": in_service, **figures}
            (self.run_dir / ADAPTERS_DIR).mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / ADAPTERS_DIR / ATTEMPTS_FILE, "a") as f:
                f.write(json.dumps(record, default=float) + "\n")
        return outcome


def _plan_accuracy_verdict(before: list[tuple[bool, float]], after: list[tuple[bool, float]],
                           n_heldout: int) -> str:
    """Why a fine-tune is not kept under ``adapter.accept=plan_accuracy`` ("" = keep it). ``before``/``after``
    are ``plan_choices`` of the same examples, the held-out ones first (their count is logged: a held-out state
    that loses its plan counts against the total like any other, and the next split trains on it)."""
    held = f"{sum(ok for ok, _ in before[:n_heldout])} -> {sum(ok for ok, _ in after[:n_heldout])} of {n_heldout}"
    right_before, right_after = sum(ok for ok, _ in before), sum(ok for ok, _ in after)
    ce_before = sum(ce for _, ce in before) / max(len(before), 1)
    ce_after = sum(ce for _, ce in after) / max(len(after), 1)
    summary = (f"top plan right in {right_before} -> {right_after} of {len(after)} labelled states (held out: "
               f"{held}), choice loss {ce_before:.4f} -> {ce_after:.4f}")
    if right_after > right_before or (right_after == right_before and ce_after < ce_before):
        log.info("adapter fine-tune passes on its labelled states: %s", summary)
        return ""
    return summary


def _unlabelled_verdict(before: list[int], after: list[int]) -> str:
    """Why a fine-tune is not kept although the labelled states allow it ("" = keep it): it changed the top
    plan of a state whose label is still held back. The student has not shown those states' plans yet, so no
    change there is a known improvement, and a fine-tune on a few labelled states moves similar ones."""
    changed = sum(b != a for b, a in zip(before, after))
    if not changed:
        return ""
    return f"the top plan changed in {changed} of {len(before)} states whose labels are held (adapter.min_label_votes)"


def start_adapter_trainer(cfg: AdapterConfig, base_model: str, run_dir: str, feedback_actor: str,
                          namespace: str | None, max_prompt_tokens: int, chat_template: str = "off") -> Any:
    """Create (or reuse) the named trainer actor; its placement (CPUs, GPUs) comes from ``cfg``."""
    import ray

    actor_cls = ray.remote(AdapterTrainer).options(
        name=cfg.actor_name,
        namespace=namespace,
        get_if_exists=True,
        num_cpus=cfg.num_cpus,
        num_gpus=cfg.num_gpus,
        max_restarts=cfg.max_restarts,
        max_task_retries=0,
        # Threaded: stats() and latest() answer while the background thread fine-tunes.
        max_concurrency=4,
    )
    return actor_cls.remote(cfg, base_model, str(run_dir), feedback_actor, namespace, max_prompt_tokens,
                            chat_template=chat_template)
