"""The config tree's dataclasses: every field documented where it is declared (after CleanRL).

``llmrl.config.loading`` builds a tree from YAML and overrides and ``llmrl.config.validation`` checks it; import
everything from ``llmrl.config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A bad config: unknown key, wrong type or out-of-range value. The message names the key."""


PROMPT_STYLES = ("plain", "llm4teach")  # every family writes "plain"; FamilySpec.prompt_styles says which others
TEACHER_BACKENDS = ("off", "scripted", "hf", "vllm", "openai", "replay")


@dataclass
class EnvConfig:
    # A task of a family in llmrl.envs.registry (SimpleDoorKey, ..., Crafter), or package.module:factory for your
    # own env (docs/custom_env.md).
    name: str = "SimpleDoorKey"
    # Episode step limit (LLM4Teach: 150; Crafter: 10000). 0: the environment's own limit, for registered
    # MiniGrid-*/BabyAI-* ids only (configs/minigrid/registered.yaml); a registered id keeps its own view size too.
    max_steps: int = 150
    room_min: int = 5  # LLM4Teach tasks: smallest room side
    room_max: int = 10  # LLM4Teach tasks: largest room side (also the observation grid size; TwoDoor: always 20)
    agent_view_size: int = 3  # MiniGrid egocentric view (LLM4Teach: 3)
    egocentric: bool = True  # MiniGrid student map centred on the agent and rotated to its heading
    crafter_size: int = 64  # Crafter image side in pixels
    ask_every_k: int = 100  # Crafter: re-ask the teacher every K steps (AdaRefiner: 100) ...
    ask_on_subgoal_done: bool = True  # ... and whenever the current sub-goal completes
    intrinsic_reward: float = 0.0  # Crafter: bonus when the suggested sub-goal is achieved (ELLM); 0 disables

    @property
    def family(self) -> str:
        """The name of the family that owns ``name`` (``llmrl.envs.registry``)."""
        from llmrl.envs.registry import family_of

        return family_of(self.name)


@dataclass
class HFConfig:
    model: str = ""  # hub name or local path of a causal LM (tests build one locally)
    device: str = "cpu"  # "cpu" or "cuda[:i]"
    dtype: str = "float32"  # torch dtype name
    selection: str = "score"  # "score": log-likelihood of each candidate; "sample": n samples counted (LLM4Teach)
    num_samples: int = 10  # samples per state in "sample" mode (LLM4Teach asks 10 times)
    temperature: float = 1.0  # softmax temperature over candidate log-likelihoods / sampling temperature
    max_new_tokens: int = 32  # generation budget per sample in "sample" mode
    max_prompt_tokens: int = 1024  # prompts are truncated from the left past this
    length_normalize: bool = True  # score = mean token log-prob, so long plans are not penalised
    # Render prompts through the tokenizer's chat template (system = the prompt bank, user = the query, the
    # answer cue opening the assistant turn): "auto" when the tokenizer has one, "on" (an error if it has
    # none), "off" (plain text, for base models and the tiny test LM). Instruction-tuned models read it better.
    chat_template: str = "auto"
    # torch threads of the teacher process on CPU (0 = torch's default, one per core). The LM shares the cores with
    # the env runners and the learner: more threads than it has cores to itself oversubscribe them all (see
    # resources.learner_torch_threads), so one, unless the teacher has cores of its own (teacher.num_cpus).
    torch_threads: int = 1


@dataclass
class VLLMConfig:
    model: str = ""  # hub name or local path
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.85
    max_model_len: int = 2048
    tensor_parallel_size: int = 1
    enable_prefix_caching: bool = True
    selection: str = "choice"  # "choice": n samples under structured-output choice; "score": prompt logprobs
    num_samples: int = 10
    temperature: float = 1.0
    max_tokens: int = 32
    enable_lora: bool = False
    max_loras: int = 4
    max_lora_rank: int = 64
    enforce_eager: bool = False  # skip CUDA graph capture (faster start, slower steps)
    length_normalize: bool = True  # score mode: mean token log-prob, as teacher.hf.length_normalize


