"""Soft Actor-Critic for |A| discrete actions (Christodoulou, 2019, "Soft Actor-Critic for Discrete
Action Settings"): the update of sac.py with exact expectations over pi(.|s) in place of samples."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sac_runner.algo.networks import CategoricalActor, DiscreteCriticEnsemble
from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.sac import SAC, UpdateResult


def discrete_soft_bellman_target(reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
                                 next_prob: torch.Tensor, next_log_prob: torch.Tensor, alpha: torch.Tensor,
                                 gamma: float | torch.Tensor) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * sum_a pi(a|s') (min_i Q'_i(s', a) - alpha * log pi(a|s')).

    `next_q` is (num_critics, B, |A|); `next_prob` and `next_log_prob` are (B, |A|).
    """
    soft_next_value = (next_prob * (next_q.min(dim=0).values - alpha * next_log_prob)).sum(-1)
    return reward + gamma * (1.0 - terminated) * soft_next_value


class DiscreteSAC(SAC):
    """The critics output Q_i(s, .) for all actions at once, and the policy pi(.|s) is a categorical
    distribution, so every expectation over actions is an exact sum rather than a sample:

        y        = r + gamma * (1 - terminated) * sum_a' pi(a'|s') (min_i Q'_i(s', a') - alpha * log pi(a'|s'))
        J_Q      = sum_i 0.5 * E[(Q_i(s, a) - y)^2]
        J_pi     = E_s[sum_a pi(a|s) (alpha * log pi(a|s) - min_i Q_i(s, a))]
        J_alpha  = E_s[-log(alpha) * (sum_a pi(a|s) log pi(a|s) + target_entropy)]

    with target_entropy = target_entropy_ratio * log|A| by default (0.7 of the maximum entropy
    log|A|; the paper's 0.98 makes alpha diverge on CartPole, see AgentConfig). The 2018
    value-network variant works the same way: V(s) is regressed onto
    sum_a pi(a|s) (min_i Q_i(s, a) - alpha * log pi(a|s)).
    """

    def _actor_and_critic(self, obs_dim: int, num_actions: int, actor_sizes: list[int],
                          critic_sizes: list[int]) -> tuple[nn.Module, nn.Module]:
        return (CategoricalActor(obs_dim, num_actions, actor_sizes, self.cfg.activation),
                DiscreteCriticEnsemble(obs_dim, num_actions, critic_sizes, self.cfg.num_critics, self.cfg.activation))

    def _auto_target_entropy(self, num_actions: int) -> float:
        return self.cfg.target_entropy_ratio * float(np.log(num_actions))

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action index in 0 .. |A|-1 for one observation (or a batch of them)."""
        obs_t = self.normalizer(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        action = self.actor.deterministic(obs_t) if deterministic else self.actor.sample(obs_t)
        return action.cpu().numpy()

    def update(self, batch: Batch) -> UpdateResult:
        """One gradient step: critics (and V), then actor and temperature when due, then targets when due."""
        batch, reward, gamma, alpha = self._begin_update(batch)

        # Critic: regress Q_i(s, a) of the action taken onto the soft Bellman target.
        with torch.no_grad():
            if self.value is None:
                next_prob, next_log_prob = self.actor.probabilities(batch.next_obs)
                next_q = self.target(batch.next_obs)
                y = discrete_soft_bellman_target(reward, batch.terminated, next_q, next_prob, next_log_prob,
                                                 alpha, gamma)
            else:
                y = reward + gamma * (1.0 - batch.terminated) * self.target(batch.next_obs)
        q_all = self.critic(batch.obs)                                     # (N, B, |A|)
        taken = batch.action.long().view(1, -1, 1).expand(q_all.shape[0], -1, 1)
        metrics, td_error = self._critic_step(q_all.gather(-1, taken).squeeze(-1), y, batch.weights)

        # Value (2018 variant): regress V(s) onto sum_a pi(a|s) (min_i Q_i(s, a) - alpha * log pi(a|s)).
        if self.value is not None:
            with torch.no_grad():
                prob, log_prob = self.actor.probabilities(batch.obs)
                min_q = self.critic(batch.obs).min(dim=0).values
                v_target = (prob * (min_q - alpha * log_prob)).sum(-1)
            metrics.update(self._value_step(batch.obs, v_target))

        if self._policy_update_due():
            with torch.no_grad():
                min_q = self.critic(batch.obs).min(dim=0).values             # (B, |A|), after the critic step
            for _ in range(self.policy_steps_when_due):
                # Actor: minimise the exact expectation over pi(.|s) of alpha * log pi - min_i Q_i.
                prob, log_prob = self.actor.probabilities(batch.obs)
                actor_loss = (prob * (alpha * log_prob - min_q)).sum(-1).mean()
                self._step(self.actor_optimizer, actor_loss, self.actor.parameters())
                # Temperature, with E_pi[log pi] = -entropy in place of a sampled log pi.
                expected_log_prob = (prob * log_prob).sum(-1).detach()
                alpha = self._temperature_step(expected_log_prob)
            metrics.update({"train/actor_loss": actor_loss.detach(), "train/entropy": -expected_log_prob.mean()})
        metrics["train/alpha"] = alpha
        self._end_update()
        return UpdateResult(metrics, td_error)
