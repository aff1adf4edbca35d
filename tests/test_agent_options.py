"""One test per agent and schedule option, each failing if the option were ignored."""


import numpy as np

import pytest
import torch
from torch import nn

from sac_runner.algo.replay_buffer import Batch
from sac_runner.config import AgentConfig
from sac_runner.algo.lr_schedule import decayed_lr
from sac_runner.algo.sac import SAC
from tests.harness import train_tiny


def _batch(batch_size=16, obs_dim=3, action_dim=2, seed=0, terminated=None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    term = (torch.rand(batch_size, generator=g) < 0.3).float() if terminated is None else torch.full((batch_size,), terminated)
    return Batch(torch.randn(batch_size, obs_dim, generator=g), torch.rand(batch_size, action_dim, generator=g) * 2 - 1,
                 torch.randn(batch_size, generator=g), torch.randn(batch_size, obs_dim, generator=g), term)


def _agent(**overrides) -> SAC:
    torch.manual_seed(0)
    overrides.setdefault("hidden_sizes", [32, 32])
    return SAC(3, 2, AgentConfig(**overrides), torch.device("cpu"))


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# ---- agent group ------------------------------------------------------------------------------------

def test_num_critics_three_and_the_target_takes_the_minimum_of_all_three():
    agent = _agent(num_critics=3, alpha=0.0)
    batch = _batch(terminated=0.0)
    assert agent.critic(batch.obs, batch.action).shape == (3, 16)
    with torch.no_grad():  # make the third target critic far lower than the other two
        agent.target.net.layers[-1].bias[2].fill_(-100.0)
    metrics = agent.update(batch).metrics
    # y = r + 0.99 * min_i Q'_i: only the third critic can bring the mean target near -99.
    assert metrics["train/target_q_mean"].item() < -90


def test_num_critics_one_works_without_a_min_partner():
    agent = _agent(num_critics=1)
    assert agent.critic(_batch().obs, _batch().action).shape == (1, 16)
    agent.update(_batch())


def test_separate_hidden_sizes_and_activation():
    agent = _agent(actor_hidden_sizes=[8], critic_hidden_sizes=[16, 12, 4], activation="tanh")
    actor_linears = [m for m in agent.actor.net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in actor_linears] == [8, 4]
    assert [tuple(layer.weight.shape[1:]) for layer in agent.critic.net.layers] == [(5, 16), (16, 12), (12, 4), (4, 1)]
    assert any(isinstance(m, nn.Tanh) for m in agent.actor.net) and isinstance(agent.critic.net.activation, nn.Tanh)


def test_value_network_variant_bootstraps_from_the_target_v():
    agent = _agent(value_network=True, alpha=0.5)
    assert agent.value is not None and agent.target is not agent.value
    batch = _batch()
    with torch.no_grad():
        expected_y = batch.reward + 0.99 * (1 - batch.terminated) * agent.target(batch.next_obs)
    old_target, old_value = _params(agent.target), _params(agent.value)
    metrics = agent.update(batch).metrics
    assert metrics["train/target_q_mean"].item() == pytest.approx(expected_y.mean().item(), rel=1e-6)
    assert "train/value_loss" in metrics
    assert not _same(old_value, _params(agent.value))  # V was trained
    for new_t, old_t, v in zip(agent.target.parameters(), old_target, agent.value.parameters()):
        assert torch.allclose(new_t, 0.005 * v + 0.995 * old_t, atol=1e-7)  # the target follows V


def test_alpha_init_sets_the_starting_temperature():
    assert _agent(alpha_init=0.05).alpha.item() == pytest.approx(0.05)


@pytest.mark.parametrize("decay, expected", [("constant", 1e-3), ("linear", 1e-3 + (1e-5 - 1e-3) * 0.25),
                                             ("exponential", 1e-3 * (1e-2) ** 0.25)])
def test_lr_decay_by_hand(decay, expected):
    assert decayed_lr(1e-3, 1e-5, decay, 0.25) == pytest.approx(expected)
    assert decayed_lr(1e-3, 1e-5, decay, 1.0) == pytest.approx(1e-3 if decay == "constant" else 1e-5)


def test_each_optimizer_follows_its_own_decay():
    agent = _agent(actor_lr=1e-3, actor_lr_final=1e-5, critic_lr=2e-3, critic_lr_final=2e-5, lr_decay="linear",
                   alpha_lr_decay="exponential", alpha_lr=1e-3, alpha_lr_final=1e-5)
    agent.set_lr_progress(0.5)
    assert agent.actor_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 + (1e-5 - 1e-3) * 0.5)
    assert agent.critic_optimizer.param_groups[0]["lr"] == pytest.approx(2e-3 + (2e-5 - 2e-3) * 0.5)
    assert agent.alpha_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


