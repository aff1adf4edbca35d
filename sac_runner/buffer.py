"""Preallocated circular replay buffer with uniform sampling."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor         # (B, obs_dim)
    action: torch.Tensor      # (B, action_dim), in [-1, 1]
    reward: torch.Tensor      # (B,) the environment's signal (summed and discounted over n steps)
    next_obs: torch.Tensor    # (B, obs_dim) the observation n steps later
    terminated: torch.Tensor  # (B,) 1.0 where the episode ended in a terminal state (no bootstrap)
    discount: torch.Tensor | None = None  # (B,) gamma^k for a k-step return; None means gamma (1-step)
    weights: torch.Tensor | None = None   # (B,) importance-sampling weights (prioritized replay)


class ReplayBuffer:
    """Fixed-capacity float32 storage; once full, the oldest transition is overwritten.

    `terminated` is stored, not `done`: a transition cut by a time limit (truncated) keeps
    terminated = 0 so its target bootstraps from the next state, as the MDP has not ended.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device, seed: int = 0):
        self.capacity = capacity
        self.device = device
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # where the next transition is written
        self.size = 0
        self.generator = torch.Generator().manual_seed(seed)
        # Torch views of the numpy storage (no copy) and reusable batch tensors, so sampling
        # allocates nothing per call.
        self._storage = [torch.from_numpy(a) for a in (self.obs, self.action, self.reward, self.next_obs,
                                                       self.terminated)]
        self._batch_size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        i = self.position
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _allocate(self, batch_size: int) -> None:
        pin = self.device.type == "cuda"
        self._indices = torch.empty(batch_size, dtype=torch.int64)
        self._host = [torch.empty((batch_size, *s.shape[1:]), dtype=s.dtype, pin_memory=pin) for s in self._storage]
        self._batch_size = batch_size

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        if batch_size != self._batch_size:
            self._allocate(batch_size)
        torch.randint(0, self.size, (batch_size,), generator=self.generator, out=self._indices)
        for storage, out in zip(self._storage, self._host):
            torch.index_select(storage, 0, self._indices, out=out)
        if self.device.type == "cpu":
            return Batch(*self._host)
        # Synchronous copy: the pinned host tensors are reused by the next call.
        return Batch(*(t.to(self.device) for t in self._host))
