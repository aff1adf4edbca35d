"""Build Gymnasium environments the agent can act in, with gymnasium's own wrappers:

- continuous actions rescaled so the agent always acts in [-1, 1]^d (RescaleAction); discrete
  actions are indices 0 .. n-1 (a Discrete space that starts elsewhere is shifted to 0);
- observations cast to float32 at the boundary (DtypeObservation: MuJoCo returns float64); images
  (uint8, channels first) are kept as they are, for the convolutional encoders;
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

from sac_runner.config import DMC_PREFIX, DMC_SUFFIX, EnvConfig
from sac_runner.errors import EnvError
from sac_runner.run.atari import atari_env, for_learning, register_atari
from sac_runner.run.pixels import AgentView, is_image, make_rendering, observe_pixels
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
    quiet_renderer_logs()
    try:
        import mujoco
    except (ImportError, RuntimeError):  # RuntimeError: a MUJOCO_GL mujoco rejects; gym.make reports it in one line
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


def _closest_ids(env_id: str) -> list[str]:
    return difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.5)


def quiet_renderer_logs() -> None:
    """dm_control and PyOpenGL narrate the renderer's choice at INFO when first imported (by mujoco itself
    where MUJOCO_GL=egl or osmesa): a line on stdout that reads like news, before a refusal's one line."""
    for chatty in ("absl", "OpenGL"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


DMC_EXTRA_MISSING = "env=dmc needs the dmc extra: pip install 'sac-runner[dmc]'"


def register_dmc() -> None:
    """Shimmy's dm_control/... ids in gymnasium's registry: gymnasium 1.x loads no plugins, and Shimmy
    registers its ids when it is first imported (all of them, the suite's only where dm_control imports)."""
    if any(env_id.startswith(DMC_PREFIX) for env_id in gym.registry):
        return
    quiet_renderer_logs()
    try:
        with warnings.catch_warnings():
            # Without a display, GLFW only warns (a line on stderr) and dm_control would take it as its
            # renderer; as an error, dm_control moves on to EGL or OSMesa, as make_env's videos need.
            warnings.filterwarnings("error", message=".*DISPLAY environment variable is missing")
            import dm_control.suite  # noqa: F401  (without it Shimmy silently registers no DMC task)
        import shimmy  # noqa: F401
    except ImportError as error:
        raise EnvError(DMC_EXTRA_MISSING) from error
    import mujoco

    mujoco.set_mju_user_warning(_mujoco_warning)  # dm_control's import set one that prints through absl


def dmc_tasks() -> list[str]:
    """The registered DeepMind Control Suite tasks, as <domain>-<task> (env.task's values)."""
    names = (env_id[len(DMC_PREFIX):-len(DMC_SUFFIX)] for env_id in gym.registry
             if env_id.startswith(DMC_PREFIX) and env_id.endswith(DMC_SUFFIX))
    return sorted(name for name in names if "-" in name)  # not the manipulation / locomotion ones


def _unknown_env_message(cfg: EnvConfig) -> str:
    """One line for an id not in the registry: env.task's closest tasks, or env.id's closest ids."""
    if cfg.task is not None:
        what, name, key, fallback = "DMC task", cfg.task, "env.task", "e.g. cheetah-run, walker-walk"
        close = difflib.get_close_matches(cfg.task, dmc_tasks(), n=3, cutoff=0.5)
    else:
        what, name, key, fallback = "environment id", cfg.id, "env.id", "use a registered Gymnasium id"
        close = _closest_ids(cfg.id)
    hint = f"did you mean {', '.join(close)}?" if close else fallback
    return f"unknown {what} '{name}'; {hint} ({key}=...)"


FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)


