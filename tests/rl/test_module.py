"""The MiniGrid student's encoder: the combined-table embedding is the same function as summing the four tables."""

from __future__ import annotations

import torch

from llmrl.rl.module import _GRID_VOCAB, GridEncoder


def _four_lookups(enc: GridEncoder, grid: torch.Tensor) -> torch.Tensor:
    return sum(emb(grid[..., c].long().clamp(0, emb.num_embeddings - 1)) for c, emb in enumerate(enc.embeds))


def test_combined_table_embedding_equals_the_sum_of_the_channel_tables_values_and_gradients():
    torch.manual_seed(0)
    enc = GridEncoder(shape=(7, 7), embed_dim=8, channels=(16, 32), hidden=32)
    # Codes past a table's end are clamped into it (stock BabyAI encodings), so include some.
    grid = torch.stack([torch.randint(0, n + 3, (5, 7, 7)) for n in _GRID_VOCAB], dim=-1).to(torch.uint8)
    reference = _four_lookups(enc, grid)
    fast = enc.embed_cells(grid)
    assert torch.allclose(fast, reference, atol=1e-6)
    weights = torch.randn_like(reference)
    grads_ref = torch.autograd.grad((reference * weights).sum(), [e.weight for e in enc.embeds])
    grads_fast = torch.autograd.grad((fast * weights).sum(), [e.weight for e in enc.embeds])
    for a, b in zip(grads_ref, grads_fast):
        assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():  # sampling and evaluation
        assert torch.allclose(enc.embed_cells(grid), reference, atol=1e-6)
        # Float observations of the same codes (and negative codes, clamped to 0) read the same rows.
        assert torch.allclose(enc.embed_cells(grid.float()), reference, atol=1e-6)
        negative = grid.long().clone()
        negative[0, 0, 0, 0] = -2
        assert torch.allclose(enc.embed_cells(negative), _four_lookups(enc, negative), atol=1e-6)


def test_checkpoints_keep_the_embedding_layout_and_the_first_stride_sets_the_resolution():
    enc = GridEncoder(shape=(19, 19), embed_dim=8, channels=(16, 32), hidden=32)
    assert not any(k.startswith("_") for k in enc.state_dict())
    assert {f"embeds.{i}.weight" for i in range(4)} <= set(enc.state_dict())
    cheap = GridEncoder(shape=(19, 19), embed_dim=8, channels=(16, 32), hidden=32, first_stride=2)
    assert cheap.fc[0].in_features == 32 * 5 * 5 and enc.fc[0].in_features == 32 * 10 * 10
