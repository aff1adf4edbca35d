"""The one place where a config becomes objects: env, agent, replay buffer (`make_*`), for a new run, a
warm start, and a trained agent rebuilt from a checkpoint (sac-eval, sac-export)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

from sac_runner.algo.discrete_sac import DiscreteSAC
from sac_runner.algo.replay_buffer import ReplayBuffer, buffer_bytes, n_step_discounts
from sac_runner.algo.sac import SAC
from sac_runner.config import RunConfig
from sac_runner.errors import CheckpointError, ConfigError
from sac_runner.run.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from sac_runner.run.compile_probe import CompileChoice, choose_compile_mode
from sac_runner.run.envs import Spaces, env_spaces, make_env
from sac_runner.run.hardware import available_memory, resolve_device
from sac_runner.run.vector_env import VectorEnvs

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_agent(run: RunConfig, spaces: Spaces, device: torch.device) -> SAC:
    """Continuous or discrete SAC, as agent.action_space and the environment's action space say."""
    refuse_an_agent_for_other_spaces(run, spaces, device)
    agent_class = DiscreteSAC if spaces.discrete else SAC
    return agent_class(spaces.obs_shape, spaces.action_dim, run.agent, device,
                       normalize_obs=run.env.normalize_obs, normalize_obs_clip=run.env.normalize_obs_clip)


def refuse_an_agent_for_other_spaces(run: RunConfig, spaces: Spaces, device: torch.device) -> None:
    """agent.* options this environment or device cannot take, in one line each."""
    kind = "discrete" if spaces.discrete else "continuous"
    if run.agent.action_space not in ("auto", kind):
        raise ConfigError(f"agent.action_space={run.agent.action_space} but {run.env.id} has {kind} actions; "
                          f"set agent.action_space=auto (or use agent=sac{'_discrete' if spaces.discrete else ''})")
    if run.agent.compile == "cudagraphs" and device.type != "cuda":
        raise ConfigError(f"agent.compile=cudagraphs needs a CUDA device but the run is on {device.type}; "
                          "set agent.compile=compile (or auto)")
    if spaces.pixels and run.env.normalize_obs:
        raise ConfigError(f"env.normalize_obs=true does not apply to image observations ({run.env.id} from pixels: "
                          "the encoder scales its frames); set env.normalize_obs=false")
    if run.agent.augmentation != "none" and not spaces.pixels:
        raise ConfigError(f"agent.augmentation={run.agent.augmentation} shifts images, but {run.env.id} observes "
                          "states; set env.pixels=true (or agent.augmentation=none, or another agent than drq)")


