"""A trained agent rebuilt from a checkpoint's own config, for sac-eval and sac-export."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import torch
from omegaconf import OmegaConf

from sac_runner.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
from sac_runner.config import RunConfig
from sac_runner.envs import Spaces, env_spaces, make_env
from sac_runner.sac import SAC


@dataclass
class Trained:
    path: Path          # the checkpoint file
    step: int
    run: RunConfig      # the config the agent was trained with
    env: gym.Env        # an environment like the one it was trained on
    spaces: Spaces
    agent: SAC          # actor and observation statistics loaded
    best: dict | None = None  # best.pt: {"step", "return"} of the evaluation it was saved at


def run_config_of(checkpoint: dict, path: Path) -> RunConfig:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), checkpoint["config"])
        return OmegaConf.to_object(merged)
    except Exception as error:
        raise CheckpointError(f"{path} holds a config this sac-runner cannot read ({error}); "
                              "use the sac-runner release that wrote it") from error


def load_trained(source: str, device: torch.device, env_seed: int | None = None,
                 render_mode: str | None = None, env_id: str | None = None) -> Trained:
    """The checkpoint's agent and its environment (or `env_id`, which must have the same spaces)."""
    from sac_runner.train import make_agent  # train imports the whole loop; only needed here

    path = resolve_checkpoint_path(source)
    checkpoint = load_checkpoint(path)
    run = run_config_of(checkpoint, path)
    if env_id and env_id != run.env.id:
        run.env = replace(run.env, id=env_id, kwargs={})
    env = make_env(run.env, seed=env_seed, render_mode=render_mode)
    spaces = env_spaces(env)
    saved = Spaces.of_checkpoint(checkpoint)
    if spaces != saved:
        env.close()
        raise CheckpointError(f"{path} was trained with {saved.describe()}, but {run.env.id} has "
                              f"{spaces.obs_dim} and {spaces.action_dim}; evaluate it on an environment "
                              "with the same spaces (or leave env_id unset)")
    agent = make_agent(run, spaces, device)
    agent.actor.load_state_dict(checkpoint["agent"]["actor"])
    agent.normalizer.load_state_dict(checkpoint["agent"]["normalizer"])
    agent.actor.eval()
    return Trained(path, int(checkpoint["step"]), run, env, spaces, agent, checkpoint.get("best"))