@dataclass
class OpenAIConfig:
    base_url: str = ""  # e.g. http://HEAD:8000/v1 for `vllm serve`; empty is an error when backend=openai
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # name of the env var holding the key; the key itself is never logged
    timeout_s: float = 30.0
    max_retries: int = 3  # bounded: after this many failures the query yields no advice
    backoff_s: float = 0.5  # first retry delay, doubled per retry
    max_concurrency: int = 16  # in-flight HTTP requests per replica
    selection: str = "sample"  # "sample": n completions counted; "choice": vLLM's structured choice extension
    num_samples: int = 10
    temperature: float = 1.0
    max_tokens: int = 32


@dataclass
class ReplayConfig:
    """``teacher.backend=replay``: answer from an earlier run's teacher log (see docs/teacher_log.md)."""

    log: str = ""  # teacher_log.jsonl of the run to replay (or its run folder); its rotated and replica files too
    # What answers a query the log does not hold (counted as a miss): "none" = no advice (reason "replay_miss"),
    # or a backend built from this same teacher config ("scripted", "hf", "vllm", "openai").
    fallback: str = "none"


@dataclass
class TeacherConfig:
    backend: str = "scripted"  # off | scripted | hf | vllm | openai | replay ("off" = plain PPO, same code path)
    mode: str = "soft"  # "soft": mix option actions by probability; "hard": sample one option per step
    error_rate: float = 0.0  # scripted: probability that a query gets a plausible wrong plan (imperfect LLM)
    seed: int = 0  # scripted error draws
    max_batch_size: int = 32  # service: flush a batch at this many distinct prompts ...
    max_wait_ms: float = 5.0  # ... or after this long since the first request in it
    cache_size: int = 4096  # service: bounded LRU keyed by (backend, bank version, prompt)
    client_cache_size: int = 1024  # per env-runner LRU, so repeated states never leave the process
    advice_timeout_s: float = 5.0  # how long a runner waits for new-state advice before going on without it
    retry_after_s: float = 2.0  # after a failed call, how long a runner waits before asking again
    bank_refresh_s: float = 2.0  # how often the service polls the feedback actor for a newer prompt bank
    # Keeping a slow LM off the hot path (docs/benchmarks/hot_path.md). Every prompt-bank version the service adopts
    # makes each cached answer stale, so it adopts a newer bank at most once per this many seconds (the first one
    # at once); versions the feedback actor publishes meanwhile (every feedback.publish_every episodes) are skipped.
    bank_min_interval_s: float = 30.0
    # ... and no sooner than keeps background re-scoring below this share of the LM's time: after a re-score that
    # kept the backend busy T s, the next version waits at least T * (1 / share - 1) s. SmolLM2-135M on a shared
    # 2-core CPU needs seconds per state under a grown bank, so this, not the fixed interval, sets its pace there;
    # on a GPU the interval does. 1 = only the fixed interval.
    rescore_max_busy: float = 0.2
    # Before the service adopts a new bank it re-scores up to this many of the most recently asked states under it,
    # in the background and after any new-state query, and goes on answering with the previous version meanwhile;
    # runners then find fresh answers waiting. 0 = adopt at once and compute fresh answers on demand.
    rescore_recent: int = 64
    rescore_batch_size: int = 4  # states per background re-score call: small, so a new state waits for one at most
    actor_name: str = "llmrl_teacher"  # named Ray actor (replicas get a "_<i>" suffix)
    max_restarts: int = 10  # Ray restarts of a dead teacher replica (bounded)
    num_replicas: int = 1  # teacher service replicas (one per GPU or TP group)
    routing: str = "least_pending"  # replica router: "least_pending" | "affinity" (by prompt hash)
    num_gpus: float = 0.0  # GPUs reserved per replica (vLLM: tensor_parallel_size)
    num_cpus: float = 0.0  # CPUs reserved per replica (0: schedulable on a saturated 2-core box)
    # Added to each replica process's OS niceness (Unix nice; Ray starts its workers at 15, env runners included,
    # and the driver with the learner at 0; the sum is capped at 19). Where the teacher shares CPU cores with the
    # env runners, a positive value gives its LM work less of them: runners keep going on stale-bank advice while
    # the LM re-scores in the background, and a new state waits up to advice_timeout_s. 0 = unchanged.
    cpu_nice: int = 0
    reweight_by_success: bool = False  # RL->LLM: multiply option probs by the student's measured success
    # The task prompt LM teachers read (the prompt bank's task description), written by the env family:
    # "plain": the task, the plan vocabulary and a one-line worked example; "llm4teach": LLM4Teach's task prompt
    # and its chain-of-thought worked example (MiniGrid only). See docs/smollm2.md for how they score.
    prompt_style: str = "plain"
    # Teacher log: every backend answer is appended to <run folder>/teacher_log.jsonl (docs/teacher_log.md), by a
    # background thread, so a batch never waits for the disk.
    log: bool = True  # false: no teacher log
    log_flush_s: float = 2.0  # the writer flushes (and fsyncs) this often: a crash loses at most this much
    log_max_mb: float = 64.0  # the file rotates past this size (teacher_log.1.jsonl, .2, ...; none is deleted)
    log_queue_size: int = 10000  # answers waiting for the writer; past this they are dropped and counted
    # The log identifies an hf model by a sha256 of its weight files up to this total size; a larger model by
    # its files' names, sizes and safetensors headers (cheap at start-up, but blind to same-shape edits).
    log_hash_weights_max_mb: float = 2048.0
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    hf: HFConfig = field(default_factory=HFConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)


