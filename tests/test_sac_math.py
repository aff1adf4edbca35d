"""The SAC pieces against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from sac_runner.config import AgentConfig
from sac_runner.algo.networks import SquashedGaussianActor, squashed_gaussian_log_prob
from sac_runner.algo.sac import SAC, polyak_update, soft_bellman_target, soft_value
from sac_runner.algo.replay_buffer import Batch


def test_squashed_log_prob_matches_numerical_change_of_variables():
    torch.manual_seed(0)
    mean = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    log_std = torch.tensor([[-0.5, 0.1, 0.4]], dtype=torch.float64)
    u = torch.tensor([[0.7, -3.0, 4.5]], dtype=torch.float64)
    # log N(u) minus log |d tanh(u) / du|, the derivative taken by central differences.
    h = 1e-6
    dtanh = (torch.tanh(u + h) - torch.tanh(u - h)) / (2 * h)
    gaussian = torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
    expected = (gaussian - dtanh.log()).sum(-1)
    assert torch.allclose(squashed_gaussian_log_prob(u, mean, log_std), expected, atol=1e-6)


def test_squashed_density_integrates_to_one():
    mean, log_std = torch.tensor([0.4], dtype=torch.float64), torch.tensor([-0.3], dtype=torch.float64)
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 400_001, dtype=torch.float64)
    u = torch.atanh(a).unsqueeze(-1)
    density = squashed_gaussian_log_prob(u, mean, log_std).exp()
    assert torch.trapezoid(density, a).item() == pytest.approx(1.0, abs=1e-3)


def test_actor_sample_log_prob_is_consistent_with_its_action():
    torch.manual_seed(1)
    actor = SquashedGaussianActor(4, 2, [16])
    obs = torch.randn(5, 4)
    torch.manual_seed(2)
    action, log_prob = actor.sample(obs)
    mean, log_std = actor.distribution_params(obs)
    torch.manual_seed(2)
    u = mean + log_std.exp() * torch.randn_like(mean)
    assert torch.allclose(action, torch.tanh(u))
    assert torch.allclose(log_prob, squashed_gaussian_log_prob(u, mean, log_std))
    assert action.abs().max() < 1


def test_soft_bellman_target_by_hand():
    reward = torch.tensor([1.0, 2.0, -1.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])  # the third is a truncation: it bootstraps
    next_q = torch.tensor([[3.0, 5.0, 0.5], [4.0, 1.0, 2.0]])  # (num_critics, B)
    next_log_prob = torch.tensor([-1.0, 0.5, 2.0])
    y = soft_bellman_target(reward, terminated, soft_value(next_q, next_log_prob, torch.tensor(0.2)), gamma=0.9)
    # y0 = 1 + 0.9 * (min(3, 4) - 0.2 * -1) = 1 + 0.9 * 3.2 = 3.88
    # y1 = 2 (terminal: no bootstrap)
    # y2 = -1 + 0.9 * (min(0.5, 2) - 0.2 * 2) = -1 + 0.9 * 0.1 = -0.91
    assert torch.allclose(y, torch.tensor([3.88, 2.0, -0.91]))


def test_polyak_update_by_hand():
    target, online = [torch.zeros(3)], [torch.ones(3)]
    polyak_update(target, online, tau=0.1)
    assert torch.allclose(target[0], torch.full((3,), 0.1))
    polyak_update(target, online, tau=0.1)
    assert torch.allclose(target[0], torch.full((3,), 0.19))
    polyak_update(target, online, tau=1.0)
    assert torch.equal(target[0], online[0])


def test_polyak_update_from_trained_weights_is_not_recorded_by_autograd():
    """The target follows weights that require gradients; recorded, each update would chain one more
    node onto the target's history (a leak that grows with every gradient step)."""
    target, online = [torch.zeros(3)], [torch.ones(3, requires_grad=True)]
    for _ in range(3):
        polyak_update(target, online, tau=0.1)
    assert not target[0].requires_grad and target[0].grad_fn is None


