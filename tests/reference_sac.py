"""A plain SAC update, written the textbook way, as the oracle for sac_runner's fast update.

One nn.Sequential per critic, one module call per critic, torch.distributions for the Gaussian,
the actor loss backpropagated into every network (critic weight gradients computed and thrown
away), one-tensor-at-a-time Adam, a Python loop for the target update. Nothing here is fast; it
is what the fast path must agree with.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.networks import CriticEnsemble
from sac_runner.algo.sac import SAC


def plain_linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    """nn.Linear holding W (in, out) and b (1, out) of one ensemble member."""
    layer = nn.Linear(weight.shape[0], weight.shape[1], device=weight.device)
    with torch.no_grad():
        layer.weight.copy_(weight.T)
        layer.bias.copy_(bias.reshape(-1))
    return layer


def plain_critics(ensemble: CriticEnsemble) -> list[nn.Sequential]:
    """A critic ensemble as separate nn.Sequential critics with the same weights."""
    layers = ensemble.net.layers
    critics = []
    for i in range(ensemble.num_critics):
        modules: list[nn.Module] = []
        for k, layer in enumerate(layers):
            modules.append(plain_linear(layer.weight[i].detach(), layer.bias[i].detach()))
            if k < len(layers) - 1:
                modules.append(nn.ReLU())
        critics.append(nn.Sequential(*modules))
    return critics


class PlainSAC:
    """The 2019 update for continuous actions, from the same initial weights as `agent`."""

    def __init__(self, agent: SAC):
        cfg = agent.cfg
        self.gamma, self.tau, self.reward_scale = cfg.gamma, cfg.tau, agent.reward_scale
        self.policy_update_every, self.target_update_every = agent.policy_update_every, agent.target_update_every
        self.actor = copy.deepcopy(agent.actor.net)
        self.critics = plain_critics(agent.critic)
        self.target_critics = [copy.deepcopy(q) for q in self.critics]
        self.log_alpha = agent.log_alpha.detach().clone().requires_grad_(agent.learns_alpha)
        self.target_entropy = agent.target_entropy
        plain = dict(foreach=False, fused=False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, **plain)
        self.critic_optimizer = torch.optim.Adam([p for q in self.critics for p in q.parameters()],
                                                 lr=cfg.critic_lr, **plain)
        self.alpha_optimizer = (torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, **plain)
                                if agent.learns_alpha else None)
        self.num_updates = 0

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs).chunk(2, dim=-1)
        std = log_std.clamp(-20.0, 2.0).exp()
        u = mean + std * torch.randn_like(mean)
        action = torch.tanh(u)
        log_prob = torch.distributions.Normal(mean, std).log_prob(u) - torch.log(1.0 - action ** 2)
        return action, log_prob.sum(-1)

    def q_values(self, critics: list[nn.Sequential], obs: torch.Tensor, action: torch.Tensor) -> list[torch.Tensor]:
        return [q(torch.cat([obs, action], dim=-1)).squeeze(-1) for q in critics]

    def update(self, batch: Batch) -> dict[str, float]:
        self.num_updates += 1
        alpha = self.log_alpha.detach().exp()
        gamma = self.gamma if batch.discount is None else batch.discount
        reward = self.reward_scale * batch.reward
        with torch.no_grad():
            next_action, next_log_prob = self.sample(batch.next_obs)
            next_q = torch.stack(self.q_values(self.target_critics, batch.next_obs, next_action)).min(0).values
            y = reward + gamma * (1 - batch.terminated) * (next_q - alpha * next_log_prob)
        weights = torch.ones_like(y) if batch.weights is None else batch.weights
        critic_loss = sum(0.5 * (weights * (q - y) ** 2).mean()
                          for q in self.q_values(self.critics, batch.obs, batch.action))
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        losses = {"critic_loss": critic_loss.item()}

        if self.num_updates % self.policy_update_every == 0:
            action, log_prob = self.sample(batch.obs)
            q_pi = torch.stack(self.q_values(self.critics, batch.obs, action)).min(0).values
            actor_loss = (alpha * log_prob - q_pi).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            losses["actor_loss"] = actor_loss.item()
            if self.alpha_optimizer is not None:
                alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
                self.alpha_optimizer.zero_grad()
                alpha_loss.backward()
                self.alpha_optimizer.step()

        if self.num_updates % self.target_update_every == 0:
            with torch.no_grad():
                for q, target in zip(self.critics, self.target_critics):
                    for p, tp in zip(q.parameters(), target.parameters()):
                        tp.mul_(1 - self.tau).add_(self.tau * p)
        return losses
