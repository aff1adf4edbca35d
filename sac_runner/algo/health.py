"""What the health measurements compute (run/health.py takes them at every evaluation): functions of
networks and tensors only, each checked by hand in tests/test_health.py.

Value bias (Fujimoto et al., 2018; "normalized bias" of Chen et al., 2021, REDQ): the critic's
estimate min_i Q_i(s_t, a_t) against the soft return actually collected from (s_t, a_t) by the policy
as it acts in training (actions drawn from pi), which is what the critic estimates:

    G_t = r_t + sum_{k>=1} gamma^k (r_{t+k} - alpha * log pi(a_{t+k}|s_{t+k}))

An episode cut by a time limit is bootstrapped at its last state as SAC's target does, with
gamma^(T-t) V(s_T); a terminated one adds nothing after its end.

Dormant units (Sokar et al., ICML 2023): unit i of a hidden layer has the score
s_i = E_x|h_i(x)| / ((1/H) sum_j E_x|h_j(x)|) over a batch; it is tau-dormant when s_i <= tau.

Effective learning rate (van Laarhoven, 2017; Lyle et al., 2024): a unit whose output is normalized
after it does not depend on the scale of its incoming weights w, and its step changes it like a
step of lr / ||w||^2 on the unit sphere.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sac_runner.algo.blocks import ACTIVATIONS


def soft_returns(rewards: np.ndarray, log_probs: np.ndarray, alpha: float, gamma: float,
                 bootstrap: float) -> np.ndarray:
    """G_t for t = 0 .. T-1 of one episode: rewards r_t, log pi(a_t|s_t) of the actions taken, and the
    value after its last step (0 when it terminated, V(s_T) when a time limit cut it)."""
    returns = np.empty(len(rewards))
    following = bootstrap  # the soft value of what comes after step t, seen from t
    for t in range(len(rewards) - 1, -1, -1):
        returns[t] = rewards[t] + gamma * following
        following = returns[t] - alpha * log_probs[t]
    return returns


def value_bias(estimates: np.ndarray, returns: np.ndarray) -> tuple[float, float]:
    """(mean of Q - G, that mean relative to the returns' scale mean |G|): + is overestimation."""
    bias = float(np.mean(estimates - returns))
    return bias, bias / max(float(np.mean(np.abs(returns))), 1e-8)


def hidden_activations(network: nn.Module, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """The output of every activation of `network` (its hidden units) on `inputs`, in call order: (B, H),
    or (members, B, H) for an ensemble."""
    found: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _i, output: found.append(output.detach()))
             for module in network.modules() if isinstance(module, tuple(ACTIVATIONS.values()))]
    try:
        with torch.no_grad():
            network(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def dormant_fraction(activations: list[torch.Tensor], tau: float) -> float:
    """The fraction of tau-dormant units over all the layers (and ensemble members) given."""
    dormant, total = 0, 0
    for h in activations:
        score = h.abs().mean(dim=-2)                                  # E_x|h_i(x)|, (..., H)
        score = score / score.mean(dim=-1, keepdim=True).clamp_min(1e-12)
        dormant += int((score <= tau).sum())
        total += score.numel()
    return dormant / max(total, 1)


def total_norm(tensors: list[torch.Tensor]) -> float:
    """The L2 norm of all the tensors together, read once (torch>=2.6 has nn.utils.get_total_norm)."""
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.detach()) for t in tensors])))


def parameter_norm(network: nn.Module) -> float:
    return total_norm(list(network.parameters()))


def gradient_norm(network: nn.Module) -> float:
    """The norm of the gradient of the network's last optimizer step (nan before its first)."""
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    return total_norm(grads) if grads else math.nan


def effective_learning_rate(lr: float, weights: list[torch.Tensor]) -> float:
    """lr / ||w_i||^2, averaged over the hidden units i of `weights` (dim 1 indexes a unit's inputs)."""
    squared = torch.cat([w.detach().pow(2).sum(dim=1).flatten() for w in weights])
    return float((lr / squared.clamp_min(1e-12)).mean())