@dataclass
class DistillConfig:
    """lambda(t) for the lambda * CE(pi_teacher, pi_student) term; t counts learner updates."""

    coef_start: float = 10.0  # LLM4Teach: 10
    coef_decrement: float = 0.005  # subtracted per update (LLM4Teach: 0.005)
    coef_floor: float = 0.1  # never below this while active (LLM4Teach: 0.1)
    cutoff_updates: int = 0  # after this many updates the term is removed; 0 = never (upstream: 3000)


@dataclass
class FeedbackConfig:
    enabled: bool = True  # send episode summaries to the feedback actor
    actor_name: str = "llmrl_feedback"
    publish_every: int = 20  # episodes between new prompt-bank versions (each bump invalidates caches)
    max_exemplars: int = 3  # exemplars from successful episodes kept in the bank
    max_feedback_lines: int = 8  # "in state S, plan P succeeded k/n times" lines kept in the bank
    min_trials: int = 3  # trials before a (state, option) pair earns a feedback line
    # What makes a trial (one piece of advice while it held) a success, for the bank's statistics (feedback
    # lines, per-sub-goal rates, teacher.reweight_by_success): "plan" = the student completed the advised plan;
    # "episode" = it completed the plan and the episode then succeeded (task credit: easy plans that do not
    # serve the task stop scoring; needs a task with a success signal, e.g. MiniGrid).
    credit: str = "plan"
    max_tracked_states: int = 5000  # bound on (state, option) statistics kept; least recently seen are dropped
    flush_every: int = 8  # episodes a runner buffers before sending summaries
    # Text embedding of the comprehension score (Crafter): "bag_of_words" (deterministic, no model),
    # "sentence_transformers" (AdaRefiner: SBERT all-MiniLM-L6-v2) or "lm_mean_hidden" (a causal LM's mean last
    # hidden state, e.g. the teacher's), the last two from the local folder comprehension_model.
    comprehension_embedder: str = "bag_of_words"
    comprehension_model: str = ""
    max_restarts: int = 10  # Ray restarts of the feedback actor (bounded); each is counted (feedback_restarts)
    # Keep the bank in the run folder's feedback/ (a snapshot plus an append-only log of the summaries since), so a
    # feedback actor that Ray restarts after a crash recovers it instead of starting empty. On a cluster the run
    # folder must be on storage that the actor's node can reach.
    persist: bool = True
    flush_s: float = 1.0  # seconds between journal writes: a crash loses at most this much feedback (0 = every batch)
    compact_every: int = 2000  # summaries logged before the log is folded into a new snapshot (bounds both files)


