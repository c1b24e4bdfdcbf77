"""LoRA fine-tuning of the teacher's base LM on (prompt -> plan) pairs, with peft.

One ``LoraFineTuner`` holds the base model with one trainable LoRA adapter for the trainer's whole life. Each
fine-tune starts from the weights of the version in service (or the fresh, base-equivalent initialisation:
LoRA's B matrices start at zero), runs ``adapter.epochs`` passes of AdamW over the training pairs, and measures
the held-out loss before and after. The loss is the mean per-token negative log-likelihood of the plan's
continuation after the prompt, averaged over pairs: the quantity the ``hf`` backend's length-normalised score
mode reads, so a lower held-out loss is a teacher that rates the plans that worked higher. With
``adapter.loss=choice`` it is the cross-entropy of the teacher's own option distribution instead (a softmax over
every admissible plan's score) against the plan to learn: the plan rises relative to the others.

A choice example's plans all follow the same prompt, so they are scored in one packed row (the prompt once,
then every plan's tokens, with an attention mask that keeps the plans apart and positions that restart after
the prompt: the tree attention the ``hf`` teacher scores with). With the prompt bank's exemplars a prompt is
hundreds of tokens and a plan a handful, so this costs about one prompt per pair instead of one per plan. Models
whose attention ignores custom masks score one full row per plan instead.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmrl.adapter.versions import config_hash
from llmrl.config import AdapterConfig
from llmrl.teacher.packed_options import pack_options
from llmrl.teacher.plan_choice import split_encode

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; the fine-tune is dropped."""


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


