"""The building blocks of the 2022-2025 SAC variants (agent.critic_norm, actor_norm, critic_dropout,
target_network, adam_betas, weight_norm, critic/actor_architecture, resets) and the presets made of
them (agent=crossq, crossq_small, droq): Batch Renormalization by hand, CrossQ's joint forward pass, the
bootstrap without target networks, weight normalization against the plain update plus a projection,
SimBa's residual block by hand, a normalization or activation added by one registry entry (blocks.py)
reaching actor, critics, update, health checks and config, and each preset training a few hundred steps."""

import math

import numpy as np
import pytest
import torch

from sac_runner.algo import blocks, layers
from sac_runner.algo.layers import BatchRenorm, EnsembleLayerNorm, SparseDropout, batch_statistics
from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.health import hidden_activations
from sac_runner.algo.replay_buffer import Batch
from sac_runner.algo.networks import CriticEnsemble, ResidualBlock, SimbaMLP, project_to_unit_norm
from sac_runner.algo.sac import SAC, soft_bellman_target, soft_value
from sac_runner.config import AgentConfig
from sac_runner.errors import ConfigError
from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.health import HealthMonitor
from tests.harness import train_tiny

OBS, ACT, B = 3, 2, 8


# ---- Batch Renormalization, by hand ------------------------------------------------------------------

def test_batch_renorm_is_batch_norm_during_warm_up_and_moves_its_running_statistics():
    layer = BatchRenorm(2, momentum=0.1, warmup=5)
    x = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0]])  # means 3, 20; biased variances 8/3, 200
    assert not layer.training  # evaluation mode unless asked for batch statistics
    with batch_statistics(layer):
        y = layer(x)
    std = torch.tensor([math.sqrt(8 / 3 + 1e-3), math.sqrt(200 + 1e-3)])
    torch.testing.assert_close(y, (x - torch.tensor([3.0, 20.0])) / std)
    torch.testing.assert_close(layer.running_mean, torch.tensor([0.3, 2.0]))            # 0 + 0.1 (3 - 0), ...
    torch.testing.assert_close(layer.running_var, torch.tensor([1 + 0.1 * (8 / 3 - 1), 1 + 0.1 * 199]))
    assert layer.batches.item() == 1 and not layer.training
    # Evaluation mode: the running statistics, nothing updated.
    torch.testing.assert_close(layer(x), (x - layer.running_mean) / (layer.running_var + 1e-3).sqrt())
    assert layer.batches.item() == 1


def test_batch_renorm_after_warm_up_corrects_toward_the_running_statistics_with_clipped_r_and_d():
    layer = BatchRenorm(1, momentum=0.0, warmup=0, eps=0.0)  # momentum 0: running statistics stay as set
    with torch.no_grad():
        layer.running_mean.fill_(1.0)
        layer.running_var.fill_(4.0)  # sigma = 2
    x = torch.tensor([[2.0], [4.0]])  # mu_B = 3, sigma_B = 1
    with batch_statistics(layer):
        y = layer(x)
    # r = sigma_B / sigma = 0.5 (inside [1/3, 3]); d = (mu_B - mu) / sigma = 1 (inside [-5, 5])
    torch.testing.assert_close(y, (x - 3.0) / 1.0 * 0.5 + 1.0)  # = (x - mu) / sigma: the running statistics' view
    torch.testing.assert_close(y, (x - 1.0) / 2.0)
    with torch.no_grad():
        layer.running_mean.fill_(-100.0)
        layer.running_var.fill_(1e-4)  # r = 1 / 0.01 = 100 -> 3; d = 103 / 0.01 -> 5
    with batch_statistics(layer):
        torch.testing.assert_close(layer(x), (x - 3.0) * 3.0 + 5.0)


