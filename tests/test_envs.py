import numpy as np
import pytest

from sac_runner.config import EnvConfig
from gymnasium import spaces

from sac_runner.errors import EnvError
from sac_runner.run.envs import Spaces, env_spaces, make_env


def test_mujoco_observations_are_float32_and_actions_span_minus_one_to_one():
    env = make_env(EnvConfig(id="HalfCheetah-v5"), seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32
    env.close()


def test_actions_are_rescaled_to_the_env_bounds():
    env = make_env(EnvConfig(id="Pendulum-v1"))
    assert env.unwrapped.action_space.high[0] == 2.0
    env.reset(seed=0)
    env.step(np.array([1.0], np.float32))
    assert env.unwrapped.last_u == pytest.approx(2.0)  # +1 for the agent is the +2 torque bound
    env.close()


def test_max_episode_steps_and_kwargs_reach_gymnasium():
    env = make_env(EnvConfig(id="Pendulum-v1", max_episode_steps=7, kwargs={"g": 3.0}))
    env.reset(seed=0)
    assert env.unwrapped.g == 3.0
    steps = 0
    while True:
        steps += 1
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    assert steps == 7


def test_unknown_id_suggests_registered_ones():
    with pytest.raises(EnvError, match="unknown environment id 'Pendulum-v9'.*Pendulum-v1"):
        make_env(EnvConfig(id="Pendulum-v9"))


def test_discrete_actions_are_indices_from_zero():
    env = make_env(EnvConfig(id="CartPole-v1"))
    assert env_spaces(env) == Spaces(obs_dim=4, action_dim=2, discrete=True)
    # BestArm's actions are Discrete(3, start=1); the agent's index 2 is the environment's action 3.
    env = make_env(EnvConfig(id="BestArm-v0"))
    assert env.action_space == spaces.Discrete(3) and env_spaces(env).action_dim == 3
    env.reset(seed=0)
    _, reward, *_ = env.step(np.int64(2))
    assert env.unwrapped.last_action == 3 and reward == 1.0


def test_continuous_actions_give_their_size():
    assert env_spaces(make_env(EnvConfig(id="HalfCheetah-v5"))) == Spaces(obs_dim=17, action_dim=6, discrete=False)


def test_unsupported_action_space_is_named():
    with pytest.raises(EnvError, match="MultiDiscrete action space; sac-runner supports Box .* and Discrete"):
        make_env(EnvConfig(id="MultiDiscreteActions-v0"))


def test_discrete_observations_become_one_hot():
    env = make_env(EnvConfig(id="DiscreteObs-v0"))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32 and obs.sum() == 1.0 and set(obs) <= {0.0, 1.0}


def test_dict_and_tuple_observations_are_flattened():
    env = make_env(EnvConfig(id="DictObs-v0"))
    obs, _ = env.reset(seed=0)
    # flags: MultiBinary(2) + one-hot Discrete(2); mode: one-hot Discrete(3); position: 2 (keys sorted)
    assert obs.shape == (2 + 2 + 3 + 2,) and obs.dtype == np.float32


def test_unsupported_observation_space_is_named():
    with pytest.raises(EnvError, match="observation space Text.*cannot flatten"):
        make_env(EnvConfig(id="TextObs-v0"))
