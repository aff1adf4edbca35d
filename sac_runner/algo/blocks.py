"""The registry of the networks' building blocks, by the names the config uses (agent.activation,
agent.critic_norm, agent.actor_norm): each name maps to the class or spec that builds it, so that the
networks, the update, the health checks and the config's validation all ask one place, as TorchRL's
MLP(norm_class=..., activation_class=...) takes its blocks as classes instead of comparing names.

Adding a normalization is one entry in NORMS (and its test): the actor's MLP and the critic ensembles
share one layer loop (networks.mlp_layers), so the entry reaches both, and agent.critic_norm /
agent.actor_norm accept its name.

Imports torch, sac_runner.algo.layers and sac_runner.algo.encoders only: sac_runner.config imports
this module to check names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from torch import nn

from sac_runner.algo.encoders import DrQEncoder, NatureEncoder
from sac_runner.algo.layers import BatchRenorm, EnsembleLayerNorm

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


class NormOptions(Protocol):
    """The settings a normalization layer may read (networks.Body has them)."""

    renorm_momentum: float
    renorm_warmup: int


# (features, members, options) -> the layer, for (B, features) inputs (members None) or (members, B, features).
NormFactory = Callable[[int, Optional[int], NormOptions], nn.Module]


@dataclass(frozen=True)
class Normalization:
    """How a hidden-layer normalization enters an MLP.

    make              builds one layer; None for no normalization.
    before_linear     True: before every Linear, the output layer's too (Batch Renormalization in CrossQ);
                      False: after each hidden Linear and its dropout, before the activation (LayerNorm in DroQ).
    batch_statistics  it normalizes with statistics of the batch: the critics then see current and next
                      state-actions in one joint forward pass [(s, a); (s', a')] and have no target network
                      (CrossQ, Bhatt et al., 2024).
    """

    make: Optional[NormFactory] = None
    before_linear: bool = False
    batch_statistics: bool = False

    @property
    def normalizes(self) -> bool:
        return self.make is not None

    def before(self, features: int, members: int | None, options: NormOptions) -> nn.Module | None:
        """The layer that goes before a Linear taking `features` inputs, or None."""
        return self._layer(features, members, options) if self.before_linear else None

    def after(self, features: int, members: int | None, options: NormOptions) -> nn.Module | None:
        """The layer that goes after a hidden Linear giving `features` outputs, or None."""
        return None if self.before_linear else self._layer(features, members, options)

    def _layer(self, features: int, members: int | None, options: NormOptions) -> nn.Module | None:
        if self.make is None:
            return None
        layer = self.make(features, members, options)
        if self.batch_statistics:  # running statistics by default; layers.batch_statistics switches it
            layer.uses_batch_statistics = True
            layer.train(False)
        return layer


def _batch_renorm(features: int, members: int | None, options: NormOptions) -> nn.Module:
    return BatchRenorm(features, members, momentum=options.renorm_momentum, warmup=options.renorm_warmup)


def _layer_norm(features: int, members: int | None, options: NormOptions) -> nn.Module:
    return EnsembleLayerNorm(features, members)


NORMS: dict[str, Normalization] = {
    "none": Normalization(),
    # Linear -> [Dropout] -> LayerNorm -> activation (DroQ, Hiraoka et al., 2022)
    "layer": Normalization(_layer_norm),
    # BatchRenorm before every Linear (CrossQ, Bhatt et al., 2024)
    "batch_renorm": Normalization(_batch_renorm, before_linear=True, batch_statistics=True),
}


# Image encoders (agent.encoder): (obs_shape (C, H, W), feature_dim) -> a module with .out_dim features.
ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "drq": DrQEncoder,        # Kostrikov et al., 2020 (DMC from pixels)
    "nature": NatureEncoder,  # Mnih et al., 2015 (Atari)
}
