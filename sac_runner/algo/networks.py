"""Actor and critic networks.

Continuous actions: the actor is a Gaussian policy squashed by tanh (Haarnoja et al., 2018,
Appendix C). Actions live in [-1, 1]^d; the environment wrapper rescales them to the environment's
bounds. The critics Q_i(s, a) take the action as an input.

Discrete actions (Christodoulou, 2019): the actor outputs the probabilities pi(.|s) over the |A|
actions, and the critics Q_i(s, .) output one value per action.

The critics are an ensemble evaluated in one batched product per layer: weights of shape
(num_critics, in, out), so Q_1 .. Q_N cost one matmul call instead of N module calls.

Every network takes a `Body`: the plain MLP of the SAC papers by default, or with the LayerNorm,
dropout or Batch Renormalization of the 2022-2025 variants (layers.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sac_runner.algo.layers import BatchRenorm, EnsembleLayerNorm

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
               "leaky_relu": nn.LeakyReLU}


@dataclass(frozen=True)
class Body:
    """What the hidden layers hold besides Linear and the activation (agent.critic_norm, actor_norm,
    critic_dropout). The default is the plain MLP of the SAC papers.

        norm=layer          Linear -> [Dropout] -> LayerNorm -> activation    (DroQ, Hiraoka et al., 2022)
        norm=batch_renorm   BatchRenorm before every Linear, the output layer's too (CrossQ, Bhatt et al., 2024)
    """

    norm: str = "none"            # none, layer or batch_renorm
    dropout: float = 0.0
    renorm_momentum: float = 0.01
    renorm_warmup: int = 100_000  # training batches of plain batch normalization before renormalizing

    def pre_norm(self, width: int, members: int | None = None) -> nn.Module | None:
        if self.norm != "batch_renorm":
            return None
        return BatchRenorm(width, members, momentum=self.renorm_momentum, warmup=self.renorm_warmup)

    def post_norm(self, width: int, members: int | None = None) -> nn.Module | None:
        return EnsembleLayerNorm(width, members) if self.norm == "layer" else None


PLAIN = Body()


def reinitialize(network: nn.Module) -> None:
    """Every layer of `network` back to a fresh initialisation, in place (resets, Nikishin et al., 2022)."""
    for module in network.modules():
        if module is not network and hasattr(module, "reset_parameters"):
            module.reset_parameters()


def mlp(in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str = "relu",
        body: Body = PLAIN) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in [*hidden_sizes, None]:
        layers.append(body.pre_norm(in_dim))
        if width is None:
            break
        layers += [nn.Linear(in_dim, width), nn.Dropout(body.dropout) if body.dropout else None,
                   body.post_norm(width), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*(layer for layer in layers if layer is not None))


class ValueNetwork(nn.Module):
    """V(s), the state-value network of the 2018 variant."""

    def __init__(self, obs_dim: int, hidden_sizes: list[int], activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1, activation, body)

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
    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu",
                 body: Body = PLAIN):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 2 * action_dim, activation, body)

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
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation as nn.Linear, member by member: U(-1/sqrt(in), 1/sqrt(in)), in place."""
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """N MLPs of the same shape on the same input, evaluated together: (B, in) -> (N, B, out)."""

    def __init__(self, num_members: int, in_dim: int, hidden_sizes: list[int], out_dim: int,
                 activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.num_members = num_members
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(num_members, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[activation]()
        # Each member normalizes with its own statistics and parameters; none of these in a plain MLP.
        if body.norm == "batch_renorm":
            self.pre_norms = nn.ModuleList(body.pre_norm(i, num_members) for i in sizes[:-1])
        if body.norm == "layer":
            self.post_norms = nn.ModuleList(body.post_norm(o, num_members) for o in hidden_sizes)
        self.dropout = nn.Dropout(body.dropout) if body.dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).expand(self.num_members, *x.shape)
        pre_norms, post_norms = getattr(self, "pre_norms", None), getattr(self, "post_norms", None)
        for k, layer in enumerate(self.layers):
            if pre_norms is not None:
                x = pre_norms[k](x)
            x = layer(x)
            if k == len(self.layers) - 1:
                return x
            if self.dropout is not None:
                x = self.dropout(x)
            if post_norms is not None:
                x = post_norms[k](x)
            x = self.activation(x)


class CriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, a) for continuous actions, returned stacked as (N, B)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, obs_dim + action_dim, hidden_sizes, 1, activation, body)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class DiscreteCriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, .) for |A| discrete actions, returned stacked as (N, B, |A|)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, obs_dim, hidden_sizes, num_actions, activation, body)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class CategoricalActor(nn.Module):
    """pi(.|s) over |A| discrete actions: a softmax over the network's logits."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], activation: str = "relu",
                 body: Body = PLAIN):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, num_actions, activation, body)

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
