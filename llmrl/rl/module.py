"""The student: one RLModule for every environment, with the encoder its family names (``FamilySpec.encoder``).

- MiniGrid (``{"grid"}``): each cell's (type, colour, state, agent direction) is embedded and summed, and a
  small CNN over the map feeds the policy and value heads. (A flat MLP over the same embeddings imitated the
  scripted teacher several times slower in an offline check: skill actions depend on where the target lies
  relative to the agent, which convolutions capture directly.)
- Registered MiniGrid/BabyAI ids (``{"grid", "mission"}``): the same map encoder, plus a GRU over the mission's
  words (BabyAI levels draw a new mission every episode).
- Crafter (``{"image", "inventory", "subgoal"}``): a CNN over the 64x64 image, a linear layer over the
  inventory, and a learned embedding table over the sub-goal vocabulary, added to the image features as
  AdaRefiner adds its sub-goal embedding. A learned table (not a frozen text embedding) because no sentence
  encoder can be downloaded here and the vocabulary is closed (22 achievements + survival sub-goals).

``_forward`` also passes ``teacher_probs`` through unchanged so RLlib records it on the episode for the learner.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from llmrl.config import ConfigError
from llmrl.envs.guided import TEACHER_PROBS

# Embedding table sizes for MiniGrid's cell encoding (minigrid: 11 object types, 6 colours, 3 door states,
# 4 directions + "no agent"); generous so stock BabyAI encodings fit too.
_GRID_VOCAB = (16, 8, 4, 5)


class GridEncoder(nn.Module):
    @staticmethod
    def check(spaces: dict[str, Any]) -> str | None:
        grid = spaces.get("grid")
        if grid is None or len(getattr(grid, "shape", ()) or ()) != 3 or grid.shape[2] != len(_GRID_VOCAB):
            return 'a "grid" Box of shape (H, W, 4): (type, colour, state, direction) cell codes'
        return None

    @classmethod
    def build(cls, spaces: dict[str, Any], mc: dict[str, Any], hidden: int) -> nn.Module:
        # .get: modules saved before model.grid_first_stride existed were built with stride 1.
        return cls(spaces["grid"].shape[:2], int(mc["embed_dim"]), tuple(mc["grid_channels"]), hidden,
                   int(mc.get("grid_first_stride", 1)))

    def __init__(self, shape: tuple[int, int], embed_dim: int, channels, hidden: int, first_stride: int = 1):
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(n, embed_dim) for n in _GRID_VOCAB)
        layers: list[nn.Module] = []
        in_ch = embed_dim
        for i, out_ch in enumerate(channels):
            # Later layers stride 2: the flattened map feeds a linear layer, and a full-resolution map made that
            # layer (and the learner's update) several times more expensive than the rest of the step. The first
            # layer's stride is model.grid_first_stride (1: full resolution; 2: about a quarter of the cost).
            stride = first_stride if i == 0 else 2
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, stride=stride), nn.ReLU()]
            in_ch = out_ch
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, embed_dim, *shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n_flat, hidden), nn.ReLU())
        # The sum of the four channel embeddings is one row of a combined table (every (type, colour, state,
        # direction) combination: 2,560 rows, built from the four tables each call, differentiably), read with
        # one gather per cell. The same function, parameters and gradients as four lookups and a sum, but the
        # backward is one index_put into a small table instead of four embedding_dense_backward scatters (which
        # were 30% of a learner step on CPU), and it is 2-3x faster than a one-hot matmul (a 6 MB one-hot per
        # 128-sample minibatch). Not persistent: checkpoints keep the nn.Embedding layout.
        # Row of a combination in the combined table: codes in mixed radix (160, 20, 5, 1).
        strides = [math.prod(_GRID_VOCAB[i + 1:]) for i in range(len(_GRID_VOCAB))]
        self.register_buffer("_strides", torch.tensor(strides, dtype=torch.float32), persistent=False)
        self.register_buffer("_last_code", torch.tensor(_GRID_VOCAB, dtype=torch.float32) - 1, persistent=False)

    def embed_cells(self, grid: torch.Tensor) -> torch.Tensor:
        """(..., 4) cell codes -> (..., embed_dim): sum_c table_c[code_c], codes clamped into each table."""
        t0, t1, t2, t3 = (emb.weight for emb in self.embeds)
        combined = (t0[:, None, None, None] + t1[None, :, None, None] + t2[None, None, :, None]
                    + t3[None, None, None, :]).reshape(-1, t0.shape[1])
        # Codes are small integers, so float arithmetic on them is exact; floor matches .long() for codes >= 0.
        # (Building the 2,560 x embed_dim table each call costs less than the three extra lookups it replaces
        # when sampling, so it is not cached across weight updates.)
        codes = torch.minimum(grid.float().clamp(min=0), self._last_code).floor()
        # Advanced indexing, not F.embedding: its CPU backward (index_put with accumulate) is ~3x faster here.
        return combined[(codes @ self._strides).long()]

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.embed_cells(obs["grid"])
        return self.fc(self.cnn(x.permute(0, 3, 1, 2)))


class GridMissionEncoder(nn.Module):
    """The MiniGrid map and the mission (word ids, 0 = padding): BabyAI's baseline shape, a GRU over the mission's
    word embeddings, its last state joined with the map's features."""

    @staticmethod
    def check(spaces: dict[str, Any]) -> str | None:
        mission = spaces.get("mission")
        if mission is None or len(getattr(mission, "shape", None) or ()) != 1:
            return GridEncoder.check(spaces) or 'a "mission" Box of shape (L,): word ids, 0 = padding'
        return GridEncoder.check(spaces)

    @classmethod
    def build(cls, spaces: dict[str, Any], mc: dict[str, Any], hidden: int) -> nn.Module:
        return cls(GridEncoder.build(spaces, mc, hidden), int(spaces["mission"].high.max()) + 1,
                   int(mc["mission_embed_dim"]), hidden)

    def __init__(self, grid: GridEncoder, vocab: int, embed_dim: int, hidden: int):
        super().__init__()
        self.grid = grid
        self.words = nn.Embedding(vocab, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True)
        self.fc = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = obs["mission"].long().clamp(0, self.words.num_embeddings - 1)
        lengths = (tokens > 0).sum(-1).clamp(min=1).cpu()  # an empty mission reads as one padding word
        packed = nn.utils.rnn.pack_padded_sequence(self.words(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)
        return self.fc(torch.cat([self.grid(obs), last[-1]], dim=-1))


class ImageSubgoalEncoder(nn.Module):
    @staticmethod
    def check(spaces: dict[str, Any]) -> str | None:
        shapes = {k: len(getattr(spaces.get(k), "shape", None) or ()) for k in ("image", "inventory", "subgoal")}
        if shapes != {"image": 3, "inventory": 1, "subgoal": 1}:
            return ('"image" (H, W, C), "inventory" (n,) and "subgoal" (1,) Boxes (the sub-goal as a 1-based index, '
                    "0 = none)")
        return None

    @classmethod
    def build(cls, spaces: dict[str, Any], mc: dict[str, Any], hidden: int) -> nn.Module:
        return cls(spaces["image"].shape, spaces["inventory"].shape[0], int(spaces["subgoal"].high.max()),
                   tuple(mc["conv_channels"]), int(mc["subgoal_embed_dim"]), hidden)

    def __init__(self, image_shape: tuple[int, ...], inventory_dim: int, num_subgoals: int, channels, subgoal_dim: int,
                 hidden: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = image_shape[-1]
        for out_ch in channels:
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2), nn.ReLU()]
            in_ch = out_ch
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, image_shape[-1], image_shape[0], image_shape[1])).shape[1]
        self.image_fc = nn.Linear(n_flat, hidden)
        self.inventory_fc = nn.Linear(inventory_dim, hidden)
        self.subgoal_table = nn.Embedding(num_subgoals + 1, subgoal_dim)  # index 0 = no sub-goal
        self.subgoal_fc = nn.Linear(subgoal_dim, hidden)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        image = obs["image"].float().permute(0, 3, 1, 2) / 255.0
        subgoal = obs["subgoal"].long().reshape(-1)
        x = self.image_fc(self.cnn(image)) + self.inventory_fc(obs["inventory"].float())
        x = x + self.subgoal_fc(self.subgoal_table(subgoal.clamp(0, self.subgoal_table.num_embeddings - 1)))
        return torch.relu(x)


