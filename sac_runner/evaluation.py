"""Run evaluation episodes with a fixed set of seeds, so evaluations are comparable over training."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from sac_runner.sac import SAC


@dataclass
class EvalResult:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def summary(self, prefix: str = "eval/") -> dict[str, float]:
        r, n = np.asarray(self.returns), np.asarray(self.lengths)
        return {f"{prefix}return_mean": float(r.mean()), f"{prefix}return_std": float(r.std()),
                f"{prefix}return_min": float(r.min()), f"{prefix}return_max": float(r.max()),
                f"{prefix}length_mean": float(n.mean())}


def evaluate(agent: SAC, env: gym.Env, episodes: int, seed: int, deterministic: bool = True) -> EvalResult:
    """`episodes` full episodes; episode i starts from env.reset(seed=seed + i)."""
    result = EvalResult()
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        episode_return, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=deterministic))
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
        result.returns.append(episode_return)
        result.lengths.append(length)
    return result
