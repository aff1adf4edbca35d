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


class CostBandit(gym.Env):
    """One-step task whose signal is a cost: (a - 0.5)^2. Minimizing it means acting at 0.5."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        cost = float((action[0] - 0.5) ** 2)
        return np.zeros(1, np.float32), cost, True, False, {}


gym.register("CostBandit-v0", entry_point=CostBandit, max_episode_steps=1)


class SpacesEnv(gym.Env):
    """An env with whatever observation (and action) space the test asks for, and random observations."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space | None = None):
        self.observation_space = observation_space
        self.action_space = action_space or spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


gym.register("DiscreteObs-v0", entry_point=SpacesEnv, kwargs={"observation_space": spaces.Discrete(5)},
             max_episode_steps=10)
gym.register("DictObs-v0", entry_point=SpacesEnv, max_episode_steps=10, kwargs={"observation_space": spaces.Dict(
    {"position": spaces.Box(-1.0, 1.0, (2,), np.float32), "mode": spaces.Discrete(3),
     "flags": spaces.Tuple((spaces.MultiBinary(2), spaces.Discrete(2)))})})
gym.register("TextObs-v0", entry_point=SpacesEnv, kwargs={"observation_space": spaces.Text(5)}, max_episode_steps=10)
gym.register("MultiDiscreteActions-v0", entry_point=SpacesEnv, max_episode_steps=10,
             kwargs={"observation_space": spaces.Box(-1.0, 1.0, (2,), np.float32),
                     "action_space": spaces.MultiDiscrete([2, 3])})


class BestArm(gym.Env):
    """One-step choice among the actions 1, 2, 3 (a Discrete space that starts at 1): only 3 pays 1.

    The observation is a random sign the reward ignores, so the best policy is "always 3".
    """

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(3, start=1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.last_action = None
        return self.np_random.choice([-1.0, 1.0], size=1).astype(np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.last_action = int(action)
        return np.zeros(1, np.float32), float(action == 3), True, False, {}


gym.register("BestArm-v0", entry_point=BestArm, max_episode_steps=1)



class Goal(gym.Env):
    """Episodes whose outcome is set by their reset seed, so an evaluation's (its seeds known) is known by
    hand: 1 + seed % 3 steps of reward 0.5; at the end `info` reports `is_success` (an even seed, a numpy
    bool) and `distance` (seed % 5, a numpy float), next to values that are not numbers; during the
    episode it reports `progress`, which the end does not."""

    observation_space = spaces.Box(0.0, 3.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_seed = seed if seed is not None else int(self.np_random.integers(1000))
        self.left = 1 + self.episode_seed % 3
        return np.array([self.left], np.float32), {}

    def step(self, action):
        self.left -= 1
        if self.left > 0:
            return np.array([self.left], np.float32), 0.5, False, False, {"progress": 1.0}
        info = {"is_success": np.bool_(self.episode_seed % 2 == 0), "distance": np.float32(self.episode_seed % 5),
                "outcome": "reached", "trace": np.zeros(2)}
        return np.array([0.0], np.float32), 0.5, True, False, info


gym.register("Goal-v0", entry_point=Goal, max_episode_steps=10)


# ---- environments that misbehave, for the fault suite (tests/faults). Usable from the command line
# as env.id=tests.toy_envs:<Id> (Gymnasium imports the module first) with the repository on PYTHONPATH.

class Drift(gym.Env):
    """A smooth 2-D task: the action pushes a point, the reward is minus its distance to the origin.

    `nan_reward_at`: the reward is NaN from that step of the instance on (a buggy reward function).
    `raise_at`: `step` raises RuntimeError on that step of every instance (a simulator that crashes),
    `raise_times` times in all in this process (None: every time).
    """

    observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    raised = 0  # raises so far in this process, over all instances

    def __init__(self, nan_reward_at: int | None = None, raise_at: int | None = None, raise_times: int | None = None):
        self.nan_reward_at, self.raise_at, self.raise_times = nan_reward_at, raise_at, raise_times
        self.steps = 0  # over the instance's lifetime
        self.position = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.position.copy(), {}

    def step(self, action):
        self.steps += 1
        if self.raise_at is not None and self.steps == self.raise_at and (
                self.raise_times is None or Drift.raised < self.raise_times):
            Drift.raised += 1
            raise RuntimeError(f"simulator crashed at its step {self.steps}")
        self.position = np.clip(self.position + 0.1 * np.asarray(action, np.float32), -10, 10)
        reward = -float(np.linalg.norm(self.position))
        if self.nan_reward_at is not None and self.steps >= self.nan_reward_at:
            reward = float("nan")
        return self.position.copy(), reward, False, False, {}


gym.register("Drift-v0", entry_point=Drift, max_episode_steps=50)


class BrokenInit(gym.Env):
    """An environment whose constructor fails (a missing asset, a bad kwarg)."""

    def __init__(self):
        raise FileNotFoundError("model file robot.xml not found")


gym.register("BrokenInit-v0", entry_point=BrokenInit)


class Blob(gym.Env):
    """A point pushed about a square, seen only in its 64x64 rgb_array frames: a bright 8x8 blob on black
    at the point's place. The reward is minus its distance to the centre; the state observation (which
    env.pixels=true replaces) is the point. Renders at its own size (no width / height arguments)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode
        self.position = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
        return self.position.copy(), {}

    def step(self, action):
        self.position = np.clip(self.position + 0.2 * np.asarray(action, np.float32), -1, 1)
        return self.position.copy(), -float(np.linalg.norm(self.position)), False, False, {}

    def render(self):
        frame = np.zeros((64, 64, 3), np.uint8)
        row, col = ((self.position + 1) / 2 * 56).astype(int)
        frame[row:row + 8, col:col + 8] = (255, 200, 100)
        return frame


gym.register("Blob-v0", entry_point=Blob, max_episode_steps=20)
