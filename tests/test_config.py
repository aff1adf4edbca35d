"""Composition of every preset, and clear failures for bad values before anything is built."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from sac_runner.config import ConfigError, RunConfig, to_run_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["env", "agent", "buffer", "schedule", "logging"])
def test_every_preset_composes_and_validates(compose_run, group):
    assert _options(group), f"conf/{group}/ has no presets"
    for option in _options(group):
        run = to_run_config(compose_run(f"{group}={option}"))
        assert isinstance(run, RunConfig)


def test_default_run_is_pendulum_on_the_short_schedule(compose_run):
    run = to_run_config(compose_run())
    assert run.env.id == "Pendulum-v1"
    assert run.schedule.total_steps == 20_000
    assert (run.agent.actor_lr, run.schedule.batch_size, run.agent.hidden_sizes) == (3e-4, 256, [256, 256])
    assert (run.agent.gamma, run.agent.tau, run.buffer.capacity) == (0.99, 0.005, 1_000_000)


@pytest.mark.parametrize("preset, env_id", [("halfcheetah", "HalfCheetah-v5"), ("hopper", "Hopper-v5"),
                                            ("walker2d", "Walker2d-v5"), ("ant", "Ant-v5"),
                                            ("humanoid", "Humanoid-v5"), ("inverted_pendulum", "InvertedPendulum-v5")])
def test_env_presets_name_mujoco_v5_tasks(compose_run, preset, env_id):
    run = to_run_config(compose_run(f"env={preset}"))
    assert run.env.id == env_id
    expected_steps = 20_000 if preset == "inverted_pendulum" else 1_000_000
    assert run.schedule.total_steps == expected_steps


def test_any_registered_id_through_env_id(compose_run):
    assert to_run_config(compose_run("env.id=MountainCarContinuous-v0")).env.id == "MountainCarContinuous-v0"


def test_schedule_on_the_command_line_wins_over_the_env_preset(compose_run):
    assert to_run_config(compose_run("env=pendulum", "schedule=smoke")).schedule.total_steps == 300


def test_alpha_accepts_auto_or_a_number(compose_run):
    assert to_run_config(compose_run("agent.alpha=auto")).agent.alpha == "auto"
    assert to_run_config(compose_run("agent.alpha=0.2")).agent.alpha == 0.2


@pytest.mark.parametrize("override, key", [
    ("agent.actor_lr=-1e-3", "agent.actor_lr"),
    ("agent.critic_lr=0", "agent.critic_lr"),
    ("agent.gamma=1.5", "agent.gamma"),
    ("agent.gamma=0", "agent.gamma"),
    ("agent.tau=2", "agent.tau"),
    ("agent.alpha=fast", "agent.alpha"),
    ("agent.alpha=-0.1", "agent.alpha"),
    ("agent.target_entropy=high", "agent.target_entropy"),
    ("agent.num_critics=0", "agent.num_critics"),
    ("agent.hidden_sizes=[]", "agent.hidden_sizes"),
    ("buffer.capacity=100", "schedule.batch_size"),
    ("schedule.total_steps=0", "schedule.total_steps"),
    ("schedule.start_steps=-5", "schedule.start_steps"),
    ("logging.mode=loud", "logging.mode"),
    ("device=tpu", "device"),
])
def test_invalid_values_fail_before_training_naming_the_key(compose_run, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_run_config(compose_run(override))


def test_unknown_key_fails_at_compose_time(compose_run):
    with pytest.raises(ConfigCompositionException, match="agent.learning_rate"):
        compose_run("agent.learning_rate=1e-3")


def test_wrong_type_fails_at_compose_time(compose_run):
    with pytest.raises((ConfigCompositionException, ValidationError), match="gamma"):
        compose_run("agent.gamma=high")


def test_unknown_group_option_fails_at_compose_time(compose_run):
    with pytest.raises(ConfigCompositionException, match="halfcheeta"):
        compose_run("env=halfcheeta")
