"""Composition of every preset, and clear failures for bad values before anything is built."""

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from sac_runner.config import ConfigError, RunConfig
from sac_runner.run.run_config import to_run_config
from sac_runner.run.builders import make_parts
from tests.harness import QUIET, compose

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["env", "agent", "buffer", "schedule", "logging"])
def test_every_preset_composes_and_validates(group):
    assert _options(group), f"conf/{group}/ has no presets"
    for option in _options(group):
        run = to_run_config(compose(f"{group}={option}"))
        assert isinstance(run, RunConfig)


def test_default_run_is_pendulum_on_the_short_schedule():
    run = to_run_config(compose())
    assert run.env.id == "Pendulum-v1"
    assert run.schedule.total_steps == 20_000
    assert (run.agent.actor_lr, run.schedule.batch_size, run.agent.hidden_sizes) == (3e-4, 256, [256, 256])
    assert (run.agent.gamma, run.agent.tau, run.buffer.capacity) == (0.99, 0.005, 1_000_000)


@pytest.mark.parametrize("preset, env_id", [("halfcheetah", "HalfCheetah-v5"), ("hopper", "Hopper-v5"),
                                            ("walker2d", "Walker2d-v5"), ("ant", "Ant-v5"),
                                            ("humanoid", "Humanoid-v5"), ("inverted_pendulum", "InvertedPendulum-v5")])
def test_env_presets_name_mujoco_v5_tasks(preset, env_id):
    run = to_run_config(compose(f"env={preset}"))
    assert run.env.id == env_id
    expected_steps = 20_000 if preset == "inverted_pendulum" else 1_000_000
    assert run.schedule.total_steps == expected_steps


def test_any_registered_id_through_env_id():
    assert to_run_config(compose("env.id=MountainCarContinuous-v0")).env.id == "MountainCarContinuous-v0"


def test_schedule_on_the_command_line_wins_over_the_env_preset():
    assert to_run_config(compose("env=pendulum", "schedule=smoke")).schedule.total_steps == 300


