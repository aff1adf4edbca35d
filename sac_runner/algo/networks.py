"""Actor and critic networks.

Continuous actions: the actor is a Gaussian policy squashed by tanh (Haarnoja et al., 2018,
Appendix C). Actions live in [-1, 1]^d; the environment wrapper rescales them to the environment's
bounds. The critics Q_i(s, a) take the action as an input.

Discrete actions (Christodoulou, 2019): the actor outputs the probabilities pi(.|s) over the |A|
actions, and the critics Q_i(s, .) output one value per action.

The critics are an ensemble evaluated in one batched product per layer: weights of shape
(num_critics, in, out), so Q_1 .. Q_N cost one matmul call instead of N module calls.

Every network takes a `Body`: the plain MLP of the SAC papers by default, or with the LayerNorm,
dropout or Batch Renormalization of the 2022-2025 variants (layers.py, named in blocks.py's registry),
or SimBa's residual blocks (Lee et al., 2024). Weight normalization (Palenicek et al., 2025) keeps the
hidden layers' weights at unit norm (`unit_norm_weights`, applied by the update after each optimizer step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sac_runner.algo.blocks import ACTIVATIONS, NORMS, Normalization
from sac_runner.algo.layers import EnsembleLayerNorm, SparseDropout

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class Body:
    """The shape of a network between its input and output (agent.critic_architecture, critic_norm,
    critic_dropout and the actor's). The default is the plain MLP of the SAC papers.

        norm=layer            Linear -> [Dropout] -> LayerNorm -> activation    (DroQ, Hiraoka et al., 2022)
        norm=batch_renorm     BatchRenorm before every Linear, the output layer's too (CrossQ, Bhatt et al., 2024)
        architecture=simba    Linear embedding -> residual blocks -> LayerNorm -> Linear (SimBa, Lee et al., 2024)
    """

    norm: str = "none"            # a key of blocks.NORMS: none, layer or batch_renorm
    dropout: float = 0.0
    renorm_momentum: float = 0.01
    renorm_warmup: int = 100_000  # training batches of plain batch normalization before renormalizing
    architecture: str = "mlp"     # mlp or simba

    def build(self, in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str,
              members: int | None = None) -> nn.Module:
        """(B, in) -> (B, out), or (members, B, out) for an ensemble of `members` networks."""
        if self.architecture == "simba":
            return SimbaMLP(in_dim, hidden_sizes, out_dim, activation, members)
        if members is None:
            return mlp(in_dim, hidden_sizes, out_dim, activation, self)
        return EnsembleMLP(members, in_dim, hidden_sizes, out_dim, activation, self)

    @property
    def normalization(self) -> Normalization:
        """What `norm` names in the registry (blocks.NORMS): where its layers go, whether it needs batch statistics."""
        return NORMS[self.norm]


PLAIN = Body()


def reinitialize(network: nn.Module) -> None:
    """Every layer of `network` back to a fresh initialisation, in place (resets, Nikishin et al., 2022)."""
    for module in network.modules():
        if module is not network and hasattr(module, "reset_parameters"):
            module.reset_parameters()


def unit_norm_weights(network: nn.Module) -> list[torch.Tensor]:
    """The weights that weight normalization keeps at unit norm: every hidden layer's, not the output
    layer's (whose scale sets the output's). Each output unit's incoming weights form one vector: dim 1
    of nn.Linear's (out, in) and of EnsembleLinear's (N, in, out) weight."""
    return [layer.weight for module in network.modules() if hasattr(module, "hidden_linears")
            for layer in module.hidden_linears()]


@torch.no_grad()
def project_to_unit_norm(weights: list[torch.Tensor]) -> None:
    """w <- w / ||w|| per output unit, in place (Palenicek et al., 2025: after every gradient step, so
    the effective learning rate lr / ||w||^2 stays constant)."""
    for weight in weights:
        weight.div_(weight.norm(dim=1, keepdim=True).clamp_min(1e-12))


@dataclass
class MLPLayer:
    """One Linear layer of an MLP and what the Body puts around it, in forward order; None where it puts
    nothing. The output layer's ends at its Linear."""

    pre_norm: nn.Module | None
    linear: nn.Module
    dropout: nn.Module | None = None
    post_norm: nn.Module | None = None
    activation: nn.Module | None = None

    def in_order(self) -> list[nn.Module]:
        return [m for m in (self.pre_norm, self.linear, self.dropout, self.post_norm, self.activation) if m is not None]