def _flattenable(space: spaces.Space) -> bool:
    """Box, Discrete (one-hot), MultiBinary, MultiDiscrete, and Dict / Tuple of those."""
    if isinstance(space, spaces.Dict):
        return all(_flattenable(s) for s in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return all(_flattenable(s) for s in space.spaces)
    return isinstance(space, FLAT_SPACES)


def make_env(cfg: EnvConfig, seed: int | None = None, render_mode: str | None = None,
             for_training: bool = False) -> gym.Env:
    """The environment `cfg` names, wrapped for the agent; render_mode="rgb_array" for videos. for_training:
    the one the agent learns from, where Atari's clipped rewards and lost lives apply (env.clip_rewards,
    env.terminal_on_life_loss); an evaluation plays the game as it is."""
    cfg_kwargs = cfg.kwargs if render_mode is None else {**cfg.kwargs, "render_mode": render_mode}
    route_mujoco_warnings()
    if cfg.id.startswith(DMC_PREFIX):
        register_dmc()
    if cfg.is_atari:
        register_atari()
    try:
        with warnings.catch_warnings():
            # MuJoCo 4 warns about a deprecated attribute in gymnasium's bundled model files.
            warnings.filterwarnings("ignore", message=".*deprecated.*")
            if cfg.is_atari:
                env = atari_env(cfg, render_mode, for_training)
            elif cfg.pixels:
                env = make_rendering(cfg, lambda **render: gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps,
                                                                   **cfg.kwargs, **render))
            else:
                env = gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps, **cfg_kwargs)
    except gym.error.Error as error:
        if cfg.id not in gym.registry:
            raise EnvError(_unknown_env_message(cfg)) from error
        raise EnvError(f"environment '{cfg.id}' could not be built: {error}") from error
    except EnvError:
        raise
    except Exception as error:  # a broken or misconfigured third-party environment
        raise EnvError(f"environment '{cfg.id}' could not be built: {type(error).__name__}: {error}; "
                       "check env.kwargs and that its package is installed") from error
    try:
        if render_mode is not None or cfg.pixels:
            prepare_rendering(env)  # gymnasium reads MUJOCO_GL at the first frame, not when it builds the env
        if cfg.pixels and not cfg.is_atari:  # an Atari game's observation is its screen already
            env = observe_pixels(env, cfg)
        refuse_unsupported(env, cfg)
    except EnvError:
        env.close()
        raise
    env = wrapped_for_the_agent(env)
    if render_mode == "rgb_array" and cfg.pixels and not cfg.is_atari:
        env = AgentView(env, cfg.frames_per_observation)  # videos: the view beside what the agent sees
    if for_training and cfg.is_atari:
        env = for_learning(env, cfg)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def refuse_unsupported(env: gym.Env, cfg: EnvConfig) -> None:
    """An action or observation space sac-runner cannot act in or flatten: one line saying which."""
    if not isinstance(env.action_space, (spaces.Box, spaces.Discrete)):
        raise EnvError(f"environment '{cfg.id}' has a {type(env.action_space).__name__} action space; "
                       "sac-runner supports Box (continuous SAC) and Discrete (discrete SAC) actions")
    if isinstance(env.action_space, spaces.Box) and not (
            np.all(np.isfinite(env.action_space.low)) and np.all(np.isfinite(env.action_space.high))):
        raise EnvError(f"environment '{cfg.id}' has unbounded actions; SAC squashes actions with tanh and "
                       "needs finite Box bounds (wrap the env with gymnasium.wrappers.ClipAction)")
    if not (is_image(env.observation_space) or _flattenable(env.observation_space)):
        raise EnvError(f"environment '{cfg.id}' has observation space {env.observation_space}, which sac-runner "
                       "cannot flatten; supported: Box, Discrete, MultiBinary, MultiDiscrete and Dict/Tuple of those")


def wrapped_for_the_agent(env: gym.Env) -> gym.Env:
    """Flat float32 observations (images stay uint8 frames), actions in [-1, 1]^d (or indices from 0),
    episode statistics in info."""
    image = is_image(env.observation_space)
    if not image and not (isinstance(env.observation_space, spaces.Box) and len(env.observation_space.shape) == 1):
        env = FlattenObservation(env)  # Discrete -> one-hot, Dict/Tuple -> concatenation

    if isinstance(env.action_space, spaces.Box):
        unit = np.ones(env.action_space.shape, dtype=env.action_space.dtype)  # float32 bounds on a float64 Box warn
        env = RescaleAction(env, -unit, unit)
    elif env.action_space.start != 0:
        env = ZeroBasedDiscreteAction(env)
    if not image and env.observation_space.dtype != np.float32:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*precision lowered.*")
            env = DtypeObservation(env, np.float32)
    return RecordEpisodeStatistics(env)


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
    # Image observations: (frames * channels, height, width) of uint8 frames, and the frames stacked;
    # None for a flat float observation of obs_dim.
    image_shape: tuple[int, int, int] | None = None
    frame_stack: int = 1

    @property
    def pixels(self) -> bool:
        return self.image_shape is not None

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.image_shape if self.image_shape is not None else (self.obs_dim,)

    def describe(self) -> str:
        seen = f"{'x'.join(map(str, self.image_shape))} frames" if self.pixels else f"observation size {self.obs_dim}"
        return f"{seen} and {'|A| =' if self.discrete else 'action size'} {self.action_dim}"


def env_spaces(env: gym.Env, frame_stack: int = 1) -> Spaces:
    """The spaces of a built environment; frame_stack: the frames stacked in an image observation."""
    shape = env.observation_space.shape
    image = (tuple(int(n) for n in shape), frame_stack) if is_image(env.observation_space) else (None, 1)
    if isinstance(env.action_space, spaces.Discrete):
        return Spaces(int(np.prod(shape)), int(env.action_space.n), True, *image)
    return Spaces(int(np.prod(shape)), int(np.prod(env.action_space.shape)), False, *image)
