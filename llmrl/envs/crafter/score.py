"""The Crafter score (Hafner, 2021): a geometric mean of the 22 achievements' success rates.

The geometric mean rewards unlocking many different achievements over unlocking the easy ones more often, which
is why it is the headline metric of RLAdapter/AdaRefiner and the Crafter scoreboard.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

# As crafter spells them (crafter/data.yaml, ``achievements``); a test checks this against the installed crafter.
ACHIEVEMENTS: tuple[str, ...] = (
    "collect_coal",
    "collect_diamond",
    "collect_drink",
    "collect_iron",
    "collect_sapling",
    "collect_stone",
    "collect_wood",
    "defeat_skeleton",
    "defeat_zombie",
    "eat_cow",
    "eat_plant",
    "make_iron_pickaxe",
    "make_iron_sword",
    "make_stone_pickaxe",
    "make_stone_sword",
    "make_wood_pickaxe",
    "make_wood_sword",
    "place_furnace",
    "place_plant",
    "place_stone",
    "place_table",
    "wake_up",
)


def crafter_score(success_rates_percent: Mapping[str, float]) -> float:
    """exp(mean_i ln(1 + s_i)) - 1 over all 22 achievements, s_i in percent; missing achievements count 0.

    Unknown names raise, so a misspelt achievement cannot silently score as 0.
    """
    unknown = set(success_rates_percent) - set(ACHIEVEMENTS)
    if unknown:
        raise ValueError(f"unknown Crafter achievements: {sorted(unknown)}")
    logs = []
    for name in ACHIEVEMENTS:
        rate = float(success_rates_percent.get(name, 0.0))
        if not 0.0 <= rate <= 100.0:
            raise ValueError(f"success rate of {name} must be within [0, 100] percent, got {rate}")
        logs.append(math.log1p(rate))
    return math.expm1(sum(logs) / len(logs))


def achievement_success_rates(episodes_achievements: Sequence[Collection[str]]) -> dict[str, float]:
    """Percent of episodes in which each achievement was unlocked at least once (all 22 keys; 0 if no episodes)."""
    n = len(episodes_achievements)
    counts = dict.fromkeys(ACHIEVEMENTS, 0)
    for unlocked in episodes_achievements:
        for name in set(unlocked):
            if name not in counts:
                raise ValueError(f"unknown Crafter achievement {name!r}")
            counts[name] += 1
    return {name: (100.0 * c / n if n else 0.0) for name, c in counts.items()}