@pytest.mark.parametrize("scale, objective, factor", [(5.0, "maximize", 5.0), (1.0, "minimize", -1.0),
                                                      (2.0, "minimize", -2.0)])
def test_reward_scale_and_objective_enter_the_target(scale, objective, factor):
    agent = _agent(reward_scale=scale, objective=objective)
    batch = _batch(terminated=1.0)  # no bootstrap: y is the transformed reward alone
    metrics = agent.update(batch).metrics
    assert metrics["train/target_q_mean"].item() == pytest.approx(factor * batch.reward.mean().item(), rel=1e-6)


def test_max_grad_norm_clips_every_network(monkeypatch):
    norms = []
    original = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    batch = _batch()._replace(reward=torch.full((16,), 1000.0))
    _agent().update(batch)
    unclipped, norms[:] = list(norms), []
    _agent(max_grad_norm=0.01).update(batch)
    assert max(unclipped) > 1.0
    assert all(n <= 0.01 * (1 + 1e-4) for n in norms) and len(norms) == 3  # critic, actor, alpha


# ---- schedule group: update cadence -----------------------------------------------------------------

def test_policy_update_every_two_changes_the_actor_only_on_every_second_update():
    agent = _agent(policy_update_every=2)
    changed = []
    for i in range(4):
        before = _params(agent.actor)
        agent.update(_batch(seed=i))
        changed.append(not _same(before, _params(agent.actor)))
    assert changed == [False, True, False, True]


def test_policy_update_catch_up_takes_the_missed_actor_steps():
    agent = _agent(policy_update_every=3, policy_update_catch_up=True)
    for i in range(6):
        agent.update(_batch(seed=i))
    assert agent.actor_optimizer.state_dict()["state"][0]["step"].item() == 6
    assert agent.critic_optimizer.state_dict()["state"][0]["step"].item() == 6


@pytest.mark.parametrize("every, tau", [(3, 1.0), (3, 0.5), (1, 0.005)])
def test_target_update_methods(every, tau):
    """Smoothing (every=1, tau<1), periodic (every=K, tau=1), periodic smoothing (every=K, tau<1)."""
    agent = _agent(target_update_every=every, tau=tau)
    for i in range(1, 7):
        before = _params(agent.target)
        agent.update(_batch(seed=i))
        after, online = _params(agent.target), _params(agent.critic)
        if i % every:
            assert _same(before, after), f"target moved at update {i}"
        else:
            for t, b, o in zip(after, before, online):
                assert torch.allclose(t, tau * o + (1 - tau) * b, atol=1e-7)
            if tau == 1.0:
                assert _same(after, online)


# ---- schedule group: through the training loop ------------------------------------------------------

def test_start_steps_and_update_after_are_separate(tmp_path, monkeypatch):
    acted, updated = [], []
    original_act, original_update = SAC.act, SAC.update
    monkeypatch.setattr(SAC, "act", lambda self, obs, deterministic=False: acted.append(deterministic) or original_act(self, obs, deterministic))
    monkeypatch.setattr(SAC, "update", lambda self, batch: updated.append(1) or original_update(self, batch))
    train_tiny(tmp_path, "schedule.total_steps=100", "schedule.start_steps=70", "schedule.update_after=20",
               "schedule.eval_every=1000")
    assert acted.count(False) == 30  # the policy acts from step 71
    assert len(updated) == 81  # updates from step 20


