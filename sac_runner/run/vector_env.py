"""The training environments: env.num_envs of them stepped together through gymnasium.vector and acted
on in one batch. One environment is a vector of one, in this process (as CleanRL's and SB3's loops do),
so the loop has one path for 1 .. N environments.

Autoreset is off (gymnasium's AutoresetMode.DISABLED): when an environment's episode ends, the step
returns its real final observation, the loop stores that transition, and only then is that one
environment reset. So a stored transition never crosses a reset, and terminated and truncated are
kept per environment. Each environment is one stream of the replay buffer (its next observation is
its next slot).

With vectorization=sync (always for a single environment) the environments live in this process and an EpisodeRecorder per environment
notes each reset and action, so a checkpoint can rebuild every environment's current episode
(bit-exact resume). With vectorization=async (one subprocess each) a resumed run starts new episodes.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from sac_runner.config import EnvConfig
from sac_runner.run.envs import make_env
from sac_runner.run.exact_resume import EpisodeRecorder

log = logging.getLogger(__name__)


class VectorEnvs:
    def __init__(self, cfg: EnvConfig, seed: int | None = None):
        self.cfg, self.num_envs = cfg, cfg.num_envs
        builders = [functools.partial(make_env, cfg, for_training=True) for _ in range(cfg.num_envs)]
        vector_class = SyncVectorEnv if cfg.vectorization == "sync" or cfg.num_envs == 1 else AsyncVectorEnv
        self.vector = vector_class(builders, autoreset_mode=AutoresetMode.DISABLED)
        if seed is not None:
            self.vector.action_space.seed(seed)
        self.recorders = [EpisodeRecorder() for _ in range(cfg.num_envs)]

    @property
    def action_space(self) -> gym.Space:
        """The batched action space (warm-up samples one action per environment from it)."""
        return self.vector.action_space

    @property
    def replayable(self) -> bool:
        return isinstance(self.vector, SyncVectorEnv)

    def reset(self, index: int, seed: int | None = None) -> np.ndarray:
        """Start a new episode in environment `index` (through the vector's reset mask); its first
        observation."""
        self.recorders[index].begin(self.vector.envs[index] if self.replayable else None, seed)
        mask = np.arange(self.num_envs) == index
        obs, _ = self.vector.reset(seed=[seed if i == index else None for i in range(self.num_envs)],
                                   options={"reset_mask": mask})
        return obs[index]  # the vector env returns a copy (copy=True, its default)

    def reset_all(self, seed: int | None) -> np.ndarray:
        """Every environment's first observation; environment i's reset is seeded with seed + i."""
        seeds = [None if seed is None else (seed + i) % 2**32 for i in range(self.num_envs)]
        for i, recorder in enumerate(self.recorders):
            recorder.begin(self.vector.envs[i] if self.replayable else None, seeds[i])
        obs, _ = self.vector.reset(seed=seeds)
        return obs

    def record(self, actions: np.ndarray) -> None:
        """The actions about to be taken (a replayed episode takes them again)."""
        for recorder, action in zip(self.recorders, actions):
            recorder.record(action)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """gymnasium's (observations, rewards, terminated, truncated, infos), one row per environment; an
        environment whose episode ended returns its final observation, and its episode's return and
        length in infos["episode"] (each environment's RecordEpisodeStatistics), and must be reset."""
        return self.vector.step(actions)

    # ---- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"episodes": [r.state_dict() for r in self.recorders]}

    def replay(self, state: dict[str, Any], saved_obs: np.ndarray) -> np.ndarray:
        """Rebuild every environment's current episode from a checkpoint (sync), or start new ones
        (async: its environments live in other processes); the current observations."""
        if not self.replayable:
            log.warning("env.vectorization=async: the environments' episodes cannot be replayed in their "
                        "processes; the resumed run starts new episodes, so it is not bitwise identical")
            return self.reset_all(seed=None)
        return np.stack([recorder.replay(env, episode, expected)[0] for recorder, env, episode, expected
                         in zip(self.recorders, self.vector.envs, state["episodes"], saved_obs)])

    def close(self) -> None:
        self.vector.close()
