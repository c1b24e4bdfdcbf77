"""The student module builds the encoder its family names, reads every shipped observation shape, and an
observation it cannot read is a one-line config error at start-up (no Ray)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from llmrl.config import ConfigError
from llmrl.rl.module import GuidedStudentModule, VectorEncoder, check_observation_space

MODEL = {"embed_dim": 8, "hidden": 32, "conv_channels": [8, 8], "grid_channels": [8, 16], "subgoal_embed_dim": 8,
         "mission_embed_dim": 8}
SPACES = {
    "grid": gym.spaces.Dict({"grid": gym.spaces.Box(0, 255, (39, 21, 4), np.uint8)}),  # not square: fine
    "image_subgoal": gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
                                      "inventory": gym.spaces.Box(0.0, 1.0, (5,), np.float32),
                                      "subgoal": gym.spaces.Box(0, 4, (1,), np.int64)}),
    "vector": gym.spaces.Dict({"vector": gym.spaces.Box(0.0, 1.0, (9,), np.float32)}),
    "grid_mission": gym.spaces.Dict({"grid": gym.spaces.Box(0, 255, (9, 9, 4), np.uint8),
                                     "mission": gym.spaces.Box(0, 20, (6,), np.int64)}),
}


@pytest.mark.parametrize("encoder", sorted(SPACES))
def test_each_encoder_builds_and_runs(encoder):
    space = SPACES[encoder]
    check_observation_space(encoder, space, "T")
    module = GuidedStudentModule(observation_space=space, action_space=gym.spaces.Discrete(5),
                                 model_config={"encoder": encoder, **MODEL})
    obs = {k: torch.as_tensor(np.stack([s.sample() for _ in range(3)])) for k, s in space.spaces.items()}
    out = module.forward_inference({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (3, 5)
    if encoder == "vector":
        assert isinstance(module.encoder, VectorEncoder)


def test_checkpoints_without_an_encoder_name_choose_by_the_observation():
    module = GuidedStudentModule(observation_space=SPACES["grid"], action_space=gym.spaces.Discrete(7),
                                 model_config=MODEL)
    assert type(module.encoder).__name__ == "GridEncoder"


@pytest.mark.parametrize("encoder, space, need", [
    ("grid", SPACES["vector"], 'needs a "grid" Box'),
    ("grid", gym.spaces.Dict({"grid": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8)}), "(H, W, 4)"),
    ("vector", gym.spaces.Box(0.0, 1.0, (9,), np.float32), "needs a Dict observation space"),
    ("image_subgoal", SPACES["grid"], '"image" (H, W, C)'),
    ("grid_mission", SPACES["grid"], 'a "mission" Box of shape (L,)'),
    ("transformer", SPACES["vector"], "family_spec.encoder must be one of grid, grid_mission, image_subgoal, vector"),
])
def test_an_observation_the_student_cannot_read_is_one_line(encoder, space, need):
    with pytest.raises(ConfigError) as err:
        check_observation_space(encoder, space, "my.env:make")
    msg = str(err.value)
    assert msg.startswith("env.name: my.env:make:") and need in msg and "\n" not in msg


def test_the_mission_changes_the_policy_and_padding_does_not():
    torch.manual_seed(0)
    space = SPACES["grid_mission"]
    module = GuidedStudentModule(observation_space=space, action_space=gym.spaces.Discrete(5),
                                 model_config={"encoder": "grid_mission", **MODEL})
    grid = torch.as_tensor(np.stack([space["grid"].sample()] * 3))
    missions = torch.tensor([[3, 4, 5, 0, 0, 0], [3, 4, 5, 0, 0, 0], [7, 8, 0, 0, 0, 0]])
    logits = module.forward_inference({Columns.OBS: {"grid": grid, "mission": missions}})[Columns.ACTION_DIST_INPUTS]
    assert not torch.allclose(logits[0], logits[2])  # another mission, same map: another policy
    # The GRU stops at the mission's last word: what follows (padding) cannot change the features.
    alone = module.forward_inference({Columns.OBS: {"grid": grid[:1], "mission": missions[:1, :3]}})
    assert torch.allclose(alone[Columns.ACTION_DIST_INPUTS][0], logits[0], atol=1e-6)