@dataclass
class AdapterConfig:
    """RLAdapter / AdaRefiner: a LoRA adapter on the teacher LM, fine-tuned online on what the student succeeded
    with (``llmrl.adapter``). Training runs in its own Ray actor, never on the env runners or the learner."""

    enabled: bool = False  # fine-tune and hot-load a LoRA adapter on the teacher LM (teacher.backend hf|vllm|openai)
    # "teacher": the LoRA goes on the teacher LM itself (the student's successes teach it which plan works where).
    # "analyst" (AdaRefiner): a small LM with the LoRA writes a short analysis of the student's situation (state,
    # recent sub-goals, comprehension score) that goes into the prompt of the frozen teacher LM; it is trained on
    # the analyses that preceded sub-goals the student then completed (llmrl.adapter.analyst).
    role: str = "teacher"
    # Local model folder, short name (`llmrl models list`) or hub name the adapter is trained on: the teacher LM
    # (role=teacher; "" = teacher.hf.model / teacher.vllm.model; required for teacher.backend=openai: the folder
    # of the model the server runs) or the analyst LM (role=analyst; "" = the teacher's model), which transformers
    # loads in every teacher replica.
    base_model: str = ""
    # role=teacher: the plan a training pair teaches for a state. "advised": the teacher's own plan, when the
    # student completed it (the pairs can only confirm what the teacher already says). "achieved" (hindsight): the
    # admissible plan the student actually finished from that state, advised or not; in an episode that passes
    # feedback.credit, the last one per state, so a detour the student undid is not taught. A student better
    # than its teacher thus teaches the teacher the plans it does not know yet.
    pair_label: str = "advised"
    # pair_label=achieved: credited episodes that must have voted on a state before its majority plan becomes a
    # training pair. A young student's majority can be wrong (docs/adapter.md: 2 votes to 1 for exploring with
    # the key in view, reversed 16k steps later), and a fine-tune on it teaches the teacher the mistake. 1: at once.
    min_label_votes: int = 1
    # role=teacher: what a fine-tune minimises. "nll": the mean token NLL of the pair's plan after its prompt
    # (AdaRefiner's supervised fine-tuning). "choice": the cross-entropy of the teacher's own distribution over the
    # query's plans (softmax of their length-normalised scores, temperature 1, as teacher.hf's score mode reads
    # them) against the pair's plan, so the plan rises relative to the others; with few pairs, "nll" raises the
    # common plans' likelihood in every state alike. Each pair costs one forward pass over all of its plans.
    loss: str = "nll"
    # When a fine-tune becomes the version in service. "heldout_loss": its loss (adapter.loss) on the held-out
    # pairs fell. "plan_accuracy" (role=teacher): more of all labelled states (training and held-out pairs) get
    # the pair's plan as the teacher's top plan, or as many with a lower mean choice cross-entropy over them.
    # With few distinct states each one has its own plan, so a held-out loss judges a fine-tune by a state the
    # other pairs do not teach; what the teacher needs is the states the student has shown it. Costs one forward
    # pass over every plan of every pair, before and after each fine-tune.
    accept: str = "heldout_loss"
    # role=analyst: new tokens generated per analysis (each costs one forward step); its first non-empty line is kept.
    analysis_tokens: int = 32
    # role=analyst: sampling temperature of analyses (0 = greedy). Above 0 the analyst tries other analyses, so
    # the student's completions can select among them; each state is analysed once per version (cached).
    analysis_temperature: float = 0.0
    analyst_device: str = "cpu"  # role=analyst: where each teacher replica runs the analyst LM ("cpu", "cuda[:i]")
    analysis_cache_size: int = 4096  # role=analyst: analyses kept per replica (least recently used dropped)
    r: int = 64  # LoRA rank (AdaRefiner: 64)
    alpha: float = 16.0  # LoRA alpha (AdaRefiner: 16)
    dropout: float = 0.05  # LoRA dropout
    lr: float = 2e-4  # AdamW learning rate (AdaRefiner: 2e-4)
    epochs: int = 1  # passes over the training pairs per fine-tune (AdaRefiner: 1)
    batch_size: int = 8  # pairs per optimizer step
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # Llama attention projections
    train_every_episodes: int = 100  # fine-tune after this many new episodes ...
    min_new_pairs: int = 16  # ... or as soon as this many new distinct (prompt, plan) pairs came in
    max_pairs: int = 2000  # distinct pairs kept (feedback actor and trainer); least recently seen dropped first
    heldout_frac: float = 0.2  # share of pairs (by a hash of the pair) kept out of training to judge a fine-tune
    # A new held-out split for every fine-tune, so that over time every pair is trained on (SimpleDoorKey has only
    # 6 distinct states: a fixed split would never teach the adapter 2 of them). The held-out pairs of one
    # fine-tune are then unseen by it, not by the versions before it. false: one fixed split, strictly unseen.
    rotate_heldout: bool = True
    poll_s: float = 5.0  # trainer: how often it fetches new pairs; teacher: how often it asks for a new version
    torch_threads: int = 1  # torch threads of the trainer process (a small box is shared with env runners)
    device: str = "cpu"  # where the trainer fine-tunes: "cpu" or "cuda[:i]" (with num_gpus > 0)
    num_cpus: float = 0.0  # CPUs reserved for the trainer actor (0: schedulable on a saturated 2-core box)
    num_gpus: float = 0.0  # GPUs reserved for it (a cluster: 1)
    max_restarts: int = 3  # Ray restarts of a dead trainer (bounded); it resumes from the latest version on disk
    actor_name: str = "llmrl_adapter"  # named Ray actor
    seed: int = 0  # LoRA initialisation and batch order