def test_epochs_set_the_budget_and_the_cadence(tmp_path):
    _, _, _, records, _ = train_tiny(tmp_path, "schedule.steps_per_epoch=50", "schedule.epochs=4",
                            "schedule.eval_every_epochs=1", "schedule.checkpoint_every_epochs=2")
    assert [r["step"] for r in records if "eval/return_mean" in r] == [50, 100, 150, 200]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*[0-9].pt")) == ["step_000000100.pt", "step_000000200.pt"]


def test_lr_decay_in_the_loop_by_step_and_by_epoch(tmp_path):
    _, _, _, records, _ = train_tiny(tmp_path / "step", "agent.lr_decay=linear", "agent.actor_lr=1e-3",
                            "agent.actor_lr_final=1e-4")
    logged = {r["step"]: r["train/actor_lr"] for r in records if "train/actor_lr" in r}
    # Set before the updates of step 300: progress (300 - 1) / 300.
    assert logged[300] == pytest.approx(1e-3 + (1e-4 - 1e-3) * 299 / 300)
    assert logged[150] > logged[200] > logged[250] > logged[300]

    _, _, _, records, _ = train_tiny(tmp_path / "epoch", "agent.lr_decay=exponential", "agent.lr_decay_ref=epoch",
                            "agent.actor_lr=1e-3", "agent.actor_lr_final=1e-5", "schedule.steps_per_epoch=100",
                            "schedule.log_every=25")
    logged = {r["step"]: r["train/actor_lr"] for r in records if "train/actor_lr" in r}
    assert logged[125] == logged[200] == pytest.approx(1e-3 * (1e-2) ** (1 / 3))  # constant within epoch 2
    assert logged[225] == pytest.approx(1e-3 * (1e-2) ** (2 / 3))


# ---- buffer group through the loop ------------------------------------------------------------------

def test_prioritized_replay_feeds_weights_and_updates_priorities(tmp_path, monkeypatch):
    seen = []
    original = SAC.update
    monkeypatch.setattr(SAC, "update", lambda self, batch: seen.append(batch.weights) or original(self, batch))
    _, parts, _, records, _ = train_tiny(tmp_path, "buffer=prioritized", "buffer.capacity=1000")
    assert all(w is not None and w.max().item() <= 1.0 + 1e-6 for w in seen)
    tree, capacity = parts.buffer.tree, parts.buffer.capacity
    leaves = tree.sum[tree.leaves:tree.leaves + capacity][parts.buffer.starts_transition]
    assert len(np.unique(leaves)) > 10  # TD errors replaced the initial maximal priorities
    assert parts.buffer.beta == pytest.approx(0.4 + 0.6 * 299 / 300)  # annealed toward 1


def test_n_step_batches_reach_the_agent(tmp_path, monkeypatch):
    discounts = []
    original = SAC.update
    monkeypatch.setattr(SAC, "update", lambda self, batch: discounts.append(batch.discount) or original(self, batch))
    train_tiny(tmp_path, "buffer.n_step=3", "agent.gamma=0.9")
    values = torch.cat(discounts).unique().tolist()
    assert set(np.round(values, 4)) <= {0.9, 0.81, 0.729}
    assert any(abs(v - 0.729) < 1e-4 for v in values)


def test_importance_weights_scale_the_critic_loss():
    agent = _agent(alpha=0.0)
    batch = _batch(terminated=1.0)._replace(weights=torch.linspace(0.1, 1.0, 16))
    q = agent.critic(batch.obs, batch.action).detach()
    expected = 0.5 * (batch.weights * (q - batch.reward) ** 2).mean(dim=1).sum()
    assert agent.update(batch).metrics["train/critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