def test_batch_renorm_r_and_d_carry_no_gradient():
    layer = BatchRenorm(1, momentum=0.0, warmup=0, eps=0.0)
    with torch.no_grad():
        layer.running_mean.fill_(1.0)
        layer.running_var.fill_(4.0)
    x = torch.tensor([[2.0], [4.0], [9.0]], requires_grad=True)
    with batch_statistics(layer):
        (layer(x) * torch.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    # With r and d constants, the gradient is batch norm's, times r (d adds a constant).
    reference = x.detach().clone().requires_grad_(True)
    mean, std = reference.mean(0), reference.var(0, unbiased=False).sqrt()
    r = (std / 2.0).detach()
    (((reference - mean) / std * r) * torch.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)


def test_ensemble_members_keep_their_own_statistics():
    layer = BatchRenorm(2, members=3)
    x = torch.randn(3, 16, 2) + torch.tensor([0.0, 10.0, -10.0]).view(3, 1, 1)
    with batch_statistics(layer):
        layer(x)
    torch.testing.assert_close(layer.running_mean, 0.01 * x.mean(dim=1, keepdim=True))
    norm = EnsembleLayerNorm(2, members=3)
    with torch.no_grad():
        norm.weight[1].fill_(2.0)
    out = norm(x)
    torch.testing.assert_close(out[1], 2 * torch.nn.functional.layer_norm(x[1], (2,)))


# ---- CrossQ in the update ----------------------------------------------------------------------------

def _batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(B, OBS, generator=g) + 2.0, torch.rand(B, ACT, generator=g) * 2 - 1,
                 torch.randn(B, generator=g), torch.randn(B, OBS, generator=g) - 1.0, torch.zeros(B))


# ---- Dropout drawn from its gaps: nn.Dropout's distribution ---------------------------------------------

def _masks(p: float, draws: int, units: int = 40) -> torch.Tensor:
    """`draws` masks of `units` units, one call each (each call starts its Bernoulli process afresh)."""
    torch.manual_seed(0)
    layer = SparseDropout(p)
    ones = torch.ones(units)
    return torch.stack([layer(ones) for _ in range(draws)])


def _assert_bernoulli(masks: torch.Tensor, p: float):
    draws, units = masks.shape
    dropped = masks == 0
    assert torch.all(dropped | (masks == 1 / (1 - p)))  # kept units scaled as nn.Dropout scales them
    frequency, sigma = dropped.double().mean(0), math.sqrt(p * (1 - p) / draws)
    assert torch.all((frequency - p).abs() < 5 * sigma), frequency  # every unit, the first one too
    both = (dropped[:, :-1] & dropped[:, 1:]).double().mean(0)  # neighbours are independent: p^2
    assert torch.all((both - p * p).abs() < 5 * math.sqrt(p * p * (1 - p * p) / draws)), both
    counts = dropped.sum(1).double()
    assert counts.var().item() == pytest.approx(units * p * (1 - p), rel=0.1)  # Binomial(units, p)


def test_sparse_dropout_draws_each_unit_independently_with_probability_p():
    _assert_bernoulli(_masks(0.1, 20_000), 0.1)
    _assert_bernoulli(_masks(0.01, 20_000, units=400), 0.01)
    one_long_process = _masks(0.1, 1, units=800_000).view(20_000, 40)
    _assert_bernoulli(one_long_process, 0.1)


def test_sparse_dropout_continues_where_its_gaps_fell_short(monkeypatch):
    monkeypatch.setattr(layers, "_gaps_to_draw", lambda units, p: 1)  # a round per dropped unit
    _assert_bernoulli(_masks(0.1, 5_000), 0.1)


def test_sparse_dropout_passes_gradients_through_its_mask_and_is_nn_dropout_elsewhere():
    x = torch.randn(64, 8, requires_grad=True)
    layer = SparseDropout(0.1)
    y = layer(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach())
    layer.eval()
    assert layer(x) is x
    layer.train()
    for p in (0.0, layers.SPARSE_BELOW, 0.9):  # no draw, or nn.Dropout's own
        torch.manual_seed(1)
        ours = SparseDropout(p)(x)
        torch.manual_seed(1)
        torch.testing.assert_close(ours, torch.nn.Dropout(p)(x))


def _crossq(**options) -> SAC:
    torch.manual_seed(0)
    cfg = AgentConfig(hidden_sizes=[16], critic_norm="batch_renorm", actor_norm="batch_renorm", target_network=False,
                      batch_renorm_momentum=0.5, **options)
    return SAC(OBS, ACT, cfg, torch.device("cpu"))


