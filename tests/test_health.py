"""Health measurements (issue 17) against hand-built cases with known answers, the alerts they raise,
the collapse rule, and a run's health records: training is the same with them off, alerts reach the
console, alerts.jsonl and the offline W&B run."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import tests.toy_envs  # noqa: F401  (registers Countdown-v0)
from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.health import (dormant_fraction, effective_learning_rate, gradient_norm, hidden_activations,
                                    parameter_norm, soft_returns, value_bias)
from sac_runner.algo.networks import mlp
from sac_runner.algo.sac import SAC
from sac_runner.algo.replay_buffer import Batch
from sac_runner.config import AgentConfig, HealthConfig
from sac_runner.run.run_config import to_run_config
from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.console import console
from sac_runner.run.health import Alert, HealthMonitor
from sac_runner.run.run_dir import RunDir
from sac_runner.run.sweep import SweepSummary
from sac_runner.run.training import print_summary
from tests.harness import compose, tiny_config, train_tiny

GAMMA = 0.9


# ---- the measurements, by hand -------------------------------------------------------------------------

def test_soft_return_adds_the_entropy_bonus_of_the_following_actions_and_the_bootstrap():
    # G_0 = r_0 + g (r_1 - a lp_1) + g^2 (r_2 - a lp_2) + g^3 V = 1 + 0.9 * 2.1 + 0.81 * 2.8 + 0.729 * 10
    returns = soft_returns(np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0]), alpha=0.1, gamma=GAMMA,
                           bootstrap=10.0)
    np.testing.assert_allclose(returns, [12.448, 2 + 0.9 * 11.8, 3 + 0.9 * 10])


def _agent_whose_critics_say(q: float, agent_class=SAC, obs_dim: int = 1, actions: int = 1, **options) -> SAC:
    """A fixed-alpha agent whose every critic returns `q` for every state and action."""
    torch.manual_seed(0)
    agent = agent_class(obs_dim, actions, AgentConfig(hidden_sizes=[8], gamma=GAMMA, alpha=0.0, **options),
                        torch.device("cpu"))
    output = agent.critic.net.layers[-1]
    with torch.no_grad():
        output.weight.zero_()
        output.bias.fill_(q)
    return agent


def test_a_critic_overestimating_by_a_known_amount_shows_that_bias():
    # Countdown: reward 1 for 3 steps, then terminates: G = 2.71, 1.9, 1 (mean 1.87); Q = 5.61 everywhere.
    agent, monitor = _agent_whose_critics_say(5.61), HealthMonitor(HealthConfig(bias_episodes=2), seed=0)
    measured = monitor._value_bias(agent, gym.make("Countdown-v0"))
    assert measured["health/value_bias"] == pytest.approx(5.61 - 1.87)
    assert measured["health/value_bias_relative"] == pytest.approx(2.0)
    assert measured["health/soft_return_mean"] == pytest.approx(1.87)


def test_an_episode_cut_by_a_time_limit_is_bootstrapped_so_a_consistent_critic_shows_no_bias():
    # Reward 1 for ever, cut after 4 steps: Q = 1 / (1 - 0.9) = 10 is exact, and so is every G_t = 1 + 0.9 * 10.
    agent, monitor = _agent_whose_critics_say(10.0), HealthMonitor(HealthConfig(), seed=0)
    measured = monitor._value_bias(agent, gym.make("CountdownTruncated-v0"))
    assert measured["health/value_bias"] == pytest.approx(0.0, abs=1e-5)
    assert value_bias(np.array([3.0, 5.0]), np.array([-2.0, -2.0])) == (6.0, 3.0)  # relative to mean |G|


def test_units_forced_dormant_are_counted_against_the_layers_mean_activation():
    layer = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with torch.no_grad():  # units' mean activations on the batch below: 1, 1, 0.01, 0 (mean 0.5025)
        layer[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.01, 0.0], [0.0, 0.0]]))
        layer[0].bias.zero_()
    activations = hidden_activations(layer, torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    assert len(activations) == 1
    # normalized scores 1.99, 1.99, 0.0199, 0: two at most 0.025, one at most 0.01
    assert dormant_fraction(activations, tau=0.025) == 0.5
    assert dormant_fraction(activations, tau=0.01) == 0.25


def test_dormant_units_of_every_hidden_layer_and_ensemble_member_are_counted():
    torch.manual_seed(0)
    network = mlp(3, [16, 16], 2)
    with torch.no_grad():
        network[0].weight[:4].zero_()   # 4 of the first layer's 16 units always output 0
        network[0].bias[:4].fill_(-1.0)
    x = torch.randn(512, 3)
    live = [(h.abs().mean(0) / h.abs().mean()).gt(0.025).sum().item() for h in hidden_activations(network, x)]
    assert len(live) == 2 and live[0] <= 12
    assert dormant_fraction(hidden_activations(network, x), 0.025) >= 4 / 32  # the 4 silenced units at least
    assert dormant_fraction(hidden_activations(network, x), 0.025) == pytest.approx(1 - sum(live) / 32)
    ensemble = torch.stack([torch.zeros(5, 4), torch.ones(5, 4)])   # (members, B, H): member 0 all dormant
    assert dormant_fraction([ensemble], 0.025) == 0.5


def test_entropy_of_a_uniform_policy_over_four_actions_is_log_4():
    agent = _agent_whose_critics_say(0.0, DiscreteSAC, obs_dim=3, actions=4)
    output = agent.actor.net[-1]
    with torch.no_grad():
        output.weight.zero_()
        output.bias.zero_()
    assert float(agent.entropy(torch.randn(7, 3))) == pytest.approx(math.log(4))


def test_norms_and_effective_learning_rate_by_hand():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
        layer.bias.copy_(torch.tensor([0.0, 1.0]))
    assert parameter_norm(layer) == pytest.approx(math.sqrt(9 + 16 + 4 + 1))
    assert math.isnan(gradient_norm(layer))  # no step yet
    layer(torch.tensor([[1.0, 1.0]])).sum().backward()  # d/dW = [[1, 1], [1, 1]], d/db = [1, 1]
    assert gradient_norm(layer) == pytest.approx(math.sqrt(6))
    # units' squared norms 25 and 4: lr / 25 and lr / 4, averaged
    assert effective_learning_rate(0.1, [layer.weight]) == pytest.approx((0.1 / 25 + 0.1 / 4) / 2)


# ---- alerts and the collapse rule ----------------------------------------------------------------------

def _health(**values) -> dict[str, float]:
    return {"health/value_bias_relative": values.get("bias", 0.0), "health/dormant_critic": values.get("dormant", 0.0),
            "health/entropy": values.get("entropy", -1.0), "health/target_entropy": -1.0}


def test_an_alert_comes_after_patience_evaluations_past_its_threshold_once_and_again_after_recovering():
    monitor = HealthMonitor(HealthConfig(patience=3), seed=0)
    raised = [monitor.check(step, _health(bias=bias), learns_alpha=True)
              for step, bias in enumerate([0.6, 0.8, 3.4, 4.0, 0.1, 0.7, 0.9, 0.8])]
    assert [len(alerts) for alerts in raised] == [0, 0, 1, 0, 0, 0, 0, 1]
    assert raised[2][0].text.startswith("value bias +340% of the return scale for 3 evaluations and rising: "
                                        "the critic overestimates; try a lower agent.critic_lr")
    assert "rising" not in raised[7][0].text  # 0.7, 0.9, 0.8


def test_no_overestimation_alert_while_the_bias_falls_as_an_untrained_critic_catches_up():
    # Pendulum's first evaluations at 1000-step spacing: Q still near 0 against returns of -300..-440.
    monitor = HealthMonitor(HealthConfig(patience=2), seed=0)
    raised = [monitor.check(step, _health(bias=bias), learns_alpha=True)
              for step, bias in enumerate([1.0, 0.94, 0.86, 0.84, 0.9])]
    assert [len(alerts) for alerts in raised] == [0, 0, 0, 0, 1]  # raised once it stops falling (0.9 >= 0.84)


def test_dormant_and_entropy_alerts_name_the_network_and_the_fix():
    monitor = HealthMonitor(HealthConfig(patience=1), seed=0)
    alerts = monitor.check(10, _health(dormant=0.45, entropy=-3.5), learns_alpha=False)
    assert [a.kind for a in alerts] == ["dormant_critic", "entropy"]
    assert alerts[0].text.startswith("45% of the critic's hidden units are dormant (tau 0.025) for 1 evaluation")
    assert "agent.reset_networks=[critic]" in alerts[0].text
    assert "policy entropy -3.50 is 2.50 below its target -1.00" in alerts[1].text and "agent.alpha=auto" in alerts[1].text


def test_a_collapse_needs_the_return_far_below_its_best_for_patience_evaluations_and_an_alert():
    monitor = HealthMonitor(HealthConfig(patience=2, collapse_drop=0.5), seed=0)
    # first -1000, best -100: far below means under -550.
    assert monitor.collapsed(1, -1000.0, -1000.0, 1) is None
    assert monitor.collapsed(2, -600.0, -100.0, 2) is None
    assert monitor.collapsed(3, -600.0, -100.0, 2) is None  # 2 evaluations below, but no alert
    monitor.check(4, _health(dormant=0.9), learns_alpha=True)  # patience 2: not yet
    assert monitor.collapsed(4, -700.0, -100.0, 2) is None
    monitor.check(5, _health(dormant=0.9), learns_alpha=True)  # alert raised at step 5
    collapse = monitor.collapsed(5, -700.0, -100.0, 2)
    assert collapse is not None and collapse.text.startswith(
        "evaluation return -700.0 below -550.0 (best -100.0 at step 2) for 2 evaluations")
    assert monitor.collapsed(6, -500.0, -100.0, 2) is None  # back above the line
    # A run that never learned (best within 10% of its first return) has nothing to collapse from.
    never = HealthMonitor(HealthConfig(patience=1), seed=0)
    never.check(1, _health(dormant=0.9), learns_alpha=True)
    assert never.collapsed(1, -1480.0, -1480.0, 1) is None and never.collapsed(2, -1700.0, -1470.0, 1) is None


def _monitor(*overrides: str) -> HealthMonitor:
    """A monitor configured through the health.* keys, as sac-train builds it."""
    return HealthMonitor(to_run_config(compose(*overrides)).health, seed=0)


class _RecordingBuffer:
    """A buffer of random one-dimensional transitions that records the batch sizes asked of it."""

    def __init__(self):
        self.sizes = []

    def __len__(self) -> int:
        return 1000

    def inspection_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        self.sizes.append(batch_size)
        g = torch.Generator().manual_seed(int(rng.integers(1000)))
        return Batch(torch.randn(batch_size, 1, generator=g), torch.rand(batch_size, 1, generator=g) * 2 - 1,
                     torch.randn(batch_size, generator=g), torch.randn(batch_size, 1, generator=g),
                     torch.zeros(batch_size))


def test_each_health_key_takes_effect():
    class CountingResets(gym.Wrapper):
        resets = 0

        def reset(self, **kwargs):
            CountingResets.resets += 1
            return self.env.reset(**kwargs)

    agent = _agent_whose_critics_say(1.0)
    _monitor("health.bias_episodes=3")._value_bias(agent, CountingResets(gym.make("Countdown-v0")))
    assert CountingResets.resets == 3
    buffer = _RecordingBuffer()
    strict, loose = _monitor("health.batch_size=17")._on_a_batch(agent, buffer), \
        _monitor("health.batch_size=17", "health.dormant_tau=2.0")._on_a_batch(agent, buffer)
    assert buffer.sizes == [17, 17] and loose["health/dormant_critic"] > strict["health/dormant_critic"]
    past = _health(bias=0.6, dormant=0.45, entropy=-2.5)  # entropy 1.5 below its target -1
    assert {a.kind for a in _monitor("health.patience=1").check(1, past, True)} == {
        "overestimation", "dormant_critic", "entropy"}
    assert _monitor("health.patience=1", "health.value_bias_max=1", "health.dormant_max=0.5",
                    "health.entropy_margin=2").check(1, past, True) == []
    assert _monitor().check(1, past, True) == []  # patience 3: not yet
    for drop, collapses in ((0.5, False), (0.2, True)):  # first -1000, best -100: the line is -550 or -280
        monitor = _monitor("health.patience=1", f"health.collapse_drop={drop}")
        monitor.collapsed(1, -1000.0, -1000.0, 1)
        monitor.check(2, _health(dormant=0.9), True)
        assert (monitor.collapsed(2, -400.0, -100.0, 1) is not None) == collapses


def test_effective_learning_rates_are_logged_for_scale_invariant_networks_only():
    agent = _agent_whose_critics_say(1.0, critic_norm="layer")
    measured = HealthMonitor(HealthConfig(), seed=0).measure(agent, _RecordingBuffer(), gym.make("Countdown-v0"))
    assert measured["health/effective_lr_critic"] > 0 and "health/effective_lr_actor" not in measured
    assert {"health/param_norm_actor", "health/grad_norm_critic", "health/td_error_p99"} <= measured.keys()


# ---- in a run ---------------------------------------------------------------------------------------

SHORT = ("schedule.total_steps=600", "schedule.start_steps=100", "schedule.update_after=100",
         "schedule.eval_every=200", "schedule.eval_episodes=1", "schedule.checkpoint_every=600")


def test_training_is_the_same_with_the_measurements_off(tmp_path):
    on = train_tiny(tmp_path / "on", *SHORT)
    off = train_tiny(tmp_path / "off", *SHORT, "health.enabled=false")
    strip = lambda records: [{k: v for k, v in r.items() if not k.startswith(("health/", "time/"))}  # noqa: E731
                             for r in records]
    assert strip(on.records) == strip(off.records)
    assert any("health/value_bias" in r and "health/dormant_critic" in r and "health/td_error_p99" in r
               for r in on.records)
    assert not any(k.startswith("health/") for r in off.records for k in r)


def test_an_alert_reaches_the_console_alerts_jsonl_and_the_offline_wandb_run(tmp_path, caplog):
    run = train_tiny(tmp_path, *SHORT, "health.patience=1", "health.dormant_max=0.0001", "logging.mode=offline")
    alerts = [json.loads(line) for line in RunDir(tmp_path).alerts.read_text().splitlines()]
    assert alerts[0]["step"] == 200 and {"dormant_critic", "dormant_actor"} & {a["kind"] for a in alerts}
    assert "hidden units are dormant" in caplog.text
    assert run.records[-1]["health/alerts"] == len(alerts)
    offline = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1
    # Once seen failing on a loaded machine with the file holding its header only: say what W&B reported.
    wandb_notes = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage() or r.name.startswith("wandb")]
    assert b"sac-runner: " in offline[0].read_bytes(), (offline[0].stat().st_size, wandb_notes)


def test_rollback_restores_the_best_agent_keeps_the_buffer_and_the_step_and_lowers_the_learning_rates(tmp_path):
    run = train_tiny(tmp_path, *SHORT, "health.on_collapse=rollback", "health.rollback_lr_factor=0.25",
                     "agent.critic_lr=1e-3", "agent.actor_lr=2e-3")
    trainer, agent = run.trainer, run.parts.agent
    best = load_checkpoint(RunDir(tmp_path).best_checkpoint).agent
    step, updates, stored = trainer.state.step, agent.num_updates, len(run.parts.buffer)
    with torch.no_grad():  # the agent since its best evaluation: other weights, other Adam moments, other alpha
        for network in (agent.actor, agent.critic, agent.target):
            for p in network.parameters():
                p.add_(1.0)
        for state in agent.critic_optimizer.state.values():
            state["exp_avg"].add_(1.0)
        agent.log_alpha.add_(1.0)
    trainer.act_on_collapse(Alert(step, "collapse", "run collapsing", "evaluation return ..."))
    for network in ("actor", "critic", "target"):
        for key, value in getattr(agent, network).state_dict().items():
            assert torch.equal(value, best[network][key]), f"{network}.{key}"
    assert torch.equal(agent.log_alpha.detach(), best["log_alpha"])
    restored = agent.critic_optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(restored, best["critic_optimizer"]["state"][0]["exp_avg"])
    assert (trainer.state.step, agent.num_updates, len(run.parts.buffer)) == (step, updates, stored)
    assert trainer.health.rollbacks == 1
    assert agent.learning_rates() == pytest.approx({"actor": 5e-4, "critic": 2.5e-4, "alpha": 0.25 * 3e-4})
    record = json.loads(RunDir(tmp_path).alerts.read_text().splitlines()[-1])
    assert record["kind"] == "rollback" and "rolled back to the best agent (checkpoints/best.pt, step" in record["text"]
    assert "learning rates now x0.25 of the configured ones" in record["text"]
    trainer.act_on_collapse(Alert(step, "collapse", "run collapsing", "again"))  # the factor compounds
    assert agent.learning_rates()["critic"] == pytest.approx(1e-3 / 16) and agent.state_dict()["lr_scale"] == 1 / 16


def test_a_lowered_learning_rate_scales_the_decay_schedule_and_survives_a_checkpoint():
    agent = _agent_whose_critics_say(1.0, critic_lr_decay="linear", critic_lr_final=1e-4)
    agent.lr_scale = 0.5
    agent.set_lr_progress(0.5)  # halfway from 3e-4 to 1e-4: 2e-4, halved
    assert agent.learning_rates()["critic"] == pytest.approx(1e-4) and agent.learning_rates()["actor"] == \
        pytest.approx(1.5e-4)
    restored = _agent_whose_critics_say(1.0, critic_lr_decay="linear", critic_lr_final=1e-4)
    restored.load_state_dict(agent.state_dict())
    assert restored.lr_scale == 0.5 and restored.learning_rates() == pytest.approx(agent.learning_rates())


def _collapse_at_400(monkeypatch) -> None:
    """The health monitor sees a collapse at step 400, and only there."""
    def collapse_at_400(self, step, *args, **kwargs):
        return Alert(step, "collapse", "run collapsing", "evaluation return ...") if step == 400 else None

    monkeypatch.setattr(HealthMonitor, "collapsed", collapse_at_400)


def test_stop_on_collapse_ends_the_run_there_with_a_checkpoint(tmp_path, monkeypatch):
    _collapse_at_400(monkeypatch)
    run = train_tiny(tmp_path, *SHORT, "health.on_collapse=stop")
    assert run.trainer.state.step == 400 and run.final["health/stopped_at"] == 400
    assert load_checkpoint(RunDir(tmp_path).latest_checkpoint).loop.step == 400
    record = json.loads(RunDir(tmp_path).alerts.read_text().splitlines()[-1])
    assert record["kind"] == "stop" and "the run stops here (health.on_collapse=stop)" in record["text"]


def test_a_sweep_names_its_job_stopped_by_health_and_does_not_count_it_as_finished(tmp_path, monkeypatch):
    """The job ended by health.on_collapse=stop is listed with where and why it stopped; the sweep does
    not fail for it (the run did what it was told)."""
    _collapse_at_400(monkeypatch)
    job = tmp_path / "sweep" / "0"
    train_tiny(job, *SHORT, "health.on_collapse=stop")
    RunDir(job).config.parent.mkdir()
    OmegaConf.save(tiny_config(*SHORT, "health.on_collapse=stop"), RunDir(job).config)  # as Hydra writes them
    OmegaConf.save(OmegaConf.create(["seed=0", "health.on_collapse=stop"]), RunDir(job).overrides)
    with console.capture() as captured:
        SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(job.parent)}, "launcher": {}}}))
    out = " ".join(captured.get().split())
    assert "0 of 1 jobs finished, 1 stopped before their last step" in out, out
    assert (f"job 0 (seed=0 health.on_collapse=stop): stopped at step 400 of 600 by health.on_collapse=stop "
            f"[{RunDir(job).latest_checkpoint}]") in out, out


def test_a_rollback_is_in_the_runs_final_record_and_its_summary(tmp_path, monkeypatch):
    _collapse_at_400(monkeypatch)
    run = train_tiny(tmp_path, *SHORT, "health.on_collapse=rollback")
    assert run.trainer.state.step == 600 and (run.final["health/rollbacks"], run.final["health/lr_scale"]) == (1, 0.5)
    tracker = SimpleNamespace(metrics_path=RunDir(tmp_path).metrics, offline_segments=[])  # logging=disabled
    with console.capture() as captured:
        print_summary(run.final, RunDir(tmp_path), tracker)
    assert "1 time by health.on_collapse=rollback, learning rates now x0.5 (alerts: alerts.jsonl)" in captured.get()


def test_an_environment_raising_during_the_bias_episodes_skips_that_measurement_only(caplog):
    class Raising(gym.Wrapper):
        def step(self, action):
            raise RuntimeError("simulator crashed")

    agent = _agent_whose_critics_say(1.0)
    measured = HealthMonitor(HealthConfig(), seed=0).measure(agent, _EmptyBuffer(), Raising(gym.make("Countdown-v0")))
    assert "health/value_bias" not in measured and "health/param_norm_critic" in measured
    assert "value bias not measured: the environment raised in step (RuntimeError: simulator crashed)" in caplog.text


class _EmptyBuffer:
    def __len__(self) -> int:
        return 0
