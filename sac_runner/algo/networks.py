"""Actor and critic networks.

Continuous actions: the actor is a Gaussian policy squashed by tanh (Haarnoja et al., 2018,
Appendix C). Actions live in [-1, 1]^d; the environment wrapper rescales them to the environment's
bounds. The critics Q_i(s, a) take the action as an input.

Discrete actions (Christodoulou, 2019): the actor outputs the probabilities pi(.|s) over the |A|
actions, and the critics Q_i(s, .) output one value per action.

The critics are an ensemble evaluated in one batched product per layer: weights of shape
(num_critics, in, out), so Q_1 .. Q_N cost one matmul call instead of N module calls.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
               "leaky_relu": nn.LeakyReLU}


def mlp(in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str = "relu") -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ValueNetwork(nn.Module):
    """V(s), the state-value network of the 2018 variant."""

    def __init__(self, obs_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


def squashed_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) for a = tanh(u), u ~ N(mean, std): the Gaussian density plus the change of variables

        log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2),

    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite when |u| is large.
    """
    gaussian = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det_jacobian = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gaussian - log_det_jacobian).sum(-1)


class SquashedGaussianActor(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 2 * action_dim, activation)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample a = tanh(mean + std * eps) and its log-probability."""
        mean, log_std = self.distribution_params(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The action at the policy mean, used for evaluation and deployment."""
        mean, _ = self.distribution_params(obs)
        return torch.tanh(mean)


class EnsembleLinear(nn.Module):
    """N independent linear layers applied in one batched matmul: (N, B, in) -> (N, B, out)."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        # Same initialisation as nn.Linear, member by member: U(-1/sqrt(in), 1/sqrt(in)).
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """N MLPs of the same shape on the same input, evaluated together: (B, in) -> (N, B, out)."""

    def __init__(self, num_members: int, in_dim: int, hidden_sizes: list[int], out_dim: int,
                 activation: str = "relu"):
        super().__init__()
        self.num_members = num_members
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(num_members, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).expand(self.num_members, *x.shape)
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class CriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, a) for continuous actions, returned stacked as (N, B)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu"):
        super().__init__()
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, obs_dim + action_dim, hidden_sizes, 1, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class DiscreteCriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, .) for |A| discrete actions, returned stacked as (N, B, |A|)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu"):
        super().__init__()
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, obs_dim, hidden_sizes, num_actions, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class CategoricalActor(nn.Module):
    """pi(.|s) over |A| discrete actions: a softmax over the network's logits."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, num_actions, activation)

    def probabilities(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pi(.|s), log pi(.|s)), each (B, |A|); log_softmax keeps log pi finite where pi underflows."""
        log_prob = F.log_softmax(self.net(obs), dim=-1)
        return log_prob.exp(), log_prob

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """An action index drawn from pi(.|s)."""
        return torch.distributions.Categorical(logits=self.net(obs)).sample()

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The most probable action, used for evaluation and deployment."""
        return self.net(obs).argmax(dim=-1)
