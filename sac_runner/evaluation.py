"""Run evaluation episodes with a fixed set of seeds, so evaluations are comparable over training."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo

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
    """`episodes` full episodes; episode i starts from env.reset(seed=seed + i) (modulo 2**32, the seeds
    Gymnasium takes: a run's seed may be as large as 2**32 - 1)."""
    result = EvalResult()
    for i in range(episodes):
        obs, _ = env.reset(seed=(seed + i) % 2**32)
        episode_return, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=deterministic))
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
        result.returns.append(episode_return)
        result.lengths.append(length)
    return result


def recording(env: gym.Env, folder: Path, name_prefix: str) -> gym.Env:
    """Record every episode of `env` (made with render_mode="rgb_array") as an MP4 in `folder`."""
    logging.getLogger("moviepy").setLevel(logging.WARNING)
    return RecordVideo(env, video_folder=str(folder), episode_trigger=lambda episode: True, name_prefix=name_prefix,
                       disable_logger=True)


def record_episode(agent: SAC, env: gym.Env, folder: Path, name_prefix: str, seed: int) -> list[Path]:
    """One deterministic episode of `env` (render_mode="rgb_array") recorded to `folder`; the MP4 paths."""
    video_env = recording(env, folder, name_prefix)
    try:
        evaluate(agent, video_env, episodes=1, seed=seed)
    finally:
        video_env.close()
    return sorted(folder.glob(f"{name_prefix}*.mp4"))