class VectorEncoder(nn.Module):
    @staticmethod
    def check(spaces: dict[str, Any]) -> str | None:
        vector = spaces.get("vector")
        if vector is None or len(getattr(vector, "shape", None) or ()) != 1:
            return 'a "vector" Box of shape (n,)'
        return None

    @classmethod
    def build(cls, spaces: dict[str, Any], mc: dict[str, Any], hidden: int) -> nn.Module:
        return cls(spaces["vector"].shape[0], hidden)

    def __init__(self, size: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.mlp(obs["vector"].float())


ENCODERS: dict[str, type] = {"grid": GridEncoder, "grid_mission": GridMissionEncoder,
                              "image_subgoal": ImageSubgoalEncoder, "vector": VectorEncoder}


def check_observation_space(encoder: str, space: Any, name: str) -> None:
    """One-line ``ConfigError`` unless the student's ``encoder`` can read observations from ``space``."""
    if encoder not in ENCODERS:
        raise ConfigError(f"env.name: {name}: family_spec.encoder must be one of {', '.join(ENCODERS)}, "
                          f"got {encoder!r}")
    spaces = getattr(space, "spaces", None)
    need = ENCODERS[encoder].check(spaces) if isinstance(spaces, dict) else "a Dict observation space"
    if need is not None:
        raise ConfigError(f"env.name: {name}: the student's {encoder!r} encoder cannot read the observation space "
                          f"{space}; it needs {need}")


class GuidedStudentModule(TorchRLModule, ValueFunctionAPI):
    def setup(self):
        mc = self.model_config
        spaces = self.observation_space.spaces
        # Checkpoints from before encoders were named by the family chose by the observation keys.
        encoder = mc.get("encoder") or ("grid" if "grid" in spaces else "image_subgoal")
        hidden = int(mc["hidden"])
        self.encoder = ENCODERS[encoder].build(spaces, mc, hidden)
        self.pi = nn.Linear(hidden, self.action_space.n)
        self.vf = nn.Linear(hidden, 1)
        # Small initial policy logits: a near-uniform start, as PPO implementations usually do.
        nn.init.orthogonal_(self.pi.weight, gain=0.01)
        nn.init.zeros_(self.pi.bias)

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        out = {Columns.ACTION_DIST_INPUTS: self.pi(self.encoder(batch[Columns.OBS]))}
        if TEACHER_PROBS in batch:
            out[TEACHER_PROBS] = batch[TEACHER_PROBS]
        return out

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        embeddings = self.encoder(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self.pi(embeddings), Columns.EMBEDDINGS: embeddings}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self.encoder(batch[Columns.OBS])
        return self.vf(embeddings).squeeze(-1)