@pytest.mark.parametrize("actor_q", ["min", "mean"])
def test_the_actor_maximizes_the_min_or_the_mean_of_the_critics(actor_q):
    def reduce(q: torch.Tensor) -> torch.Tensor:  # q[0], q[1]: the two critics
        return torch.minimum(q[0], q[1]) if actor_q == "min" else (q[0] + q[1]) / 2

    obs, alpha = torch.randn(B, OBS), torch.tensor(0.2)
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16], actor_q=actor_q), torch.device("cpu"))
    torch.manual_seed(1)
    loss, _ = agent._actor_loss(obs, alpha)
    torch.manual_seed(1)
    action, log_prob = agent.actor.sample(obs)
    torch.testing.assert_close(loss, (alpha * log_prob - reduce(agent.critic(obs, action))).mean())

    torch.manual_seed(0)
    discrete = DiscreteSAC(OBS, 4, AgentConfig(hidden_sizes=[16], actor_q=actor_q), torch.device("cpu"))
    loss, _ = discrete._actor_loss(obs, alpha)
    prob, log_prob = discrete.actor.probabilities(obs)
    torch.testing.assert_close(loss, (prob * (alpha * log_prob - reduce(discrete.critic(obs)))).sum(-1).mean())


def test_the_joint_forward_pass_normalizes_current_and_next_pairs_with_one_statistic():
    """One update: the critics' first BatchRenorm saw [s; s'] in one batch (its running mean moved to
    momentum x their joint mean), once; the actor's saw s, once (the actor's loss), not s' (the next
    actions are drawn with running statistics); the actor's loss left the critics' statistics alone."""
    agent, batch = _crossq(), _batch()
    agent.update(batch)
    critic_input = agent.critic.net.pre_norms[0]
    joint_obs_mean = torch.cat([batch.obs, batch.next_obs]).mean(0)
    torch.testing.assert_close(critic_input.running_mean[:, 0, :OBS], (0.5 * joint_obs_mean).expand(2, OBS))
    assert critic_input.batches.item() == 1
    actor_input = agent.actor.net[0]
    torch.testing.assert_close(actor_input.running_mean, 0.5 * batch.obs.mean(0))
    assert actor_input.batches.item() == 1
    assert not any(m.training for m in agent.critic.modules() if isinstance(m, BatchRenorm))


