"""The historical map against MiniGrid's own visibility, and the student observation against its space."""

import numpy as np
import pytest

from llmrl.config import EnvConfig
from llmrl.envs.minigrid.adapter import make_task
from llmrl.envs.minigrid.family import MINIGRID_TASKS
from llmrl.envs.minigrid.planner import correct_option


def visible_now(raw) -> set[tuple[int, int]]:
    """World cells MiniGrid shows the agent now (gen_obs_grid's mask, mapped with its relative_coords)."""
    _, mask = raw.gen_obs_grid()
    cells = set()
    for x in range(raw.width):
        for y in range(raw.height):
            rel = raw.relative_coords(x, y)
            if rel is not None and mask[rel]:
                cells.add((x, y))
    return cells


@pytest.mark.parametrize("name", MINIGRID_TASKS)
def test_known_map_is_exactly_what_was_visible(name):
    t = make_task(EnvConfig(name=name), seed=7)
    rng = np.random.default_rng(0)
    for _ in range(3):
        t.reset()
        seen = visible_now(t.raw)
        for _ in range(60):
            option = correct_option(t.state_text(), t.options())
            action = t.option_action(option) if rng.random() < 0.6 else int(rng.integers(0, 6))
            _, _, terminated, truncated, _ = t.step(0 if action is None else action)
            if terminated or truncated:
                break
            seen |= visible_now(t.raw)
            known = t.knowledge.cells[:, :, 0] != 0
            expected = np.zeros_like(known)
            expected[tuple(np.array(sorted(seen)).T)] = True
            assert (known == expected).all()
            # Nothing changes out of sight in these tasks, so memory equals the current truth.
            truth = t.raw.grid.encode()
            assert (t.knowledge.cells[known] == truth[known]).all()


@pytest.mark.parametrize("name", MINIGRID_TASKS)
def test_observation_matches_space_and_marks_agent(name):
    t = make_task(EnvConfig(name=name, egocentric=False), seed=3)
    obs, _ = t.reset()
    space = t.observation_space
    side = space["grid"].shape[0]
    assert side == max(t.raw.width, t.raw.height)
    for step in range(30):
        assert space.contains(obs), name
        grid = obs["grid"]
        assert grid.dtype == np.uint8 and grid.shape == (side, side, 4)
        ax, ay = t.raw.agent_pos
        assert np.count_nonzero(grid[:, :, 3]) == 1 and grid[ax, ay, 3] == t.raw.agent_dir + 1
        carried = t.raw.carrying.encode() if t.raw.carrying is not None else (1, 0, 0)
        assert tuple(grid[ax, ay, :3]) == tuple(carried)
        action = t.option_action(correct_option(t.state_text(), t.options()))
        obs, _, terminated, truncated, _ = t.step(2 if action is None else action)
        if terminated or truncated:
            break


def test_llm4teach_observation_side_is_room_max():
    t = make_task(EnvConfig(name="SimpleDoorKey", room_min=5, room_max=8, egocentric=False), seed=0)
    assert t.observation_space["grid"].shape == (8, 8, 4)
    ego = make_task(EnvConfig(name="SimpleDoorKey", room_min=5, room_max=8), seed=0)
    assert ego.observation_space["grid"].shape == (15, 15, 4)
    obs, _ = ego.reset()
    assert ego.observation_space.contains(obs)
    assert np.count_nonzero(obs["grid"][:, :, 3]) == 1 and obs["grid"][7, 7, 3] == ego.raw.agent_dir + 1