def make_replay_buffer(run: RunConfig, spaces: Spaces, device: torch.device) -> ReplayBuffer:
    """The buffer buffer.* describes, refused before allocation if it cannot fit in memory. A discrete
    action is stored as its index."""
    action_columns, action_dtype = (1, np.int64) if spaces.discrete else (spaces.action_dim, np.float32)
    # Images: uint8 frames, each stored once (the stacks are rebuilt from them when sampled).
    frames = dict(obs_shape=spaces.obs_shape, frame_stack=spaces.frame_stack, obs_dtype=np.uint8) if spaces.pixels else {}
    frame_shape = (spaces.obs_shape[0] // spaces.frame_stack, *spaces.obs_shape[1:]) if spaces.pixels else None
    needed = buffer_bytes(run.buffer, spaces.obs_dim, action_columns, action_dtype, frame_shape=frame_shape,
                          obs_dtype=np.uint8 if spaces.pixels else np.float32)
    refuse_a_buffer_that_cannot_fit(run, needed)
    mirror = samples_on_device(run, device, needed)
    return ReplayBuffer(run.buffer, None if spaces.pixels else spaces.obs_dim, action_columns, device, seed=run.seed,
                        action_dtype=action_dtype, discounts=n_step_discounts(run.agent.gamma, run.buffer.n_step),
                        streams=run.env.num_envs, mirror_on_device=mirror, **frames)


def samples_on_device(run: RunConfig, device: torch.device, needed: int) -> bool:
    """buffer.device: whether batches come from a copy of the buffer on the GPU (algo/device_mirror.py).
    auto: when the agent is on a GPU, the buffer has one-step returns (n-step ones are summed on the
    host) and the copy takes at most half the GPU's free memory."""
    asked = run.buffer.device
    if asked == "cpu":
        return False
    if device.type != "cuda":
        if asked == "cuda":
            raise ConfigError(f"buffer.device=cuda needs the agent on a GPU but the run is on {device.type}; "
                              "set buffer.device=auto (or device=cuda on a machine with one)")
        return False
    if run.buffer.n_step > 1:
        if asked == "cuda":
            log.info("buffer.device=cuda: n-step returns are summed on the host; batches are copied to the GPU")
        return False
    free, _ = torch.cuda.mem_get_info(device)
    if asked == "auto":
        return needed <= free // 2
    if needed > free:
        per_slot = needed / run.buffer.capacity
        raise ConfigError(f"buffer.device=cuda: buffer.capacity={run.buffer.capacity:_} needs {_bytes(needed)} of GPU "
                          f"memory but {_bytes(free)} is free; set buffer.device=cpu, or buffer.capacity="
                          f"{int(float(f'{free * 0.8 / per_slot:.2g}')):_} would fit")
    return True


def refuse_a_buffer_that_cannot_fit(run: RunConfig, needed: int) -> None:
    """Before allocating: a buffer larger than the memory this process may use would fail at once or,
    as NumPy's zeros are allocated lazily, hours later when it fills."""
    available = available_memory()
    if available is None or needed <= available:
        return
    per_slot = needed / run.buffer.capacity
    fits = int(available * 0.8 / per_slot)  # room left for the networks, the environment and Python
    fits = int(float(f"{fits:.2g}"))  # two significant digits
    raise ConfigError(f"buffer.capacity={run.buffer.capacity:_} needs {_bytes(needed)} ({per_slot:.0f} bytes per "
                      f"transition) but {_bytes(available)} of memory is available; buffer.capacity={fits:_} would fit")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024


@dataclass
class Parts:
    """The objects one run is made of."""

    env: VectorEnvs            # the env.num_envs training environments (one is a vector of one)
    eval_env: gym.Env
    agent: SAC
    buffer: ReplayBuffer
    spaces: Spaces
    compile_choice: CompileChoice  # the agent.compile mode the agent runs, and what auto said of it

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


def make_parts(run: RunConfig) -> Parts:
    device = resolve_device(run.device)
    eval_env = make_env(run.env)  # first: an environment that cannot be built fails here, in one line
    env, spaces = VectorEnvs(run.env, seed=run.seed), env_spaces(eval_env, run.env.frames_per_observation)
    # Refused in one line before anything is probed: the agent's options, then the buffer's memory.
    refuse_an_agent_for_other_spaces(run, spaces, device)
    buffer = make_replay_buffer(run, spaces, device)
    # agent.compile=auto: the fastest mode a probe runs without error (run/compile_probe.py)
    choice = choose_compile_mode(run, spaces, device)
    agent = make_agent(replace(run, agent=replace(run.agent, compile=choice.mode)), spaces, device)
    return Parts(env, eval_env, agent, buffer, spaces, choice)


def warm_start(agent: SAC, spaces: Spaces, source: str) -> None:
    """Copy a trained agent's networks (and observation statistics) into a new run's agent (init_from=)."""
    path = resolve_checkpoint_path(source)
    checkpoint = load_checkpoint(path)
    saved = checkpoint.spaces
    if saved != spaces:
        raise CheckpointError(f"init_from={source} was trained with {saved.describe()}, but this environment "
                              f"has {spaces.obs_dim} and {spaces.action_dim}; warm-start from a run on the same spaces")
    try:
        agent.load_networks(checkpoint.agent)
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(f"init_from={source} has networks of another shape than this run's "
                              f"({str(error).splitlines()[0]}); use the same agent.hidden_sizes, num_critics and "
                              "value_network as that run") from error
    log.info("warm start: networks from %s (step %d)", path, checkpoint.step)


# ---- a trained agent, for sac-eval and sac-export ------------------------------------------------------

@dataclass
class Trained:
    path: Path          # the checkpoint file
    step: int
    run: RunConfig      # the config the agent was trained with
    env: gym.Env        # an environment like the one it was trained on
    spaces: Spaces
    agent: SAC          # actor and observation statistics loaded
    best: dict | None = None  # best.pt: {"step", "return"} of the evaluation it was saved at


def run_config_of(checkpoint: Checkpoint) -> RunConfig:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), checkpoint.config)
        return OmegaConf.to_object(merged)
    except Exception as error:
        raise CheckpointError(f"{checkpoint.path} holds a config this sac-runner cannot read ({error}); "
                              "use the sac-runner release that wrote it") from error


def load_trained(source: str, device: torch.device, env_seed: int | None = None,
                 render_mode: str | None = None, env_id: str | None = None) -> Trained:
    """The checkpoint's agent and its environment (or `env_id`, which must have the same spaces)."""
    path = resolve_checkpoint_path(source)
    checkpoint = load_checkpoint(path)
    run = run_config_of(checkpoint)
    if env_id and env_id != run.env.id:
        run.env = replace(run.env, id=env_id, task=None, kwargs={})
    run.agent = replace(run.agent, compile="off")  # a few episodes: not worth compiling, and any device will do
    env = make_env(run.env, seed=env_seed, render_mode=render_mode)
    spaces = env_spaces(env, run.env.frames_per_observation)
    saved = checkpoint.spaces
    if spaces != saved:
        env.close()
        raise CheckpointError(f"{path} was trained with {saved.describe()}, but {run.env.id} has "
                              f"{spaces.obs_dim} and {spaces.action_dim}; evaluate it on an environment "
                              "with the same spaces (or leave env_id unset)")
    agent = make_agent(run, spaces, device)
    agent.actor.load_state_dict(checkpoint.agent["actor"])
    agent.normalizer.load_state_dict(checkpoint.agent["normalizer"])
    agent.actor.eval()
    return Trained(path, checkpoint.step, run, env, spaces, agent, checkpoint.best)