def test_without_target_networks_the_bootstrap_is_the_online_critic_with_gradients_stopped():
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16], target_network=False, alpha=0.5), torch.device("cpu"))
    assert agent.target is agent.critic and agent._target_params == []
    batch = _batch(1)
    torch.manual_seed(7)
    with torch.no_grad():
        next_action, next_log_prob = agent.actor.sample(batch.next_obs)
        y = soft_bellman_target(batch.reward, batch.terminated,
                                soft_value(agent.critic(batch.next_obs, next_action), next_log_prob, torch.tensor(0.5)),
                                agent.gamma)
        expected = 0.5 * ((agent.critic(batch.obs, batch.action) - y) ** 2).mean(dim=1).sum()
    torch.manual_seed(7)
    assert agent.update(batch).metrics["train/critic_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_adam_betas_and_batch_renorm_settings_reach_every_optimizer_and_layer():
    agent = _crossq(adam_betas=[0.5, 0.999], batch_renorm_warmup=7)
    assert {group["betas"] for o in agent.optimizers.values() for group in o.param_groups} == {(0.5, 0.999)}
    layers = [m for net in (agent.actor, agent.critic) for m in net.modules() if isinstance(m, BatchRenorm)]
    assert len(layers) == 4 and {(m.warmup, m.momentum) for m in layers} == {(7, 0.5)}  # before each Linear


# ---- weight normalization ----------------------------------------------------------------------------

def test_the_projection_puts_each_units_incoming_weights_on_the_unit_sphere():
    linear_weight = torch.tensor([[3.0, 4.0], [0.0, 2.0]])      # nn.Linear: (out, in)
    ensemble_weight = torch.tensor([[[3.0, 0.0], [4.0, 2.0]]])  # EnsembleLinear: (members, in, out), same units
    project_to_unit_norm([linear_weight, ensemble_weight])
    assert torch.equal(linear_weight, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    assert torch.equal(ensemble_weight, linear_weight.T.unsqueeze(0))


def test_weight_norm_is_the_plain_update_with_the_hidden_weights_projected_after_each_optimizer_step():
    """The reference: a plain agent whose critic optimizer projects the critics' hidden weights (by hand,
    not the output layer's) after each of its steps, from projected initial weights. The actor, not
    named, is left alone; targets follow the projected critics."""
    options = dict(hidden_sizes=[16, 16], critic_norm="layer", policy_update_every=2)
    torch.manual_seed(0)
    normalized = SAC(OBS, ACT, AgentConfig(weight_norm=["critic"], **options), torch.device("cpu"))
    torch.manual_seed(0)
    reference = SAC(OBS, ACT, AgentConfig(**options), torch.device("cpu"))
    hidden = [layer.weight for layer in reference.critic.net.layers[:2]]

    def project_by_hand():
        with torch.no_grad():
            for weight in hidden:  # (members, in, out): each unit's incoming weights are a column
                weight.copy_(weight / torch.linalg.vector_norm(weight, dim=1, keepdim=True))

    project_by_hand()
    reference.target.load_state_dict(reference.critic.state_dict())
    plain_step = reference.critic_optimizer.step
    reference.critic_optimizer.step = lambda: (plain_step(), project_by_hand())
    for seed in range(4):
        for agent in (normalized, reference):
            torch.manual_seed(seed)
            agent.update(_batch(seed))
    for network in ("critic", "target", "actor"):
        for name, value in getattr(reference, network).state_dict().items():
            torch.testing.assert_close(getattr(normalized, network).state_dict()[name], value, msg=f"{network} {name}")
    norms = [torch.linalg.vector_norm(layer.weight, dim=1) for layer in normalized.critic.net.layers]
    torch.testing.assert_close(torch.stack(norms[:2]), torch.ones(2, 2, 16))
    assert not torch.allclose(norms[2], torch.ones_like(norms[2]))  # the output layer is free
    assert not torch.allclose(torch.linalg.vector_norm(normalized.actor.net[0].weight, dim=1), torch.ones(16))


def test_a_reset_of_a_weight_normalized_network_starts_from_unit_norm_weights():
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16], weight_norm=["actor"]), torch.device("cpu"))
    agent.update(_batch(0))
    agent.reset(["actor"])
    torch.testing.assert_close(torch.linalg.vector_norm(agent.actor.net[0].weight, dim=1), torch.ones(16))


# ---- SimBa residual blocks ---------------------------------------------------------------------------

def test_a_simba_block_adds_a_layer_normalized_two_layer_mlp_to_its_input():
    torch.manual_seed(0)
    block, x = ResidualBlock(3, "relu", None), torch.randn(4, 3)
    torch.nn.init.normal_(block.norm.weight)  # non-trivial LayerNorm gain and bias
    torch.nn.init.normal_(block.norm.bias)
    normalized = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    normalized = normalized * block.norm.weight + block.norm.bias
    inner = torch.clamp(normalized @ block.expand.weight.T + block.expand.bias, min=0)
    assert block.expand.weight.shape == (12, 3)  # 4x the width inside
    torch.testing.assert_close(block(x), x + inner @ block.contract.weight.T + block.contract.bias)


def test_simba_ensemble_members_are_independent_networks_of_the_same_shape():
    torch.manual_seed(0)
    ensemble, single, x = SimbaMLP(5, [8, 8], 1, members=2), SimbaMLP(5, [8, 8], 1), torch.randn(6, 5)
    with torch.no_grad():
        for (name, theirs), mine in zip(ensemble.named_parameters(), single.parameters()):
            # member 1's (in, out) weights, (1, out) biases and (1, F) LayerNorm parameters
            mine.copy_(theirs[1].T if mine.dim() == 2 else theirs[1, 0])
    assert len(single.blocks) == 2
    torch.testing.assert_close(ensemble(x)[1], single(x))


