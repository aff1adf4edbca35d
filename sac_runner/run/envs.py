"""Build Gymnasium environments the agent can act in, with gymnasium's own wrappers:

- continuous actions rescaled so the agent always acts in [-1, 1]^d (RescaleAction); discrete
  actions are indices 0 .. n-1 (a Discrete space that starts elsewhere is shifted to 0);
- observations cast to float32 at the boundary (DtypeObservation: MuJoCo returns float64);
- episode return and length recorded in `info["episode"]` (RecordEpisodeStatistics).
"""

from __future__ import annotations

import difflib
import logging
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import DtypeObservation, FlattenObservation, RecordEpisodeStatistics, RescaleAction

from sac_runner.config import EnvConfig
from sac_runner.errors import EnvError
from sac_runner.run.rendering import prepare_rendering


log = logging.getLogger(__name__)

# MuJoCo 4 warns that gymnasium's bundled model files use a deprecated attribute, once per environment
# built; nothing a user can change, and it reads like a failure.
HARMLESS_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    if not any(known in message for known in HARMLESS_MUJOCO_WARNINGS):
        log.warning("MuJoCo: %s", message)


def route_mujoco_warnings() -> None:
    """MuJoCo's own warning handler prints to stdout and appends to MUJOCO_LOG.TXT in the working
    directory; ours drops the known-harmless ones and logs the rest (a real problem still shows)."""
    try:
        import mujoco
    except (ImportError, RuntimeError):  # RuntimeError: a MUJOCO_GL mujoco rejects; gym.make reports it in one line
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


def _closest_ids(env_id: str) -> list[str]:
    return difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.5)


FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)


def _flattenable(space: spaces.Space) -> bool:
    """Box, Discrete (one-hot), MultiBinary, MultiDiscrete, and Dict / Tuple of those."""
    if isinstance(space, spaces.Dict):
        return all(_flattenable(s) for s in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return all(_flattenable(s) for s in space.spaces)
    return isinstance(space, FLAT_SPACES)


def make_env(cfg: EnvConfig, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """The environment `cfg` names, wrapped for the agent; render_mode="rgb_array" for videos."""
    cfg_kwargs = cfg.kwargs if render_mode is None else {**cfg.kwargs, "render_mode": render_mode}
    route_mujoco_warnings()
    try:
        with warnings.catch_warnings():
            # MuJoCo 4 warns about a deprecated attribute in gymnasium's bundled model files.
            warnings.filterwarnings("ignore", message=".*deprecated.*")
            env = gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps, **cfg_kwargs)
    except gym.error.Error as error:
        if cfg.id not in gym.registry:
            close = _closest_ids(cfg.id)
            hint = f"did you mean {', '.join(close)}?" if close else "use a registered Gymnasium id"
            raise EnvError(f"unknown environment id '{cfg.id}'; {hint} (env.id=...)") from error
        raise EnvError(f"environment '{cfg.id}' could not be built: {error}") from error
    except Exception as error:  # a broken or misconfigured third-party environment
        raise EnvError(f"environment '{cfg.id}' could not be built: {type(error).__name__}: {error}; "
                       "check env.kwargs and that its package is installed") from error
    if render_mode is not None:
        try:
            prepare_rendering(env)  # gymnasium reads MUJOCO_GL at the first frame, not when it builds the env
        except EnvError:
            env.close()
            raise

    if not isinstance(env.action_space, (spaces.Box, spaces.Discrete)):
        env.close()
        raise EnvError(f"environment '{cfg.id}' has a {type(env.action_space).__name__} action space; "
                       "sac-runner supports Box (continuous SAC) and Discrete (discrete SAC) actions")
    if isinstance(env.action_space, spaces.Box) and not (
            np.all(np.isfinite(env.action_space.low)) and np.all(np.isfinite(env.action_space.high))):
        env.close()
        raise EnvError(f"environment '{cfg.id}' has unbounded actions; SAC squashes actions with tanh and "
                       "needs finite Box bounds (wrap the env with gymnasium.wrappers.ClipAction)")
    if not _flattenable(env.observation_space):
        env.close()
        raise EnvError(f"environment '{cfg.id}' has observation space {env.observation_space}, which sac-runner "
                       "cannot flatten; supported: Box, Discrete, MultiBinary, MultiDiscrete and Dict/Tuple of those")
    if not (isinstance(env.observation_space, spaces.Box) and len(env.observation_space.shape) == 1):
        env = FlattenObservation(env)  # Discrete -> one-hot, Dict/Tuple -> concatenation

    if isinstance(env.action_space, spaces.Box):
        unit = np.ones(env.action_space.shape, dtype=np.float32)
        env = RescaleAction(env, -unit, unit)
    elif env.action_space.start != 0:
        env = ZeroBasedDiscreteAction(env)
    if env.observation_space.dtype != np.float32:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*precision lowered.*")
            env = DtypeObservation(env, np.float32)
    env = RecordEpisodeStatistics(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


class ZeroBasedDiscreteAction(gym.ActionWrapper):
    """Discrete(n, start=s) seen as Discrete(n): the agent's index i is the environment's action s + i."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.start = int(env.action_space.start)
        self.action_space = spaces.Discrete(int(env.action_space.n), seed=env.action_space.np_random)

    def action(self, action):
        return self.start + int(action)


@dataclass(frozen=True)
class Spaces:
    """What the agent needs to know about a built environment."""

    obs_dim: int
    action_dim: int  # the size of a continuous action, or the number |A| of discrete actions
    discrete: bool

    def describe(self) -> str:
        return f"observation size {self.obs_dim} and {'|A| =' if self.discrete else 'action size'} {self.action_dim}"


def env_spaces(env: gym.Env) -> Spaces:
    if isinstance(env.action_space, spaces.Discrete):
        return Spaces(int(np.prod(env.observation_space.shape)), int(env.action_space.n), discrete=True)
    return Spaces(int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)), discrete=False)
