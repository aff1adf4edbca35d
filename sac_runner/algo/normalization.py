"""Running mean / standard deviation of observations, kept inside the agent.

The replay buffer keeps raw observations and every batch is normalized with the current statistics,
so old transitions are never stuck with stale ones. Statistics are updated only from the training
environment's observations (frozen during evaluation) and saved in the agent's state dict.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ObservationNormalizer(nn.Module):
    def __init__(self, obs_dim: int, enabled: bool, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.enabled = enabled
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, obs: np.ndarray) -> None:
        """Fold a batch (or one) of observations into the running statistics (Chan et al.'s merge)."""
        if not self.enabled:
            return
        x = torch.as_tensor(np.atleast_2d(obs), dtype=torch.float64, device=self.mean.device)
        n = x.shape[0]
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return obs
        std = (self.var + self.eps).sqrt().to(obs.dtype)
        return ((obs - self.mean.to(obs.dtype)) / std).clamp(-self.clip, self.clip)
