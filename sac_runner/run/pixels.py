"""Learning from pixels (env.pixels=true): the environment's rgb_array rendering becomes its observation.

The chain, with gymnasium's wrappers where one exists:

    the task, rendering image_size x image_size frames (MuJoCo and DMC render at that size directly)
    -> ActionRepeat(k)            k = env.action_repeat: the action repeated, rewards summed, one frame
    -> AddRenderObservation       the rendered frame replaces the state (render_only=True)
    -> ResizeObservation          only for a task whose frames come at another size (needs OpenCV)
    -> channels first             (H, W, 3) -> (3, H, W)
    -> FrameStackObservation(n)   n = env.frame_stack, padded at an episode's start with its first frame
    -> ReshapeObservation         (n, 3, H, W) -> (3n, H, W), uint8

The frame is rendered once per agent step, after the k physics steps: rendering, not physics, is the cost
(docs/benchmarks.md#rendering). A task whose own observation is already an image (CarRacing-v3) keeps it.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import AddRenderObservation, FrameStackObservation, ReshapeObservation, TransformObservation

from sac_runner.config import DMC_PREFIX, EnvConfig
from sac_runner.errors import EnvError


class ActionRepeat(gym.Wrapper):
    """One agent step = `repeat` environment steps with the same action; the rewards are summed, and the
    repeat stops early where the episode ends. (gymnasium's MaxAndSkipObservation also max-pools the last
    two observations, which is Atari's flicker fix and wrong for a state it would then discard.)"""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def is_image(space: gym.Space) -> bool:
    """A uint8 Box of shape (H, W, C) or (C, H, W): an observation the convolutional encoders take."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def render_kwargs(cfg: EnvConfig) -> dict:
    """gymnasium.make's arguments that make the task render image_size frames from env.camera."""
    size = cfg.image_size
    if cfg.id.startswith(DMC_PREFIX):
        camera = cfg.camera if cfg.camera is not None else (2 if cfg.task and cfg.task.startswith("quadruped") else 0)
        return {"render_kwargs": {"height": size, "width": size, "camera_id": camera}}
    kwargs = {"width": size, "height": size}  # MuJoCo tasks' MujocoEnv arguments
    if cfg.camera is not None:
        kwargs["camera_name" if isinstance(cfg.camera, str) else "camera_id"] = cfg.camera
    return kwargs


def make_rendering(cfg: EnvConfig, make) -> gym.Env:
    """The task built to render rgb_array frames of image_size: with its renderer's size arguments where
    it takes them (MuJoCo, DMC), else at its own size (resized later). `make(**kwargs)` is gymnasium.make."""
    try:
        with warnings.catch_warnings():  # "not in the possible render_modes": observe_pixels says it in one line
            warnings.filterwarnings("ignore", message=".*render_mode.*not in the possible render_modes")
            return make(render_mode="rgb_array", **render_kwargs(cfg))
    except TypeError as error:  # a task without width / height / camera arguments
        if "unexpected keyword argument" not in str(error):
            raise
        if "unexpected keyword argument 'render_mode'" in str(error):
            raise EnvError(cannot_render(cfg)) from error
        if cfg.camera is not None:
            raise EnvError(f"environment '{cfg.id}' takes no camera argument; set env.camera=null") from error
        return make(render_mode="rgb_array")


def cannot_render(cfg: EnvConfig) -> str:
    return (f"env.pixels=true needs frames, but environment '{cfg.id}' cannot render rgb_array; "
            "choose a task that renders (a MuJoCo or DMC task) or set env.pixels=false")


def observe_pixels(env: gym.Env, cfg: EnvConfig) -> gym.Env:
    """`env` (built by make_rendering) observed through its frames, as the module docstring lays out."""
    repeat = cfg.env_steps_per_agent_step
    if repeat > 1:
        env = ActionRepeat(env, repeat)
    if not is_image(env.observation_space):
        if "rgb_array" not in env.metadata.get("render_modes", []):
            raise EnvError(cannot_render(cfg))
        env = AddRenderObservation(env, render_only=True)
        frame = env.observation_space
        if not is_image(frame):  # the space comes from a first rendered frame
            raise EnvError(f"environment '{cfg.id}' renders frames of shape {frame.shape}, not images of "
                           "(height, width, 3); set env.pixels=false")
    size = cfg.image_size
    if env.observation_space.shape[:2] != (size, size):
        env = _resized(env, cfg)
    height, width, channels = env.observation_space.shape
    channels_first = spaces.Box(0, 255, (channels, height, width), np.uint8)
    env = TransformObservation(env, lambda frame: np.ascontiguousarray(frame.transpose(2, 0, 1)), channels_first)
    stack = cfg.frames_per_observation
    env = FrameStackObservation(env, stack, padding_type="reset")
    return ReshapeObservation(env, (stack * channels, height, width))


def _resized(env: gym.Env, cfg: EnvConfig) -> gym.Env:
    try:
        from gymnasium.wrappers import ResizeObservation
        return ResizeObservation(env, (cfg.image_size, cfg.image_size))
    except gym.error.DependencyNotInstalled as error:
        raise EnvError(f"environment '{cfg.id}' renders {env.observation_space.shape[:2]} frames and resizing them "
                       f"to env.image_size={cfg.image_size} needs OpenCV: pip install opencv-python-headless") from error


class AgentView(gym.Wrapper):
    """Videos of a run from pixels: the task's view beside the frames the agent sees, each frame of its
    stack scaled up `scale` times (nearest pixel), oldest first. The view is rendered at the frames' scaled
    height where the renderer takes a size (DMC); a task that renders only at image_size shows the agent's
    frames alone (its view is the newest of them)."""

    def __init__(self, env: gym.Env, stack: int, scale: int = 4):
        super().__init__(env)
        self.stack, self.scale = stack, scale
        self.last_obs: np.ndarray | None = None

    def reset(self, **kwargs):
        self.last_obs, info = self.env.reset(**kwargs)
        return self.last_obs, info

    def step(self, action):
        self.last_obs, *rest = self.env.step(action)
        return (self.last_obs, *rest)

    def render(self) -> np.ndarray:
        frames = self.last_obs.reshape(self.stack, -1, *self.last_obs.shape[1:])  # (k, C, H, W)
        if frames.shape[1] == 1:  # grey
            frames = frames.repeat(3, axis=1)
        big = frames.repeat(self.scale, axis=2).repeat(self.scale, axis=3)
        agent = np.concatenate(list(big.transpose(0, 2, 3, 1)), axis=1)  # side by side, (H', k W', 3)
        view = self._view(agent.shape[0])
        return agent if view is None else np.concatenate([view, agent], axis=1)

    def _view(self, height: int) -> np.ndarray | None:
        physics = getattr(getattr(self.env.unwrapped, "_env", None), "physics", None)  # dm_control's
        if physics is None:
            return None
        camera = self.env.unwrapped.render_kwargs.get("camera_id", 0)
        return physics.render(height=height, width=height, camera_id=camera)
