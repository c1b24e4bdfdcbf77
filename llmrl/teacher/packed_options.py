"""Tree-attention packing: a prompt and all of its options in one row, each option scored as if it followed the
prompt alone. Shared by the hf teacher's option scoring (many rows, left-padded, behind a cached prefix, no
gradients) and the adapter fine-tuner's choice loss (one row, no prefix, with gradients), so the plan the
teacher scores and the plan the adapter learns are laid out the same way.

A row holds the prompt's own tokens, then every option's tokens. The attention mask lets each option see the
shared prefix (``prefix_len`` cached positions), its prompt and its own earlier tokens, never another option;
every option's positions count on from the prompt's end (as in speculative decoding's tree attention). Per
prompt that is (prompt + sum of option lengths) tokens of compute instead of a full row per option.

torch is imported inside the functions: this module is imported by backends that may never score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PackedOptions:
    """One forward pass's inputs and where to read each option's token log-probabilities from its logits."""

    ids: Any  # (rows, width) token ids, left-padded
    positions: Any  # (rows, width) position ids, after the prefix's
    allowed: Any  # (rows, width, prefix_len + width) bool: which key each query may attend to
    pick_row: Any  # per option token: its row ...
    pick_col: Any  # ... and the column whose logits predict it, counted within the kept logits
    targets: Any  # per option token: its id
    option_of: Any  # per option token: which option (row-major over prompts, then options) it belongs to
    counts: list[int]  # tokens per option
    keep: int  # logits_to_keep: only the last `keep` columns are read

    def additive_mask(self, dtype: Any) -> Any:
        """(rows, 1, width, prefix_len + width): 0 where allowed, the dtype's minimum elsewhere (the 4D mask
        transformers' eager and SDPA attention take as is)."""
        import torch

        mask = torch.zeros(self.allowed.shape, dtype=dtype).masked_fill_(~self.allowed, torch.finfo(dtype).min)
        return mask[:, None]

    def option_logprob_sums(self, logits: Any) -> Any:
        """Each option's summed token log-probability, from the model's logits over the kept columns (rows,
        keep, vocab); differentiable, on the logits' device. An option without tokens sums to 0."""
        import torch

        dev = logits.device
        sums = torch.zeros(len(self.counts), dtype=torch.float32, device=dev)
        if len(self.targets) == 0:
            return sums
        picked = torch.log_softmax(logits[self.pick_row.to(dev), self.pick_col.to(dev)].float(), dim=-1)
        token_lp = picked.gather(-1, self.targets.to(dev)[:, None]).squeeze(-1)
        return sums.index_add(0, self.option_of.to(dev), token_lp)


def pack_options(prefix_len: int, owns: Sequence[list[int]], options: Sequence[Sequence[list[int]]],
                 pad_id: int) -> PackedOptions:
    """Rows of ``owns[i]`` (prompt i's tokens after the shared prefix) followed by ``options[i]``'s tokens,
    left-padded to one width. ``prefix_len`` is the length of the cached prefix every row sees (0 for none)."""
    import torch

    rows = [list(own) + [t for c in cs for t in c] for own, cs in zip(owns, options)]
    n_rows, width = len(rows), max(len(r) for r in rows)
    ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n_rows, width), dtype=torch.long)
    allowed = torch.zeros((n_rows, width, prefix_len + width), dtype=torch.bool)
    allowed[:, :, :prefix_len] = True
    # Every query sees itself, so padding positions are never fully masked (an all-masked query gives NaN).
    allowed[:, :, prefix_len:].diagonal(dim1=1, dim2=2).fill_(True)
    pick_row, pick_col, targets, option_of, counts = [], [], [], [], []
    for r, (own, cs, row) in enumerate(zip(owns, options, rows)):
        off, n_own = width - len(row), len(own)
        ids[r, off:] = torch.tensor(row, dtype=torch.long)
        pos[r, off:off + n_own] = prefix_len + torch.arange(n_own)
        keys = prefix_len + off  # the key column of the row's first own token
        allowed[r, off:off + n_own, keys:keys + n_own] = torch.ones(n_own, n_own).tril().bool()
        start = off + n_own
        for c in cs:
            n = len(c)
            pos[r, start:start + n] = prefix_len + n_own + torch.arange(n)
            allowed[r, start:start + n, keys:keys + n_own] = True
            allowed[r, start:start + n, prefix_len + start:prefix_len + start + n] = torch.ones(n, n).tril().bool()
            # Option token j is predicted by the position before it: the prompt's last token for j = 0.
            pick_row += [r] * n
            pick_col += [start + j - 1 if j else off + n_own - 1 for j in range(n)]
            targets += list(c)
            option_of += [len(counts)] * n
            counts.append(n)
            start += n
    # Only the columns from the earliest prompt end onwards are read: skip the rest's vocabulary projection.
    keep = width - min(pick_col) if pick_col else 1
    return PackedOptions(ids=ids, positions=pos, allowed=allowed, pick_row=_long(pick_row),
                         pick_col=_long(pick_col) - (width - keep), targets=_long(targets),
                         option_of=_long(option_of), counts=counts, keep=keep)


def _long(values: list[int]) -> Any:
    import torch

    return torch.tensor(values, dtype=torch.long)