@dataclass
class PPOConfig:
    lr: float = 1e-3  # Adam (LLM4Teach: 1e-3)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_param: float = 0.2
    vf_loss_coeff: float = 0.5
    entropy_coeff: float = 0.001
    num_epochs: int = 3
    minibatch_size: int = 128
    train_batch_size: int = 2048  # env steps per update
    grad_clip: float = 0.5
    # Sample the next train batch on the env runners while the learner trains on this one (llmrl/rl/overlap.py):
    # each batch is then sampled by the policy one update older than the one it trains, so this is PPO with a
    # one-update policy lag, not synchronous PPO, and what is learned can change. The learner clips around the
    # policy the update starts from, with a truncated importance weight to the sampling policy ("decoupled" PPO,
    # llmrl/rl/connectors.py). Needs resources.num_env_runners >= 1.
    overlap_sampling: bool = False


@dataclass
class ModelConfig:
    embed_dim: int = 8  # MiniGrid: embedding size of each grid-cell channel
    hidden: int = 128  # width of the torso MLP
    grid_channels: tuple[int, ...] = (16, 32)  # MiniGrid CNN channels (3x3 convs; all but the first stride 2)
    # MiniGrid: stride of the first conv over the (2*room_max-1)^2 egocentric map. 1 = full resolution (the
    # network the sample-efficiency records were made with); 2 = about 1/4 of the MACs per sample.
    grid_first_stride: int = 1
    conv_channels: tuple[int, ...] = (16, 32, 32)  # Crafter CNN channels
    subgoal_embed_dim: int = 32  # Crafter: learned embedding table over the sub-goal vocabulary
    mission_embed_dim: int = 32  # registered MiniGrid/BabyAI ids: word embeddings the mission's GRU reads


@dataclass
class ResourcesConfig:
    address: str = ""  # Ray address; "" = start a local Ray (the job entry point uses "auto")
    num_cpus: int = 2  # local Ray only: CPUs to declare
    num_gpus: int = 0  # local Ray only: GPUs to declare
    num_env_runners: int = 1  # RLlib remote env runners (0 = sample in the driver)
    num_envs_per_env_runner: int = 8  # vectorised envs per runner
    num_cpus_per_env_runner: float = 1.0
    num_learners: int = 0  # RLlib: 0 = learner in the driver (with num_gpus_per_learner=1 for a GPU learner)
    num_gpus_per_learner: float = 0.0
    # torch threads of the driver process, where the learner runs when num_learners=0 (0 = torch's default).
    # On a small box torch's default (one per core) oversubscribes the cores the env runners also use: a 2048-step
    # update took ~29 s with 2 threads and ~5 s with 1 on a 2-core machine.
    learner_torch_threads: int = 1
    object_store_mb: int = 256  # local Ray only


@dataclass
class RunConfig:
    max_env_steps: int = 200_000  # stop after this many sampled env steps
    seed: int = 0
    out_dir: str = "runs"  # where the run folder goes
    name: str = ""  # run folder name; "" = <env>-<backend>-<timestamp>
    eval_every: int = 1  # iterations between evaluations
    eval_episodes: int = 20
    # Evaluate after the last iteration when it did not (eval_every does not divide the run's iterations), so the
    # summary's eval fields score the final policy. Its time counts in that iteration, as any evaluation's does.
    final_eval: bool = False
    # Evaluate on a separate env runner (reserving no CPU: it uses the core the synchronous sample-then-learn loop
    # leaves idle) while the iteration trains, instead of after it. That evaluation then scores the policy from the
    # start of the iteration, and the loop dates eval success (and steps_to_success) at that policy's env steps.
    parallel_eval: bool = False
    success_threshold: float = 0.9  # steps_to_success = first env steps at which eval success >= this
    stop_on_success: bool = False  # stop as soon as eval success >= success_threshold
    checkpoint_every: int = 10  # iterations between checkpoints (a final one is always written)
    resume: str = ""  # checkpoint folder to resume from
    log_level: str = "INFO"


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