def mlp_layers(in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str, body: Body = PLAIN,
               members: int | None = None) -> list[MLPLayer]:
    """The layer loop of every MLP, the actor's (members None: nn.Linear) and the critic ensembles'
    (EnsembleLinear of `members`): the normalization agent.*_norm names (blocks.NORMS) goes before each
    Linear or after each hidden one, dropout after each hidden Linear."""
    norm = body.normalization
    layers = []
    for width in hidden_sizes:
        layers.append(MLPLayer(norm.before(in_dim, members, body), linear(in_dim, width, members),
                               SparseDropout(body.dropout) if body.dropout else None,
                               norm.after(width, members, body), ACTIVATIONS[activation]()))
        in_dim = width
    layers.append(MLPLayer(norm.before(in_dim, members, body), linear(in_dim, out_dim, members)))
    return layers


class MLP(nn.Sequential):
    """Linear layers with what the Body adds between them; the last Linear is the output layer."""

    def hidden_linears(self) -> list[nn.Linear]:
        return [layer for layer in self if isinstance(layer, nn.Linear)][:-1]


def mlp(in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str = "relu",
        body: Body = PLAIN) -> MLP:
    return MLP(*(module for layer in mlp_layers(in_dim, hidden_sizes, out_dim, activation, body)
                 for module in layer.in_order()))


class ValueNetwork(nn.Module):
    """V(s), the state-value network of the 2018 variant."""

    def __init__(self, obs_dim: int, hidden_sizes: list[int], activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.net = body.build(obs_dim, hidden_sizes, 1, activation)

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
        self.net = body.build(obs_dim, hidden_sizes, 2 * action_dim, activation)

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
        layers = mlp_layers(in_dim, hidden_sizes, out_dim, activation, body, num_members)
        self.layers = nn.ModuleList(layer.linear for layer in layers)
        self.activation = layers[0].activation  # stateless: one module serves every hidden layer
        # Each member normalizes with its own statistics and parameters; none of these in a plain MLP.
        pre_norms = [layer.pre_norm for layer in layers if layer.pre_norm is not None]
        post_norms = [layer.post_norm for layer in layers if layer.post_norm is not None]
        if pre_norms:
            self.pre_norms = nn.ModuleList(pre_norms)
        if post_norms:
            self.post_norms = nn.ModuleList(post_norms)
        self.dropout = layers[0].dropout  # stateless too

    def hidden_linears(self) -> list[EnsembleLinear]:
        return list(self.layers)[:-1]

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


def linear(in_dim: int, out_dim: int, members: int | None) -> nn.Module:
    """nn.Linear, or `members` of them as one EnsembleLinear."""
    return nn.Linear(in_dim, out_dim) if members is None else EnsembleLinear(members, in_dim, out_dim)


class ResidualBlock(nn.Module):
    """SimBa's block (Lee et al., 2024): x + Linear(activation(Linear(LayerNorm(x)))), the inner layer
    4x as wide; the residual path keeps the network close to a linear function of its embedding."""

    def __init__(self, width: int, activation: str, members: int | None):
        super().__init__()
        self.norm = EnsembleLayerNorm(width, members)
        self.expand = linear(width, 4 * width, members)
        self.activation = ACTIVATIONS[activation]()
        self.contract = linear(4 * width, width, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.contract(self.activation(self.expand(self.norm(x))))


class SimbaMLP(nn.Module):
    """SimBa (Lee et al., 2024): Linear embedding to the width -> one residual block per entry of
    hidden_sizes (all one width) -> LayerNorm -> Linear output. Its running observation normalization is
    env.normalize_obs. For an ensemble, each member has its own weights: (B, in) -> (members, B, out)."""

    def __init__(self, in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str = "relu",
                 members: int | None = None):
        super().__init__()
        width = hidden_sizes[0]
        self.members = members
        self.embed = linear(in_dim, width, members)
        self.blocks = nn.Sequential(*(ResidualBlock(width, activation, members) for _ in hidden_sizes))
        self.norm = EnsembleLayerNorm(width, members)
        self.head = linear(width, out_dim, members)

    def hidden_linears(self) -> list[nn.Module]:
        return [self.embed, *(layer for block in self.blocks for layer in (block.expand, block.contract))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members is not None:
            x = x.unsqueeze(0).expand(self.members, *x.shape)
        return self.head(self.norm(self.blocks(self.embed(x))))


class CriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, a) for continuous actions, returned stacked as (N, B)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.num_critics = num_critics
        self.net = body.build(obs_dim + action_dim, hidden_sizes, 1, activation, members=num_critics)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class DiscreteCriticEnsemble(nn.Module):
    """Q_1 .. Q_N (s, .) for |A| discrete actions, returned stacked as (N, B, |A|)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], num_critics: int,
                 activation: str = "relu", body: Body = PLAIN):
        super().__init__()
        self.num_critics = num_critics
        self.net = body.build(obs_dim, hidden_sizes, num_actions, activation, members=num_critics)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class CategoricalActor(nn.Module):
    """pi(.|s) over |A| discrete actions: a softmax over the network's logits."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], activation: str = "relu",
                 body: Body = PLAIN):
        super().__init__()
        self.net = body.build(obs_dim, hidden_sizes, num_actions, activation)

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
