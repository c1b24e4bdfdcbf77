import numpy as np
import pytest
from minigrid.core.constants import DIR_TO_VEC

from llmrl.config import load_config
from llmrl.envs.minigrid.adapter import make_task
from llmrl.envs.minigrid.knowledge import egocentric_view


@pytest.mark.parametrize("direction", range(4))
def test_front_cell_is_always_at_centre_plus_x(direction):
    side = 5
    grid = np.zeros((side, side, 4), np.uint8)
    pos = (2, 1)
    front = (pos[0] + DIR_TO_VEC[direction][0], pos[1] + DIR_TO_VEC[direction][1])
    grid[front] = (5, 1, 0, 0)  # a key in front of the agent
    grid[pos[0], pos[1], 3] = direction + 1
    ego = egocentric_view(grid, pos, direction)
    c = side - 1
    assert ego.shape == (2 * side - 1, 2 * side - 1, 4)
    assert tuple(ego[c + 1, c, :3]) == (5, 1, 0)
    assert ego[c, c, 3] == direction + 1


def test_adapter_observation_matches_space():
    cfg = load_config(None, ["env.name=SimpleDoorKey"])
    task = make_task(cfg.env, 0)
    obs, _ = task.reset(seed=0)
    assert task.observation_space.contains(obs)
    assert obs["grid"].shape == (19, 19, 4)
    cfg = load_config(None, ["env.name=SimpleDoorKey", "env.egocentric=false"])
    assert make_task(cfg.env, 0).reset(seed=0)[0]["grid"].shape == (10, 10, 4)
