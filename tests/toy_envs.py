"""Tiny deterministic environments for tests, registered with Gymnasium on import."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Countdown(gym.Env):
    """Observation: steps left before a terminal state. Terminates after `horizon` steps.

    Registered with a shorter time limit too, so one can get truncation before termination.
    """

    def __init__(self, horizon: int = 3):
        self.horizon = horizon
        self.observation_space = spaces.Box(0.0, float(horizon), (1,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.left = horizon

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = self.horizon
        return np.array([self.left], np.float32), {}

    def step(self, action):
        self.left -= 1
        return np.array([self.left], np.float32), 1.0, self.left == 0, False, {}


gym.register("Countdown-v0", entry_point=Countdown, kwargs={"horizon": 3}, max_episode_steps=100)
gym.register("CountdownTruncated-v0", entry_point=Countdown, kwargs={"horizon": 100}, max_episode_steps=4)