def _batch(batch_size=8, obs_dim=3, action_dim=2, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(batch_size, obs_dim, generator=g), torch.rand(batch_size, action_dim, generator=g) * 2 - 1,
                 torch.randn(batch_size, generator=g), torch.randn(batch_size, obs_dim, generator=g),
                 (torch.rand(batch_size, generator=g) < 0.3).float())


def _agent(**overrides) -> SAC:
    torch.manual_seed(0)
    return SAC(3, 2, AgentConfig(hidden_sizes=[32, 32], **overrides), torch.device("cpu"))


@pytest.mark.parametrize("target_entropy, direction", [(10.0, +1), (-10.0, -1)])
def test_temperature_rises_below_target_entropy_and_falls_above(target_entropy, direction):
    # A fresh policy's entropy is about 1-2 nats for 2 actions: far below +10, far above -10.
    agent = _agent(target_entropy=target_entropy, alpha_lr=1e-2)
    before = agent.alpha.item()
    metrics = agent.update(_batch()).metrics
    assert (metrics["train/entropy"].item() < target_entropy) == (direction > 0)
    assert math.copysign(1, agent.alpha.item() - before) == direction


def test_fixed_alpha_never_changes():
    agent = _agent(alpha=0.2)
    for seed in range(3):
        agent.update(_batch(seed=seed))
    assert agent.alpha.item() == pytest.approx(0.2)
    assert agent.alpha_optimizer is None


def test_target_entropy_default_is_minus_action_dim():
    assert _agent().target_entropy == -2.0


def test_update_moves_targets_by_polyak_from_updated_critic():
    agent = _agent(tau=0.25)
    old_target = [p.clone() for p in agent.target.parameters()]
    agent.update(_batch())
    for new_t, old_t, online in zip(agent.target.parameters(), old_target, agent.critic.parameters()):
        assert torch.allclose(new_t, 0.25 * online + 0.75 * old_t, atol=1e-6)
    agent.reset(["critic"])  # the targets copied from the re-initialized critics
    agent.update(_batch())
    assert all(not p.requires_grad and p.is_leaf for p in agent.target.parameters())  # no autograd history kept


def test_critic_loss_uses_the_soft_bellman_target():
    agent = _agent(alpha=0.5)
    batch = _batch()
    torch.manual_seed(123)
    q_before = agent.critic(batch.obs, batch.action).detach()
    with torch.no_grad():
        next_action, next_log_prob = agent.actor.sample(batch.next_obs)
        next_value = soft_value(agent.target(batch.next_obs, next_action), next_log_prob, torch.tensor(0.5))
        y = soft_bellman_target(batch.reward, batch.terminated, next_value, agent.gamma)
    expected = 0.5 * ((q_before - y) ** 2).mean(dim=1).sum()
    torch.manual_seed(123)
    metrics = agent.update(batch).metrics
    assert metrics["train/critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_update_returns_the_documented_metrics():
    metrics = _agent().update(_batch()).metrics
    assert set(metrics) == {"train/critic_loss", "train/actor_loss", "train/alpha", "train/entropy",
                            "train/q_mean", "train/target_q_mean"}
    assert all(np.isfinite(v.item()) for v in metrics.values())


def test_deterministic_action_is_tanh_of_mean():
    agent = _agent()
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    mean, _ = agent.actor.distribution_params(torch.as_tensor(obs))
    assert np.allclose(agent.act(obs, deterministic=True), torch.tanh(mean).detach().numpy())
    assert np.array_equal(agent.act(obs, deterministic=True), agent.act(obs, deterministic=True))


def test_update_returns_each_samples_td_error_for_the_replay_priorities():
    """td_error = max_i |Q_i(s, a) - y| per sample, with the critics before the step; at a terminal
    transition y = r, so it is computed here by hand."""
    agent = _agent(alpha=0.0)
    batch = _batch()._replace(terminated=torch.ones(8))
    q_before = agent.critic(batch.obs, batch.action).detach()   # (2, 8)
    td_error = agent.update(batch).td_error
    expected = torch.maximum((q_before[0] - batch.reward).abs(), (q_before[1] - batch.reward).abs())
    torch.testing.assert_close(td_error, expected)
    assert td_error.shape == (8,) and not td_error.requires_grad
