"""Discrete-action SAC (Christodoulou, 2019): each piece against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from sac_runner.algo.discrete_sac import DiscreteSAC, discrete_soft_value
from sac_runner.algo.sac import soft_bellman_target
from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.sac import SAC
from sac_runner.config import AgentConfig, ConfigError, EvalConfig
from sac_runner.run.run_config import to_run_config
from sac_runner.run.builders import make_parts
from sac_runner.run.evaluation import evaluate_checkpoint
from tests.harness import tiny_config, train_tiny

NUM_ACTIONS = 3


def _agent(**overrides) -> DiscreteSAC:
    torch.manual_seed(0)
    overrides.setdefault("hidden_sizes", [32, 32])
    return DiscreteSAC(4, NUM_ACTIONS, AgentConfig(**overrides), torch.device("cpu"))


def _batch(batch_size=16, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(batch_size, 4, generator=g), torch.randint(0, NUM_ACTIONS, (batch_size, 1), generator=g),
                 torch.randn(batch_size, generator=g), torch.randn(batch_size, 4, generator=g),
                 (torch.rand(batch_size, generator=g) < 0.3).float())


def test_discrete_soft_bellman_target_by_hand():
    reward, terminated = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 1.0])
    next_q = torch.tensor([[[1.0, 2.0], [3.0, 4.0]],    # Q'_1(s', .) for the two samples
                           [[2.0, 0.0], [5.0, 1.0]]])   # Q'_2(s', .): the minimum is [[1, 0], [3, 1]]
    prob = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    y = soft_bellman_target(reward, terminated, discrete_soft_value(next_q, prob, prob.log(), torch.tensor(0.1)), 0.9)
    # Sample 0: sum_a pi (min Q - 0.1 log pi) = 0.5 * 1 + 0.5 * 0 + 0.1 * log 2; sample 1 is terminal.
    assert y.tolist() == pytest.approx([1.0 + 0.9 * (0.5 + 0.1 * math.log(2)), 0.5])


def test_critic_loss_regresses_the_taken_actions_q_onto_the_exact_expectation():
    agent = _agent(alpha=0.5)
    batch = _batch()
    with torch.no_grad():
        q_taken = agent.critic(batch.obs).gather(-1, batch.action.view(1, -1, 1).expand(2, -1, 1)).squeeze(-1)
        next_prob, next_log_prob = agent.actor.probabilities(batch.next_obs)
        next_value = discrete_soft_value(agent.target(batch.next_obs), next_prob, next_log_prob, torch.tensor(0.5))
        y = soft_bellman_target(batch.reward, batch.terminated, next_value, agent.gamma)
    expected = 0.5 * ((q_taken - y) ** 2).mean(dim=1).sum()
    metrics = agent.update(batch).metrics
    assert metrics["train/critic_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["train/target_q_mean"].item() == pytest.approx(y.mean().item(), rel=1e-5)


def test_actor_loss_is_the_exact_expectation_over_the_policy():
    agent = _agent(alpha=0.3)
    for group in agent.critic_optimizer.param_groups:  # keep the critics fixed, so the hand value is exact
        group["lr"] = 0.0
    batch = _batch()
    with torch.no_grad():
        prob, log_prob = agent.actor.probabilities(batch.obs)
        min_q = agent.critic(batch.obs).min(dim=0).values
        expected_loss = (prob * (0.3 * log_prob - min_q)).sum(-1).mean()
        expected_entropy = -(prob * log_prob).sum(-1).mean()
    metrics = agent.update(batch).metrics
    assert metrics["train/actor_loss"].item() == pytest.approx(expected_loss.item(), rel=1e-5)
    assert metrics["train/entropy"].item() == pytest.approx(expected_entropy.item(), rel=1e-5)


def test_actor_step_moves_probability_toward_the_best_q():
    agent = _agent(alpha=0.0, actor_lr=1e-2)
    for group in agent.critic_optimizer.param_groups:
        group["lr"] = 0.0
    with torch.no_grad():  # make action 2 worth far more than the others in every state
        for critic in (agent.critic, agent.target):
            critic.net.layers[-1].bias[:, :, 2].fill_(10.0)
    batch = _batch()
    before = agent.actor.probabilities(batch.obs)[0][:, 2].mean().item()
    for _ in range(5):
        agent.update(batch)
    assert agent.actor.probabilities(batch.obs)[0][:, 2].mean().item() > before + 0.1


def test_target_entropy_default_is_a_fraction_of_log_num_actions():
    assert _agent().target_entropy == pytest.approx(0.7 * math.log(NUM_ACTIONS))
    assert _agent(target_entropy_ratio=0.5).target_entropy == pytest.approx(0.5 * math.log(NUM_ACTIONS))
    assert _agent(target_entropy=0.1).target_entropy == pytest.approx(0.1)


@pytest.mark.parametrize("ratio_or_value, direction", [({"target_entropy_ratio": 1.0}, +1),
                                                       ({"target_entropy": -1.0}, -1)])
def test_temperature_follows_the_exact_entropy(ratio_or_value, direction):
    # The entropy of 3 actions is at most log 3, never above a target of log 3, always above -1.
    agent = _agent(alpha_lr=1e-2, **ratio_or_value)
    before = agent.alpha.item()
    agent.update(_batch())
    assert math.copysign(1, agent.alpha.item() - before) == direction


def test_value_network_variant_regresses_v_onto_the_expected_soft_value():
    agent = _agent(value_network=True, alpha=0.2)
    for group in agent.critic_optimizer.param_groups:  # keep the critics fixed, so the hand value is exact
        group["lr"] = 0.0
    batch = _batch()
    with torch.no_grad():
        prob, log_prob = agent.actor.probabilities(batch.obs)
        v_target = (prob * (agent.critic(batch.obs).min(dim=0).values - 0.2 * log_prob)).sum(-1)
        expected = 0.5 * ((agent.value(batch.obs) - v_target) ** 2).mean()
        # ... and the critics' target bootstraps from the target V network.
        y = batch.reward + agent.gamma * (1 - batch.terminated) * agent.target(batch.next_obs)
    metrics = agent.update(batch).metrics
    assert metrics["train/value_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["train/target_q_mean"].item() == pytest.approx(y.mean().item(), rel=1e-5)


def test_act_is_argmax_when_deterministic_and_samples_pi_otherwise():
    agent = _agent()
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    logits = agent.actor.net(torch.as_tensor(obs))
    assert np.array_equal(agent.act(obs, deterministic=True), logits.argmax(-1).numpy())
    one = np.repeat(obs[:1], 20_000, axis=0)
    counts = np.bincount(agent.act(one), minlength=NUM_ACTIONS) / len(one)
    prob = torch.softmax(logits[0], -1).detach().numpy()
    assert np.allclose(counts, prob, atol=0.015)


# ---- selection from the action space -------------------------------------------------------------

def test_a_discrete_action_space_selects_discrete_sac():
    parts = make_parts(to_run_config(tiny_config("env.id=CartPole-v1")))
    assert type(parts.agent) is DiscreteSAC and parts.spaces.discrete
    assert parts.buffer.action.dtype == np.int64 and parts.buffer.action.shape[1] == 1
    parts.close()
    parts = make_parts(to_run_config(tiny_config("env=pendulum")))
    assert type(parts.agent) is SAC
    parts.close()


@pytest.mark.parametrize("overrides, message", [
    (("env=pendulum", "agent=sac_discrete"),
     "agent.action_space=discrete but Pendulum-v1 has continuous actions; set agent.action_space=auto"),
    (("env.id=CartPole-v1", "agent.action_space=continuous"),
     "agent.action_space=continuous but CartPole-v1 has discrete actions; .*agent=sac_discrete"),
])
def test_a_forced_action_space_that_does_not_match_the_env_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_parts(to_run_config(tiny_config(*overrides)))


# ---- end to end ------------------------------------------------------------------------------------

def test_discrete_sac_learns_the_best_arm(tmp_path):
    # BestArm pays 1 for its third action only (actions 1, 2, 3: a Discrete space starting at 1).
    _, parts, final, *_ = train_tiny(tmp_path, "env.id=BestArm-v0", "agent=sac_discrete",
                                    "agent.actor_lr=3e-3", "agent.critic_lr=3e-3", "schedule.eval_episodes=5")
    assert final["eval/return_mean"] == 1.0


@pytest.mark.parametrize("buffer", [("buffer=uniform", "buffer.n_step=3"), ("buffer=prioritized",)],
                         ids=["n_step", "prioritized"])
def test_discrete_sac_trains_with_replay_options_and_its_checkpoint_evaluates(tmp_path, buffer):
    _, parts, final, records, _ = train_tiny(tmp_path, "env.id=CartPole-v1", *buffer)
    assert np.isfinite([r["train/critic_loss"] for r in records if "train/critic_loss" in r]).all()
    evaluation = evaluate_checkpoint(EvalConfig(checkpoint=str(tmp_path), episodes=2, device="cpu"), tmp_path / "eval")
    report = evaluation.report
    assert report["env"] == "CartPole-v1" and report["return_mean"] >= 8  # CartPole pays 1 per step