class LoraFineTuner:
    """The base model + one LoRA adapter (``peft``), trained on (prompt, continuation) texts."""

    def __init__(self, base_model: str, cfg: AdapterConfig, max_prompt_tokens: int = 1024) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.base_model = base_model
        self.max_prompt_tokens = max_prompt_tokens
        self._device = torch.device(cfg.device)
        from llmrl.teacher.backends import local_model

        # A short name (smollm2-135m) becomes its cached folder, as the teacher's and the analyst's loaders do.
        path = os.path.expanduser(local_model(base_model, "adapter.base_model"))
        torch.manual_seed(cfg.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.base_hash = config_hash(model.config.to_dict())
        lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
        self.model = get_peft_model(model, lora).to(self._device)
        self._pad_id = self.tokenizer.pad_token_id
        if self._pad_id is None:
            self._pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._initial = {k: v.detach().clone() for k, v in self._lora_state().items()}
        self._rng = random.Random(cfg.seed)
        # Packed choice scoring needs a custom 4D attention mask (eager and SDPA honour it, flash attention does
        # not) and logits_to_keep (so the vocabulary projection runs only over the plans' positions). Public: set
        # it False to score one full row per plan (``llmrl bench finetune`` times both); it turns False by itself
        # when the model rejects the packed call.
        attn = getattr(model.config, "_attn_implementation", None)
        self.packed_scoring = ("logits_to_keep" in inspect.signature(model.forward).parameters
                               and attn in ("sdpa", "eager"))

    # -- weights -------------------------------------------------------------------------------------------

    def _lora_state(self) -> dict:
        from peft import get_peft_model_state_dict

        return get_peft_model_state_dict(self.model)

    def load(self, version_dir: str | None) -> None:
        """Start from a saved version's weights, or from the fresh initialisation when None."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if version_dir is None:
            state = self._initial
        else:
            state = load_file(str(Path(version_dir) / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model, {k: v.to(self._device) for k, v in state.items()})

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder))

    # -- data ----------------------------------------------------------------------------------------------

    def encode(self, texts: Sequence[tuple[str, str]]) -> list[tuple[list[int], int]]:
        """(token ids of prompt + continuation, number of continuation tokens) per pair; prompts are truncated
        from the left past ``max_prompt_tokens``, as the teacher does."""
        enc = split_encode(self.tokenizer, [p for p, _ in texts], [c for _, c in texts])
        out = []
        for prompt_ids, cont_ids in enc:
            prompt_ids = prompt_ids[-self.max_prompt_tokens:]
            if cont_ids:
                out.append((prompt_ids + cont_ids, len(cont_ids)))
        return out

    def encode_choices(self, items: Sequence[tuple[str, Sequence[str], int]]) -> list[tuple[list, int]]:
        """For ``adapter.loss=choice``: per pair, every admissible plan's (token ids, continuation tokens) after
        the same prompt, and the index of the plan to learn. Pairs with an empty continuation are skipped."""
        out = []
        for prompt, continuations, label in items:
            rows = self.encode([(prompt, c) for c in continuations])
            if len(rows) == len(continuations):
                out.append((rows, label))
        return out

    def _parts(self, chunk: Sequence) -> list[Sequence]:
        # A choice example is one forward pass over all of its plans: one at a time keeps memory at one pair's.
        return [[example] for example in chunk] if self.cfg.loss == "choice" else [chunk]

    def _loss_of(self, part: Sequence):
        if self.cfg.loss != "choice":
            return self._batch_loss(part)
        import torch

        (rows, label), = part
        scores = -self._option_nll(rows)  # the hf teacher's length-normalised score of every plan
        return torch.nn.functional.cross_entropy(scores[None], torch.tensor([label], device=scores.device))

    def _batch_loss(self, batch: Sequence[tuple[list[int], int]]):
        """Mean over pairs of each continuation's mean token NLL (right-padded batch, prompt tokens masked)."""
        return self._per_row_nll(batch).mean()

    def _per_row_nll(self, batch: Sequence[tuple[list[int], int]]):
        """Each row's continuation mean token NLL (right-padded batch, prompt tokens masked)."""
        import torch

        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        target = torch.zeros((len(batch), width), dtype=torch.bool)
        for r, (seq, n_cont) in enumerate(batch):
            ids[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[r, :len(seq)] = 1
            target[r, len(seq) - n_cont:len(seq)] = True
        ids, mask, target = ids.to(self._device), mask.to(self._device), target.to(self._device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        t = target[:, 1:].float()
        return (nll * t).sum(-1) / t.sum(-1).clamp(min=1.0)

    def _option_nll(self, rows: Sequence[tuple[list[int], int]]):
        """One choice example's per-plan continuation mean token NLL: packed when the model allows it and every
        row has the same prompt (``encode_choices`` makes them so), else one full row per plan."""
        n_prompt = len(rows[0][0]) - rows[0][1]
        prompt = rows[0][0][:n_prompt]
        if self.packed_scoring and n_prompt > 0 and all(seq[:len(seq) - n] == prompt for seq, n in rows):
            try:
                return self._packed_nll(prompt, [seq[len(seq) - n:] for seq, n in rows])
            except (AttributeError, NotImplementedError, TypeError, ValueError) as exc:
                log.info("adapter: packed choice scoring unavailable for this model (%s); scoring full rows",
                         " ".join(str(exc).split()))
                self.packed_scoring = False
        return self._per_row_nll(rows)

    def _packed_nll(self, prompt: list[int], conts: list[list[int]]):
        """Each continuation's mean token NLL after ``prompt``, all in one row laid out as the hf teacher scores
        (``packed_options``), so each plan is scored as if it followed the prompt alone."""
        import torch

        packed = pack_options(0, [prompt], [conts], self._pad_id)
        dev = self._device
        logits = self.model(input_ids=packed.ids.to(dev), attention_mask=packed.additive_mask(self.model.dtype).to(dev),
                            position_ids=packed.positions.to(dev), use_cache=False, logits_to_keep=packed.keep).logits
        counts = torch.tensor([max(n, 1) for n in packed.counts], dtype=torch.float32, device=dev)
        return -packed.option_logprob_sums(logits) / counts

    # -- training ------------------------------------------------------------------------------------------

    def loss(self, examples: Sequence[tuple[list[int], int]]) -> float:
        """Mean per-pair loss, no gradients (NaN for no examples)."""
        import torch

        if not examples:
            return math.nan
        self.model.eval()
        total = 0.0
        bs = self.cfg.batch_size
        with torch.no_grad():
            for i in range(0, len(examples), bs):
                for part in self._parts(examples[i:i + bs]):
                    total += float(self._loss_of(part)) * len(part)
        return total / len(examples)

    def plan_choices(self, examples: Sequence[tuple[list, int]]) -> list[tuple[bool, float]]:
        """Per choice example (``encode_choices``), whether the teacher's top plan is the pair's plan and the
        cross-entropy of its option distribution against that plan; no gradients, whatever ``adapter.loss`` is.
        ``adapter.accept=plan_accuracy`` judges a fine-tune by these."""
        import torch

        out = []
        for (_, label), scores in zip(examples, self._option_scores(examples)):
            ce = float(torch.nn.functional.cross_entropy(scores[None], torch.tensor([label], device=scores.device)))
            out.append((int(scores.argmax()) == label, ce))
        return out

    def top_choices(self, examples: Sequence[tuple[list, int]]) -> list[int]:
        """Per choice example, the index of the teacher's top plan (the example's own label is ignored)."""
        return [int(scores.argmax()) for scores in self._option_scores(examples)]

    def _option_scores(self, examples: Sequence[tuple[list, int]]) -> list[Any]:
        import torch

        self.model.eval()
        with torch.no_grad():
            return [-self._option_nll(rows) for rows, _ in examples]

    def train(self, examples: Sequence[tuple[list[int], int]]) -> float:
        """``adapter.epochs`` passes of AdamW over shuffled examples; returns the last epoch's mean loss.

        Raises ``DivergedError`` on a non-finite loss (the weights are then garbage: the caller reloads)."""
        import torch

        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.cfg.lr)
        self.model.train()
        order = list(examples)
        epoch_loss = math.nan
        for _ in range(self.cfg.epochs):
            self._rng.shuffle(order)
            total, n = 0.0, 0
            for i in range(0, len(order), self.cfg.batch_size):
                chunk = order[i:i + self.cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                for part in self._parts(chunk):  # gradients accumulate over the parts of one batch
                    loss = self._loss_of(part)
                    if not torch.isfinite(loss):
                        raise DivergedError(f"training loss became {float(loss)} after {n} pairs")
                    (loss * (len(part) / len(chunk))).backward()
                    total += loss.item() * len(part)
                    n += len(part)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
            epoch_loss = total / max(n, 1)
        self.model.eval()
        return epoch_loss
