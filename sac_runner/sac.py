"""Soft Actor-Critic (Haarnoja et al., 2018; 2019), continuous actions.

`SAC.update(batch)` is the whole algorithm for one gradient step, in the papers' order and names:

    y        = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
    J_Q      = sum_i 0.5 * E[(Q_i(s, a) - y)^2]
    J_pi     = E[alpha * log pi(a|s) - min_i Q_i(s, a)],                                     a ~ pi(.|s)
    J_alpha  = E[-log(alpha) * (log pi(a|s) + target_entropy)]
    theta'   <- tau * theta + (1 - tau) * theta'
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch.nn import functional as F

from sac_runner.buffer import Batch
from sac_runner.config import AgentConfig
from sac_runner.networks import CriticEnsemble, SquashedGaussianActor


def polyak_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, in place (tau = 1 is a hard copy)."""
    torch._foreach_lerp_(target, online, tau)


def soft_bellman_target(reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
                        next_log_prob: torch.Tensor, alpha: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')).

    `next_q` is (num_critics, B). A truncated episode (time limit) has terminated = 0 and bootstraps.
    """
    soft_next_value = next_q.min(dim=0).values - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated) * soft_next_value


class SAC:
    def __init__(self, obs_dim: int, action_dim: int, cfg: AgentConfig, device: torch.device):
        self.cfg = cfg
        self.device = device
        self.gamma = cfg.gamma
        self.tau = cfg.tau

        self.actor = SquashedGaussianActor(obs_dim, action_dim, cfg.hidden_sizes).to(device)
        self.critic = CriticEnsemble(obs_dim, action_dim, cfg.hidden_sizes, cfg.num_critics).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)

        self.target_entropy = float(-action_dim if cfg.target_entropy == "auto" else cfg.target_entropy)
        self.learns_alpha = cfg.learns_alpha
        initial_alpha = cfg.alpha_init if self.learns_alpha else float(cfg.alpha)
        # log(0) for a fixed alpha of 0 (no entropy bonus) is -inf; exp(-inf) = 0 is exact.
        self.log_alpha = torch.tensor(np.log(initial_alpha) if initial_alpha > 0 else -np.inf,
                                      dtype=torch.float32, device=device, requires_grad=self.learns_alpha)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr) if self.learns_alpha else None

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action in [-1, 1]^d for one observation (or a batch of them)."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action = self.actor.deterministic(obs_t) if deterministic else self.actor.sample(obs_t)[0]
        return action.cpu().numpy()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on critics, actor and temperature, then the target update."""
        alpha = self.alpha

        # Critic: regress every Q_i onto the soft Bellman target built from the target critics.
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs)
            next_q = self.critic_target(batch.next_obs, next_action)
            y = soft_bellman_target(batch.reward, batch.terminated, next_q, next_log_prob, alpha, self.gamma)
        q = self.critic(batch.obs, batch.action)
        critic_loss = 0.5 * F.mse_loss(q, y.expand_as(q), reduction="none").mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # Actor: maximise min_i Q_i(s, a) + alpha * entropy, with a ~ pi reparameterised.
        action, log_prob = self.actor.sample(batch.obs)
        q_pi = self.critic(batch.obs, action).min(dim=0).values
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        # Temperature: raise alpha when the entropy -log pi is below target, lower it when above.
        if self.alpha_optimizer is not None:
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()

        polyak_update(list(self.critic_target.parameters()), list(self.critic.parameters()), self.tau)

        return {
            "train/critic_loss": critic_loss.detach(),
            "train/actor_loss": actor_loss.detach(),
            "train/alpha": alpha,
            "train/entropy": -log_prob.detach().mean(),
            "train/q_mean": q.detach().mean(),
            "train/target_q_mean": y.mean(),
        }

    # ---- checkpointing: plain state dicts only ---------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
        }
        if self.alpha_optimizer is not None:
            state["alpha_optimizer"] = self.alpha_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None and "alpha_optimizer" in state:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
