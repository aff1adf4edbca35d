"""The DeepMind Control Suite from states (env=dmc): Shimmy's ids built from env.task, the observation dict
flattened to float32, the time limit ending an episode as a truncation, an unknown task's one line, and a
tiny run through sac-train."""

import sys

import numpy as np
import pytest
from gymnasium import spaces

from sac_runner.config import EnvConfig, dmc_id
from sac_runner.errors import ConfigError, EnvError
from sac_runner.run.exact_resume import EpisodeRecorder
from sac_runner.run.envs import Spaces, env_spaces, make_env, register_dmc
from sac_runner.run.run_config import to_run_config
from tests.harness import TINY, cli, compose, metric_records, refusal_line


def dmc_env(task: str):
    return make_env(EnvConfig(id=dmc_id(task), task=task), seed=0)


def test_a_task_builds_with_flat_float32_observations():
    env = dmc_env("cartpole-swingup")
    assert isinstance(env.unwrapped.observation_space, spaces.Dict)  # position (3) and velocity (2)
    assert env_spaces(env) == Spaces(obs_dim=5, action_dim=1, discrete=False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32 and env.observation_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32
    env.close()


def test_env_task_picks_the_environment():
    run = to_run_config(compose("env=dmc", "env.task=walker-walk"))
    assert (run.env.task, run.env.id) == ("walker-walk", "dm_control/walker-walk-v0")
    env = make_env(run.env)
    assert env_spaces(env) == Spaces(obs_dim=24, action_dim=6, discrete=False)
    env.close()


def test_the_time_limit_is_a_truncation_not_a_termination():
    """dm_control ends every episode after 1000 steps with discount 1: SAC must still bootstrap there."""
    env = dmc_env("cartpole-swingup")
    env.reset(seed=0)
    ends = []
    for step in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            ends.append((step, terminated, truncated))
    assert ends == [(1000, False, True)]
    env.close()


def test_an_episode_in_progress_replays_exactly_on_resume():
    """dm_control's tasks draw their initial states from a legacy RandomState, which a checkpoint keeps."""
    env = dmc_env("cartpole-swingup")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    recorder = EpisodeRecorder()
    recorder.reset(env)  # a later episode: unseeded, its initial state drawn from the task's RNG
    for _ in range(5):
        action = env.action_space.sample()
        recorder.record(action)
        obs, *_ = env.step(action)
    saved = recorder.state_dict()
    env.step(env.action_space.sample())  # the RNG and physics move on; a replay must not depend on them
    _, matches = EpisodeRecorder().replay(dmc_env("cartpole-swingup"), saved, obs)
    assert matches
    env.close()


@pytest.mark.parametrize("overrides, message", [
    (("env.task=cheetah",), "env.task must be <domain>-<task>, got 'cheetah'; set env.task=cheetah-run or "
                            "another DMC task"),
    (("env=dmc", "env.id=HalfCheetah-v5"),
     "env.id must be dm_control/<env.task>-v0 (dm_control/cheetah-run-v0) while env.task is set, got "
     "HalfCheetah-v5; choose the task with env=dmc env.task=cheetah-run, or set env.task=null for another environment"),
    (("env.task=walker-walk",),  # without env=dmc, env.id is still Pendulum-v1
     "env.id must be dm_control/<env.task>-v0 (dm_control/walker-walk-v0) while env.task is set, got "
     "Pendulum-v1; choose the task with env=dmc env.task=walker-walk, or set env.task=null for another environment"),
])
def test_a_task_that_cannot_be_the_environment_is_refused(overrides, message):
    with pytest.raises(ConfigError) as refused:
        to_run_config(compose(*overrides))
    assert str(refused.value) == message


def test_an_unknown_task_is_one_line_with_the_closest_names(tmp_path):
    proc = cli("sac-train", tmp_path, "env=dmc", "env.task=cheetah-rnu", *TINY)
    assert proc.returncode == 2
    assert refusal_line(proc) == "error: unknown DMC task 'cheetah-rnu'; did you mean cheetah-run? (env.task=...)"
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if p.name != "latest"]


def test_without_the_extra_the_fix_is_named(monkeypatch):
    import gymnasium

    registry = {k: v for k, v in gymnasium.registry.items() if not k.startswith("dm_control/")}
    monkeypatch.setattr(gymnasium, "registry", registry)
    monkeypatch.setitem(sys.modules, "dm_control.suite", None)  # import dm_control.suite fails
    with pytest.raises(EnvError) as refused:
        register_dmc()
    assert str(refused.value) == "env=dmc needs the dmc extra: pip install 'sac-runner[dmc]'"


def test_a_tiny_run_trains_and_evaluates(tmp_path):
    proc = cli("sac-train", tmp_path, "env=dmc", "env.task=cartpole-swingup", *TINY,
               "schedule.total_steps=150", "schedule.eval_episodes=1")  # 50 updates, one 1000-step evaluation
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The id's slash does not make a folder: outputs/runs/<date>_dm_control-cartpole-swingup-v0_seed0
    runs = tmp_path / "outputs" / "runs"
    (run_dir,) = [p for p in runs.iterdir() if p.name != "latest"]
    assert run_dir.name.endswith("_dm_control-cartpole-swingup-v0_seed0")
    assert (runs / "latest").resolve() == run_dir.resolve()
    (evaluation,) = [r for r in metric_records(run_dir) if "eval/return_mean" in r]
    assert evaluation["step"] == 150 and evaluation["eval/length_mean"] == 1000
    assert not [key for key in evaluation if "timestep" in key]  # Shimmy's dm_env bookkeeping is not logged
    # sac-eval on another task with the same spaces (the saved env.task gives way to env_id)
    proc = cli("sac-eval", tmp_path, f"checkpoint={run_dir}", "env_id=dm_control/cartpole-balance-v0",
               "episodes=1", f"hydra.run.dir={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dm_control/cartpole-balance-v0" in (tmp_path / "eval" / "eval_results.json").read_text()
