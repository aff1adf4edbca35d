"""What a checkpoint holds of the training loop, and how a resumed loop gets it back, bit for bit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sac_runner.run.cadence import Throughput
from sac_runner.run.checkpoint import load_buffer_state
from sac_runner.run.exact_resume import capture_rng, restore_rng
from sac_runner.run.nan_guard import NonFiniteUpdate
from sac_runner.run.vector_env import VectorEnvs

if TYPE_CHECKING:
    from sac_runner.run.loop import Trainer

log = logging.getLogger(__name__)


def checkpoint_payload(trainer: Trainer) -> dict:
    """What a checkpoint holds besides the format header: the config, the spaces, the agent, the loop's
    counters, the current episode(s), the RNGs and the W&B run id."""
    if trainer.nan_guard is not None:  # a checkpoint never holds a non-finite weight
        try:
            trainer.nan_guard.check_parameters()
        except NonFiniteUpdate as fault:
            trainer.stop_non_finite(fault, None)
    spaces = trainer.parts.spaces
    return {
        "config": trainer.resolved, "obs_dim": spaces.obs_dim, "action_dim": spaces.action_dim,
        "discrete": spaces.discrete, "agent": trainer.parts.agent.state_dict(),
        "loop": {"step": trainer.step, "episode": trainer.episode, "best_eval": trainer.best_eval,
                 "best_step": trainer.best_step, "last_eval": trainer.last_eval, "evaluations": trainer.evaluations,
                 "env_failures": trainer.env_failures, "elapsed": trainer.clock.elapsed(),
                 "health": None if trainer.health is None else trainer.health.state_dict()},
        "episode_replay": episode_state(trainer), "obs": torch.as_tensor(trainer.obs),
        "rng": capture_rng(trainer.parts.env), "wandb_run_id": trainer.wandb_run_id,
    }


def episode_state(trainer: Trainer) -> dict:
    """How to rebuild the current episode(s) on resume (exact_resume.py, vector_env.py)."""
    if isinstance(trainer.parts.env, VectorEnvs):
        return trainer.parts.env.state_dict()
    return trainer.recorder.state_dict()


def restore(trainer: Trainer, checkpoint: dict, path: Path) -> None:
    """Continue from `checkpoint`: agent, buffer, counters, the current episode, then the RNGs."""
    loop = checkpoint["loop"]  # a finished run never gets here (training.already_finished)
    trainer.parts.agent.load_state_dict(checkpoint["agent"])
    buffer_state = load_buffer_state(path, checkpoint)
    if buffer_state is not None:
        trainer.parts.buffer.load_state_dict(buffer_state)
    else:
        log.warning("%s has no saved replay buffer (checkpoint.save_buffer=false, or an older checkpoint "
                    "whose buffer was pruned): the buffer refills from scratch, so the run is not exact", path)
    trainer.step, trainer.episode = loop["step"], loop["episode"]
    trainer.best_eval, trainer.last_eval = loop["best_eval"], dict(loop["last_eval"])
    trainer.best_step = loop.get("best_step", 0)  # checkpoints before best.pt held its own agent: 0
    trainer.evaluations = loop["evaluations"]
    trainer.env_failures = loop.get("env_failures", 0)
    trainer.clock = Throughput(loop.get("elapsed", 0.0))  # time/elapsed goes on (older checkpoints: from 0)
    if trainer.health is not None and loop.get("health") is not None:  # none in older checkpoints, or with health off then
        trainer.health.load_state_dict(loop["health"])
    if isinstance(trainer.parts.env, VectorEnvs):
        trainer.obs = trainer.parts.env.replay(checkpoint["episode_replay"], checkpoint["obs"].numpy())
    else:
        trainer.obs, _ = trainer.recorder.replay(trainer.parts.env, checkpoint["episode_replay"],
                                                 checkpoint["obs"].numpy())
    restore_rng(checkpoint["rng"], trainer.parts.env)
    trainer.last_checkpoint = path