@pytest.mark.parametrize("env", ["pendulum", "cartpole"])
def test_simba_networks_with_weight_norm_train_and_save_unit_norm_weights(tmp_path, env):
    run = train_tiny(tmp_path, f"env={env}", "agent.critic_architecture=simba", "agent.actor_architecture=simba",
                     "agent.critic_hidden_sizes=[32,32]", "agent.actor_hidden_sizes=[16]", "env.normalize_obs=true",
                     "agent.weight_norm=[critic]", *SHORT)
    assert np.isfinite(run.final["eval/return_mean"]) and run.parts.agent.num_updates >= 200
    saved = load_checkpoint(tmp_path).agent["critic"]
    for name in ("net.embed.weight", "net.blocks.0.expand.weight", "net.blocks.1.contract.weight"):
        members, _, units = saved[name].shape
        torch.testing.assert_close(torch.linalg.vector_norm(saved[name], dim=1), torch.ones(members, units), msg=name)


# ---- the registry: a building block is one entry -----------------------------------------------------

def _rms_norm(features: int, members: int | None, options: blocks.NormOptions) -> torch.nn.Module:
    return torch.nn.RMSNorm(features)  # one gain shared by the members: enough to see where the entry goes


@pytest.fixture(params=[False, True], ids=["after_linear", "before_linear_batch_statistics"])
def rms_norm(request, monkeypatch) -> blocks.Normalization:
    """A throwaway normalization registered as "throwaway_rms" for one test (monkeypatch takes it out after)."""
    spec = blocks.Normalization(_rms_norm, before_linear=request.param, batch_statistics=request.param)
    monkeypatch.setitem(blocks.NORMS, "throwaway_rms", spec)
    return spec


def _positions(modules: list[torch.nn.Module], kind: type) -> list[int]:
    return [k for k, module in enumerate(modules) if isinstance(module, kind)]


def test_a_normalization_registered_once_reaches_actor_critics_update_and_health_checks(rms_norm):
    cfg = AgentConfig(hidden_sizes=[16, 16], critic_norm="throwaway_rms", actor_norm="throwaway_rms",
                      target_network=not rms_norm.batch_statistics)
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, cfg, torch.device("cpu"))
    actor, critic = list(agent.actor.net), agent.critic.net
    norms, linears = _positions(actor, torch.nn.RMSNorm), _positions(actor, torch.nn.Linear)
    if rms_norm.before_linear:  # before every Linear, the output layer's too
        assert norms == [k - 1 for k in linears]
        assert len(critic.pre_norms) == 3 and not hasattr(critic, "post_norms")
    else:  # after each hidden Linear, before its activation
        assert norms == [k + 1 for k in linears[:-1]] and all(isinstance(actor[k + 1], torch.nn.ReLU) for k in norms)
        assert len(critic.post_norms) == 2 and not hasattr(critic, "pre_norms")
    assert len(_positions(list(critic.modules()), torch.nn.RMSNorm)) == len(norms)
    assert agent.joint_forward == rms_norm.batch_statistics
    # A batch-statistics norm acts on running statistics (evaluation mode) except where the update asks.
    rms_layers = [m for m in critic.modules() if isinstance(m, torch.nn.RMSNorm)]
    assert not any(layer.training for layer in rms_layers) == rms_norm.batch_statistics
    with batch_statistics(critic):
        assert all(layer.training for layer in rms_layers)
    assert HealthMonitor._scale_free(agent, "actor") and HealthMonitor._scale_free(agent, "critic")
    assert torch.isfinite(agent.update(_batch()).metrics["train/critic_loss"])


