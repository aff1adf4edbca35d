"""Soft Actor-Critic for |A| discrete actions (Christodoulou, 2019, "Soft Actor-Critic for Discrete
Action Settings"): the update of sac.py with exact expectations over pi(.|s) in place of samples."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sac_runner.algo.layers import batch_statistics
from sac_runner.algo.networks import CategoricalActor, DiscreteCriticEnsemble
from sac_runner.algo.sac import SAC, critics_for_the_actor


def discrete_soft_value(q: torch.Tensor, prob: torch.Tensor, log_prob: torch.Tensor,
                        alpha: torch.Tensor) -> torch.Tensor:
    """sum_a pi(a|s) (min_i Q_i(s, a) - alpha * log pi(a|s)): the exact soft value of s, for q of
    shape (num_critics, B, |A|) and prob, log_prob of shape (B, |A|)."""
    return (prob * (q.min(dim=0).values - alpha * log_prob)).sum(-1)


def _taken(q_all: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Q_i(s, a) from Q_i(s, .) of shape (N, B, |A|) for the action indices taken: (N, B)."""
    return q_all.gather(-1, action.long().view(1, -1, 1).expand(q_all.shape[0], -1, 1)).squeeze(-1)


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
        return (CategoricalActor(obs_dim, num_actions, actor_sizes, self.cfg.activation, self.actor_body),
                DiscreteCriticEnsemble(obs_dim, num_actions, critic_sizes, self.cfg.num_critics, self.cfg.activation,
                                       self.critic_body))

    def _auto_target_entropy(self, num_actions: int) -> float:
        return self.cfg.target_entropy_ratio * float(np.log(num_actions))

    def _acting_mode(self) -> str:
        # Drawing from a categorical distribution checks its input on the host: not capturable.
        return "compile" if self.compile_mode == "cudagraphs" else self.compile_mode

    def _policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Action index in 0 .. |A|-1 for one observation (or a batch of them)."""
        obs = self.normalizer(obs)
        return self.actor.deterministic(obs) if deterministic else self.actor.sample(obs)

    def _sample_with_log_prob(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_prob = self.actor.probabilities(obs)[1]
        action = torch.distributions.Categorical(logits=log_prob).sample()
        return action, log_prob.gather(-1, action.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """-sum_a pi(a|s) log pi(a|s), exact, averaged over the states."""
        prob, log_prob = self.actor.probabilities(self.normalizer(obs))
        return -(prob * log_prob).sum(-1).mean()

    def _soft_value(self, obs: torch.Tensor, alpha: torch.Tensor, critic: nn.Module) -> torch.Tensor:
        prob, log_prob = self.actor.probabilities(obs)
        return discrete_soft_value(critic(obs), prob, log_prob, alpha)

    def _q_taken(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_i(s, a) of every critic for the action indices taken, (num_critics, B)."""
        return _taken(self.critic(obs), action)

    def _joint_q(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
                 alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CrossQ's joint forward pass (sac.py) with Q_i(s', .) for every action."""
        with torch.no_grad():
            next_prob, next_log_prob = self.actor.probabilities(next_obs)
        with batch_statistics(self.critic):
            q_all, next_q = self.critic(torch.cat([obs, next_obs])).chunk(2, dim=1)
        return _taken(q_all, action), discrete_soft_value(next_q.detach(), next_prob, next_log_prob, alpha)

    def _actor_loss(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """J_pi = E_s[sum_a pi(a|s) (alpha * log pi(a|s) - min_i Q_i(s, a))] (mean_i with
        agent.actor_q=mean); and E_pi[log pi] = -entropy (detached), which the temperature's step uses
        in place of a sampled log pi."""
        with torch.no_grad():
            q = critics_for_the_actor(self.critic(obs), self.cfg.actor_q)  # (B, |A|)
        prob, log_prob = self.actor.probabilities(obs)
        actor_loss = (prob * (alpha * log_prob - q)).sum(-1).mean()
        return actor_loss, (prob * log_prob).sum(-1).detach()
