"""Score ranges of benchmark suites, so that returns of different tasks share one scale (sac-report's
aggregate across tasks): a normalized score is (return - low) / (high - low).

- DeepMind Control (ids dm_control/<domain>-<task>-v0): low 0, high 1000. Every task's reward lies in
  [0, 1] per step over a 1000-step episode (Tassa et al., 2018), so the score is the return / 1000.
- Atari (ids ALE/<Game>-v5): human-normalized, low the random agent's score and high the human
  tester's, per game: the scores of the Atari-57 table in Badia et al. (2020, Agent57), which the
  Atari 100k papers normalize by; here its 26 Atari 100k games (Kaiser et al., 2020). A game not in
  the table has no known range.

Any other environment has no known range and is left out of the aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sac_runner.config import DMC_PREFIX

ALE_PREFIX = "ALE/"

# Game (as in its ALE id): (random score, human score).
ATARI_RANDOM_HUMAN = {
    "Alien": (227.8, 7127.7),
    "Amidar": (5.8, 1719.5),
    "Assault": (222.4, 742.0),
    "Asterix": (210.0, 8503.3),
    "BankHeist": (14.2, 753.1),
    "BattleZone": (2360.0, 37187.5),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "ChopperCommand": (811.0, 7387.8),
    "CrazyClimber": (10780.5, 35829.4),
    "DemonAttack": (152.1, 1971.0),
    "Freeway": (0.0, 29.6),
    "Frostbite": (65.2, 4334.7),
    "Gopher": (257.6, 2412.5),
    "Hero": (1027.0, 30826.4),
    "Jamesbond": (29.0, 302.8),
    "Kangaroo": (52.0, 3035.0),
    "Krull": (1598.0, 2665.5),
    "KungFuMaster": (258.5, 22736.3),
    "MsPacman": (307.3, 6951.6),
    "Pong": (-20.7, 14.6),
    "PrivateEye": (24.9, 69571.3),
    "Qbert": (163.9, 13455.0),
    "RoadRunner": (11.5, 7845.0),
    "Seaquest": (68.4, 42054.7),
    "UpNDown": (533.4, 11693.2),
}

# What a suite's normalized score is, for the report's notes and axis labels.
SCORES = {"DeepMind Control": "return / 1000",
          "Atari": "human-normalized: (return - random) / (human - random)"}


@dataclass(frozen=True)
class Scale:
    """A task's score range: `low` scores 0, `high` scores 1."""

    suite: str
    low: float
    high: float

    def normalize(self, returns) -> np.ndarray:
        return (np.asarray(returns, dtype=float) - self.low) / (self.high - self.low)


def scale_of(env_id: str) -> Scale | None:
    """The score range of an environment's suite, or None where none is known."""
    if env_id.startswith(DMC_PREFIX):
        return Scale("DeepMind Control", 0.0, 1000.0)
    if env_id.startswith(ALE_PREFIX):
        game = env_id.removeprefix(ALE_PREFIX).rpartition("-v")[0]
        if game in ATARI_RANDOM_HUMAN:
            return Scale("Atari", *ATARI_RANDOM_HUMAN[game])
    return None
