"""Shared Crafter fixtures. Generating a world costs ~2 s (crafter's pure-Python simplex noise), so one seeded
world is generated per session and every test gets its own deep copy (a few milliseconds)."""

from __future__ import annotations

import copy

import pytest

from llmrl.config import EnvConfig

SEED = 0


@pytest.fixture(scope="session")
def seeded_task():
    from llmrl.envs.crafter.adapter import make_task

    task = make_task(EnvConfig(name="Crafter", max_steps=10000), seed=SEED)
    task.reset(seed=SEED)
    return task


@pytest.fixture
def task(seeded_task):
    return copy.deepcopy(seeded_task)


def _refresh(task) -> None:
    """Drop the task's cached view after a test edited the world directly (stepping does this itself)."""
    task._window = None


def _clear_view(task) -> tuple[int, int]:
    """Turn the player's view into plain grass without creatures; returns the player's position."""
    env = task._env
    world, player = env._world, env._player
    px, py = (int(v) for v in player.pos)
    for x in range(px - 6, px + 7):
        for y in range(py - 5, py + 6):
            world[(x, y)] = "grass"
            _, obj = world[(x, y)]
            if obj is not None and obj is not player:
                world.remove(obj)
    player.facing = (0, 1)
    _refresh(task)
    return px, py


@pytest.fixture
def refresh():
    return _refresh


@pytest.fixture
def clear_view():
    return _clear_view


@pytest.fixture(scope="session")
def seed():
    return SEED