def test_the_config_takes_the_names_and_what_they_need_from_the_registry(rms_norm, monkeypatch):
    names = ", ".join(blocks.NORMS)
    assert names.endswith("throwaway_rms")
    with pytest.raises(ConfigError, match=f"agent.actor_norm must be one of {names}, got 'rms2'"):
        AgentConfig(actor_norm="rms2")
    if rms_norm.batch_statistics:  # a joint forward pass: no target critics
        with pytest.raises(ConfigError, match="agent.critic_norm is throwaway_rms, whose joint forward pass"):
            AgentConfig(critic_norm="throwaway_rms")
    monkeypatch.setitem(blocks.ACTIVATIONS, "softsign", torch.nn.Softsign)
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16, 16], activation="softsign"), torch.device("cpu"))
    assert isinstance(agent.critic.net.activation, torch.nn.Softsign)
    assert len(_positions(list(agent.actor.net), torch.nn.Softsign)) == 2
    assert len(hidden_activations(agent.actor.net, torch.randn(B, OBS))) == 2  # the health checks see its units
    with pytest.raises(ConfigError, match="agent.activation must be one of relu, .*, softsign, got 'swish'"):
        AgentConfig(activation="swish")


# ---- the presets -------------------------------------------------------------------------------------

SHORT = ("schedule.total_steps=300", "schedule.start_steps=100", "schedule.update_after=100",
         "schedule.eval_every=300", "schedule.checkpoint_every=300")


@pytest.mark.parametrize("preset, narrow", [
    ("crossq", ("agent.critic_hidden_sizes=[32,32]", "agent.actor_hidden_sizes=[16]", "agent.batch_renorm_warmup=50")),
    ("crossq_small", ("agent.critic_hidden_sizes=[32,32]", "agent.actor_hidden_sizes=[16]")),
    ("droq", ("agent.hidden_sizes=[16]", "schedule.gradient_steps=3", "agent.policy_update_every=3")),
])
def test_each_preset_trains_a_few_hundred_steps_and_saves_its_normalization(tmp_path, preset, narrow):
    run = train_tiny(tmp_path, f"agent={preset}", *narrow, *SHORT)
    assert np.isfinite(run.final["eval/return_mean"]) and run.parts.agent.num_updates >= 200
    saved = load_checkpoint(tmp_path).agent
    if preset.startswith("crossq"):  # the running statistics are saved with the networks
        assert saved["critic"]["net.pre_norms.0.running_mean"].abs().sum() > 0
        assert saved["actor"]["net.0.batches"].item() > 0
    else:
        assert "net.post_norms.0.weight" in saved["critic"]
        assert [m.p for m in run.parts.agent.critic.modules() if isinstance(m, torch.nn.Dropout)] == [0.01]
        assert run.parts.agent.cfg.actor_q == "mean"  # the paper's actor loss (Algorithm 2, line 10)


def test_crossq_on_discrete_actions_trains(tmp_path):
    run = train_tiny(tmp_path, "agent=crossq", "env=cartpole", "agent.critic_hidden_sizes=[32]",
                     "agent.actor_hidden_sizes=[16]", *SHORT)
    assert np.isfinite(run.final["eval/return_mean"]) and run.parts.agent.num_updates >= 200


# ---- resets ------------------------------------------------------------------------------------------

def test_a_reset_reinitializes_exactly_the_named_networks_clears_their_optimizer_and_syncs_the_target():
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16]), torch.device("cpu"))
    for seed in range(2):
        agent.update(_batch(seed))
    actor_before = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    torch.manual_seed(5)
    agent.reset(["critic"])
    torch.manual_seed(5)
    fresh = CriticEnsemble(OBS, ACT, [16], 2)
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(agent.critic.state_dict()[name], value, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(agent.target.state_dict()[name], value, rtol=0, atol=0, msg=f"target {name}")
    for name, value in actor_before.items():
        torch.testing.assert_close(agent.actor.state_dict()[name], value, rtol=0, atol=0)
    assert len(agent.critic_optimizer.state) == 0 and len(agent.actor_optimizer.state) > 0


def test_resets_come_every_reset_every_gradient_steps():
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, AgentConfig(hidden_sizes=[16], reset_every=2, reset_networks=["actor"]), torch.device("cpu"))
    agent.update(_batch(0))
    assert len(agent.actor_optimizer.state) > 0
    agent.update(_batch(1))  # the second gradient step ends with a reset of the actor
    assert len(agent.actor_optimizer.state) == 0 and len(agent.critic_optimizer.state) > 0