def test_alpha_accepts_auto_or_a_number():
    assert to_run_config(compose("agent.alpha=auto")).agent.alpha == "auto"
    assert to_run_config(compose("agent.alpha=0.2")).agent.alpha == 0.2


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
    ("agent.compile=fast", "agent.compile"),
    ("buffer.device=gpu", "buffer.device"),
    ("agent.critic_norm=batch", "agent.critic_norm"),
    ("agent.critic_norm=batch_renorm", "agent.critic_norm"),  # with target networks: CrossQ drops them
    ("agent.actor_norm=group", "agent.actor_norm"),
    ("agent.critic_dropout=1", "agent.critic_dropout"),
    ("agent.actor_q=max", "agent.actor_q"),
    ("agent.adam_betas=[0.5]", "agent.adam_betas"),
    ("agent.batch_renorm_momentum=0", "agent.batch_renorm_momentum"),
    ("agent.reset_every=-1", "agent.reset_every"),
    ("agent.reset_networks=[value]", "agent.reset_networks"),  # no V network without value_network=true
    ("agent.weight_norm=[target]", "agent.weight_norm"),
    ("agent.critic_architecture=resnet", "agent.critic_architecture"),
    ("agent.actor_architecture=simba agent.hidden_sizes=[256,128]", "agent.hidden_sizes"),  # one width
    ("agent.critic_architecture=simba agent.critic_hidden_sizes=[64,32]", "agent.critic_hidden_sizes"),
    ("agent.critic_architecture=simba agent=droq", "agent.critic_norm"),  # SimBa brings its own LayerNorm
    ("agent.critic_architecture=simba agent.critic_dropout=0.01", "agent.critic_dropout"),
    ("health.on_collapse=panic", "health.on_collapse"),
    ("health.patience=0", "health.patience"),
    ("health.dormant_max=2", "health.dormant_max"),
    ("health.rollback_lr_factor=0", "health.rollback_lr_factor"),
    ("health.on_collapse=rollback checkpoint.keep_best=false", "health.on_collapse"),  # restores best.pt
])
def test_invalid_values_fail_before_training_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_run_config(compose(*override.split()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
@pytest.mark.parametrize("override, message", [
    ("agent.compile=cudagraphs", "agent.compile=cudagraphs needs a CUDA device but the run is on cpu; "
                                 "set agent.compile=compile (or auto)"),
    ("buffer.device=cuda", "buffer.device=cuda needs the agent on a GPU but the run is on cpu; "
                           "set buffer.device=auto (or device=cuda on a machine with one)"),
])
def test_the_gpu_fast_path_on_a_cpu_run_is_refused_with_the_fix(override, message):
    with pytest.raises(ConfigError) as refused:
        make_parts(to_run_config(compose(*QUIET, override)))
    assert str(refused.value) == message


def test_unknown_key_fails_at_compose_time():
    with pytest.raises(ConfigCompositionException, match="agent.learning_rate"):
        compose("agent.learning_rate=1e-3")


def test_wrong_type_fails_at_compose_time():
    with pytest.raises((ConfigCompositionException, ValidationError), match="gamma"):
        compose("agent.gamma=high")


def test_unknown_group_option_fails_at_compose_time():
    with pytest.raises(ConfigCompositionException, match="halfcheeta"):
        compose("env=halfcheeta")


# ---- one source of defaults: the schemas; a YAML option lists what it changes --------------------------
GROUPS = ("env", "agent", "buffer", "schedule", "logging", "hparams_search")
# The key that names an option (buffer=uniform is type uniform whatever the schema's default becomes).
IDENTITY_KEYS = {"env.id", "buffer.type", "logging.mode"}


def _option_values(group: str, option: str) -> dict[str, object]:
    """The leaves an option file sets, as dotted keys of the run config (not Hydra's own)."""
    path = CONF / group / f"{option}.yaml"
    node = OmegaConf.load(path)
    if not path.read_text().startswith("# @package _global_"):
        node = OmegaConf.create({group: node})
    flat = {}

    def walk(prefix: str, value) -> None:
        if OmegaConf.is_dict(value):
            for key, child in value.items():
                if prefix or key not in ("defaults", "hydra"):
                    walk(f"{prefix}{key}.", child)
        else:
            flat[prefix.rstrip(".")] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

    walk("", node)
    return flat


@pytest.mark.parametrize("group", GROUPS)
def test_every_key_a_preset_sets_reaches_the_run_config(group):
    """Composition order must not let a later group silently override a preset's keys."""
    for option in _options(group):
        cfg = compose(f"{group}={option}")
        for key, value in _option_values(group, option).items():
            assert OmegaConf.select(cfg, key) == value, f"{group}={option}: {key}"


# Groups composed before each group (conf/config.yaml's defaults list): an option may restate a
# default only to undo what an option of an earlier group sets (agent=sac_cleanrl pins batch 256,
# which schedule=smoke lowers to 32).
EARLIER = {"schedule": (), "buffer": ("schedule",), "env": ("schedule", "buffer"),
           "agent": ("schedule", "buffer", "env"), "logging": ("schedule", "buffer", "env", "agent"),
           "hparams_search": GROUPS[:-1]}


@pytest.mark.parametrize("group", GROUPS)
def test_no_option_repeats_a_schema_default(group):
    defaults = OmegaConf.structured(RunConfig)
    for option in _options(group):
        for key, value in _option_values(group, option).items():
            if key in IDENTITY_KEYS or OmegaConf.select(defaults, key) != value:
                continue
            overridden = [f"{g}={o}" for g in EARLIER[group] for o in _options(g)
                          if _option_values(g, o).get(key, value) != value]
            assert overridden, f"{group}/{option}.yaml repeats {key}'s default, which no earlier option changes"


def test_an_agent_preset_may_set_buffer_options():
    """The buffer group composes before the agent group, so a preset's buffer block takes effect."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="agent", name="test_sets_buffer", package="_global_",
                                 node={"buffer": {"capacity": 1234, "n_step": 3}, "agent": {"gamma": 0.9}})
    run = to_run_config(compose("agent=test_sets_buffer", "buffer=prioritized"))
    assert (run.buffer.capacity, run.buffer.n_step, run.buffer.type, run.agent.gamma) == (1234, 3, "prioritized", 0.9)


def test_moved_keys_are_refused_with_their_new_name():
    from sac_runner.run.run_config import MOVED_KEYS

    for old, new in MOVED_KEYS.items():
        with pytest.raises(ConfigError, match=f"{old} is now {new}"):
            to_run_config(compose(f"+{old}=1"))
