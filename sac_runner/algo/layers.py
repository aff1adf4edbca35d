"""Normalization and dropout layers the 2022-2025 SAC variants add to the networks, for plain (B, F)
and ensemble (N, B, F) inputs alike: statistics and affine parameters are per feature, and per
ensemble member.

BatchRenorm (Ioffe, 2017), as CrossQ uses it (Bhatt et al., 2024). In training mode, on a batch with
per-feature mean mu_B and standard deviation sigma_B = sqrt(var_B + eps):

    r     = clip(sigma_B / sigma, 1 / r_max, r_max)           (no gradient; r = 1 during warm-up)
    d     = clip((mu_B - mu) / sigma, -d_max, d_max)          (no gradient; d = 0 during warm-up)
    x_hat = (x - mu_B) / sigma_B * r + d
    mu   <- mu + momentum * (mu_B - mu),   var <- var + momentum * (var_B - var)

with sigma = sqrt(var + eps) from the running statistics; during the first `warmup` training batches
it is plain batch normalization. In evaluation mode x_hat = (x - mu) / sigma. The output is
gamma * x_hat + beta. Statistics are over the batch dimension (-2), biased (1/B) variances.

A BatchRenorm layer starts in evaluation mode (acting, evaluation and export use the running
statistics) and uses batch statistics only inside `batch_statistics(network)`: the update says
where (CrossQ: the critics' joint forward pass and the actor's loss), independently of dropout,
which follows the network's own train/eval mode.

EnsembleLayerNorm: LayerNorm over the features of each member, with each member's own gamma, beta.

SparseDropout: nn.Dropout whose mask is drawn faster on the CPU at the small rates of RL critics.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F


def _shape(features: int, members: int | None) -> tuple[int, ...]:
    return (features,) if members is None else (members, 1, features)


class BatchRenorm(nn.Module):
    uses_batch_statistics = True  # batch_statistics(network) switches it to batch statistics

    def __init__(self, features: int, members: int | None = None, momentum: float = 0.01, warmup: int = 100_000,
                 eps: float = 1e-3, r_max: float = 3.0, d_max: float = 5.0):
        super().__init__()
        shape = _shape(features, members)
        self.momentum, self.warmup, self.eps, self.r_max, self.d_max = momentum, warmup, eps, r_max, d_max
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))  # training batches seen
        self.train(False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for tensor, value in ((self.weight, 1.0), (self.bias, 0.0), (self.running_mean, 0.0), (self.running_var, 1.0),
                                  (self.batches, 0)):
                tensor.fill_(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            x_hat = (x - self.running_mean) / (self.running_var + self.eps).sqrt()
            return self.weight * x_hat + self.bias
        mean = x.mean(dim=-2, keepdim=True)
        var = x.var(dim=-2, unbiased=False, keepdim=True)
        std = (var + self.eps).sqrt()
        with torch.no_grad():
            running_std = (self.running_var + self.eps).sqrt()
            renorm = self.batches >= self.warmup  # a tensor: no host sync, no graph break
            r = torch.where(renorm, (std / running_std).clamp(1 / self.r_max, self.r_max), 1.0)
            d = torch.where(renorm, ((mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max), 0.0)
            self.running_mean.lerp_(mean.reshape(self.running_mean.shape), self.momentum)
            self.running_var.lerp_(var.reshape(self.running_var.shape), self.momentum)
            self.batches += 1
        x_hat = (x - mean) / std * r + d
        return self.weight * x_hat + self.bias


class EnsembleLayerNorm(nn.Module):
    def __init__(self, features: int, members: int | None = None, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(_shape(features, members)))
        self.bias = nn.Parameter(torch.zeros(_shape(features, members)))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


SPARSE_BELOW = 0.5  # dropout rates drawn by gaps on the CPU; at 0.5 both draws cost about the same


class SparseDropout(nn.Dropout):
    """nn.Dropout (each unit zeroed with probability p, the rest scaled by 1 / (1 - p)), with the mask
    drawn from its gaps on the CPU. The dropped units of a Bernoulli(p) mask, read in order, are a
    Bernoulli process: the distances between them are independent Geometric(p) draws. Drawing those
    (about n * p of them) instead of one uniform per unit gives masks of exactly the same distribution
    at a fraction of the cost: 2 x 256 x 256 units at DroQ's p = 0.01 in 0.1 ms instead of 0.7 ms on
    one core, where nn.Dropout's draw was 30% of DroQ's critic update. On other devices (and for
    p >= SPARSE_BELOW) it is nn.Dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.device.type != "cpu" or not 0.0 < self.p < SPARSE_BELOW:
            return super().forward(x)
        return x * _kept_and_scaled(x.numel(), self.p, x.dtype).view_as(x)


@torch.compiler.disable  # a host-side loop: compiled code calls it as it is (and draws the same numbers)
def _kept_and_scaled(n: int, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A flat mask of n units: 0 where dropped (each with probability p), 1 / (1 - p) elsewhere."""
    mask = torch.full((n + 1,), 1.0 / (1.0 - p), dtype=dtype)  # slot n: where positions past the end go
    start = 0  # the first unit not yet decided
    while start < n:  # once, unless the gaps drawn fell short of the end (odds below 1e-9)
        gaps = torch.empty(_gaps_to_draw(n - start, p), dtype=torch.long).geometric_(p)  # 1, 2, ...
        dropped = gaps.cumsum_(0).add_(start - 1)
        mask[dropped.clamp(max=n)] = 0.0
        start = int(dropped[-1]) + 1
    return mask[:n]


def _gaps_to_draw(units: int, p: float) -> int:
    """Enough gaps to pass `units` units but in about one in 1e9 draws: the mean and 6 standard deviations."""
    mean = units * p
    return int(mean + 6.0 * math.sqrt(mean) + 16)


@contextmanager
def batch_statistics(network: nn.Module):
    """The network's batch-statistics layers (BatchRenorm, and any norm registered in blocks.NORMS with
    batch_statistics=True) normalize with (and update) batch statistics inside the block."""
    layers = [m for m in network.modules() if getattr(m, "uses_batch_statistics", False)]
    for layer in layers:
        layer.train(True)
    try:
        yield
    finally:
        for layer in layers:
            layer.train(False)
