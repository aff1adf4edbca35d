"""Image observations: convolutional encoders, the networks' wrappers around them, and DrQ's shift.

An observation from pixels is a uint8 stack of frames, channels first: (frame_stack * channels, H, W).
The encoders scale it to [0, 1] themselves, so the buffer, the batch and an exported policy all carry
raw uint8 frames. Two encoders (the registry in blocks.py names them):

    drq     Kostrikov, Yarats and Fergus (2020), after SAC-AE (Yarats et al., 2019): four 3x3
            convolutions of 32 channels (the first with stride 2), ReLU, then Linear -> LayerNorm -> tanh
            to feature_dim (50). 84x84 -> 35x35x32.
    nature  Mnih et al. (2015), the DQN network for Atari: 8x8/4 (32), 4x4/2 (64), 3x3/1 (64), ReLU,
            flattened (3136 features at 84x84); the 512-unit layer is the networks' own hidden layer.

The critics own the encoder and train it with their loss (`EncodedCritic`); the actor reads the same
encoder's features with their gradient stopped (`EncodedActor`), so the actor's loss never moves the
encoder (Yarats et al., 2019, Section 6; DrQ). The target critics carry a copy of the encoder, moved
toward it at its own rate, agent.encoder_tau.
"""

from __future__ import annotations

import torch
from torch import nn


class DrQEncoder(nn.Module):
    def __init__(self, obs_shape: tuple[int, int, int], feature_dim: int = 50):
        super().__init__()
        channels = obs_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Flatten())
        self.head = nn.Sequential(nn.Linear(_flat_size(self.convs, obs_shape), feature_dim),
                                  nn.LayerNorm(feature_dim), nn.Tanh())
        self.out_dim = feature_dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _orthogonal(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(scaled(obs)))


class NatureEncoder(nn.Module):
    """The DQN network's convolutions; its 512-unit layer is the networks' hidden layer
    (agent.hidden_sizes=[512]), so each critic is the Nature network with its own head. feature_dim is
    not used: the features are the flattened convolutions (3136 for 84x84)."""

    def __init__(self, obs_shape: tuple[int, int, int], feature_dim: int | None = None):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(obs_shape[0], 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten())
        self.out_dim = _flat_size(self.convs, obs_shape)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _orthogonal(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.convs(scaled(obs))


def scaled(obs: torch.Tensor) -> torch.Tensor:
    """uint8 pixel values (or floats 0 .. 255) to float32 in [0, 1]."""
    return obs.float() / 255.0


def _flat_size(convs: nn.Module, obs_shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return int(convs(torch.zeros(1, *obs_shape)).shape[1])


def _orthogonal(module: nn.Module) -> None:
    """Orthogonal weights (ReLU gain for the convolutions) and zero biases, as DrQ and SAC-AE initialize."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.orthogonal_(layer.weight, gain=nn.init.calculate_gain("relu"))
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            layer.reset_parameters()


class EncodedCritic(nn.Module):
    """Q_i(f(s), ...): the critics on the encoder's features. The encoder is the critics' submodule: their
    optimizer trains it, the target's deep copy carries its own, and `frozen(critic)` freezes it too."""

    def __init__(self, encoder: nn.Module, critic: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, critic

    @property
    def num_critics(self) -> int:
        return self.head.num_critics

    def forward(self, obs: torch.Tensor, *action: torch.Tensor) -> torch.Tensor:
        return self.head(encoded(self.encoder, obs), *action)


class EncodedActor(nn.Module):
    """The policy on the critics' encoder's features, detached. The encoder is a submodule so that the
    actor alone (sac-eval, sac-export) maps raw frames to actions, but `head_parameters` (what the
    actor's optimizer steps) leave it out: only the critics' loss trains it."""

    def __init__(self, encoder: nn.Module, actor: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, actor

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return encoded(self.encoder, obs).detach()

    @property
    def net(self) -> nn.Module:
        """The policy network after the encoder (what the health checks look inside)."""
        return self.head.net

    def head_parameters(self):
        return self.head.parameters()

    def sample(self, obs: torch.Tensor):
        return self.head.sample(self.features(obs))

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head.deterministic(self.features(obs))

    def probabilities(self, obs: torch.Tensor):
        return self.head.probabilities(self.features(obs))


def encoded(encoder: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """The encoder's features of image observations (B, C, H, W); features already (B, F) pass as they
    are, so an update that encoded a batch once can hand its features to the actor and the critics."""
    return obs if obs.dim() == 2 else encoder(obs)


def optimized_parameters(actor: nn.Module):
    """The parameters the actor's own loss trains: all of them, or the head's for an EncodedActor."""
    return actor.head_parameters() if isinstance(actor, EncodedActor) else actor.parameters()


def random_shift(obs: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """DrQ's augmentation: each image padded by `pad` pixels repeating its border, then cropped back to its
    size at a random offset in 0 .. 2 * pad, per sample. Equivalent, without the padded copy: every output
    pixel (y, x) reads input pixel (clamp(y + dy - pad), clamp(x + dx - pad)). Keeps the dtype (uint8)."""
    batch, _, height, width = obs.shape
    shift = torch.randint(0, 2 * pad + 1, (2, batch, 1), device=obs.device)
    rows = (torch.arange(height, device=obs.device) + shift[0] - pad).clamp_(0, height - 1)  # (B, H)
    cols = (torch.arange(width, device=obs.device) + shift[1] - pad).clamp_(0, width - 1)    # (B, W)
    sample = torch.arange(batch, device=obs.device)[:, None, None]
    # Advanced indices around a slice put their dimensions first: (B, H, W, C) -> (B, C, H, W).
    return obs[sample, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
