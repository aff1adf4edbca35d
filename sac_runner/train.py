"""sac-train: compose the run config, build env / agent / buffer / tracker, train, evaluate, checkpoint."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sac_runner.buffer import ReplayBuffer
from sac_runner.checkpoint import save_checkpoint
from sac_runner.config import ConfigError, RunConfig, register_configs, to_run_config
from sac_runner.console import TrainingProgress, console, key_value_table
from sac_runner.envs import Spaces, env_spaces, make_env
from sac_runner.errors import exit_on_user_error
from sac_runner.evaluation import evaluate
from sac_runner.sac import SAC, DiscreteSAC
from sac_runner.tracker import Tracker

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds disjoint from training's


def every(interval: int, step: int) -> bool:
    return step % interval == 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA device is available; set device=auto or device=cpu")
    return device


@dataclass
class Parts:
    """The objects one run is made of, built from the config in one place."""

    env: gym.Env
    eval_env: gym.Env
    agent: SAC
    buffer: ReplayBuffer
    spaces: Spaces

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


def make_agent(run: RunConfig, spaces: Spaces, device: torch.device) -> SAC:
    """Continuous or discrete SAC, as agent.action_space and the environment's action space say."""
    kind = "discrete" if spaces.discrete else "continuous"
    if run.agent.action_space not in ("auto", kind):
        raise ConfigError(f"agent.action_space={run.agent.action_space} but {run.env.id} has {kind} actions; "
                          f"set agent.action_space=auto (or use agent=sac{'_discrete' if spaces.discrete else ''})")
    agent_class = DiscreteSAC if spaces.discrete else SAC
    return agent_class(spaces.obs_dim, spaces.action_dim, run.agent, device,
                       policy_update_every=run.schedule.policy_update_every,
                       target_update_every=run.schedule.target_update_every,
                       policy_update_catch_up=run.schedule.policy_update_catch_up,
                       normalize_obs=run.env.normalize_obs, normalize_obs_clip=run.env.normalize_obs_clip)


def build(run: RunConfig) -> Parts:
    device = resolve_device(run.device)
    env = make_env(run.env, seed=run.seed)
    eval_env = make_env(run.env)
    spaces = env_spaces(env)
    agent = make_agent(run, spaces, device)
    # A discrete action is stored as its index.
    action_columns, action_dtype = (1, np.int64) if spaces.discrete else (spaces.action_dim, np.float32)
    buffer = ReplayBuffer(run.buffer, spaces.obs_dim, action_columns, run.agent.gamma, device, seed=run.seed,
                          action_dtype=action_dtype)
    return Parts(env, eval_env, agent, buffer, spaces)


def train(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Train one SAC agent as `cfg` says; return the final evaluation metrics."""
    run: RunConfig = to_run_config(cfg)
    seed_everything(run.seed)
    parts = build(run)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log.info("run directory: %s", run_dir)
    try:
        with Tracker(run_dir, run.logging, resolved, run_name=run_dir.name) as tracker:
            final = run_training(run, parts, tracker, run_dir, resolved)
            _print_summary(final, run_dir, tracker)
    finally:
        parts.close()
    return final


def training_progress(run: RunConfig, step: int) -> float:
    """Fraction of training done before `step`, counted in steps or in whole epochs (agent.lr_decay_ref)."""
    s = run.schedule
    if run.agent.lr_decay_ref == "epoch":
        return ((step - 1) // s.steps_per_epoch) / s.num_epochs
    return (step - 1) / s.steps


def run_training(run: RunConfig, parts: Parts, tracker: Tracker, run_dir: Path, resolved: dict) -> dict[str, float]:
    s = run.schedule
    total_steps = s.steps
    env, eval_env, agent, buffer = parts.env, parts.eval_env, parts.agent, parts.buffer
    final: dict[str, float] = {}
    # "Best" follows the objective: the highest return, or the lowest cost.
    sign = 1.0 if run.agent.objective == "maximize" else -1.0
    best_eval = -float("inf")
    metrics: dict[str, torch.Tensor] = {}
    episode = 0
    obs, _ = env.reset(seed=run.seed)
    agent.normalizer.update(obs)
    window_start, window_steps, started = time.perf_counter(), 0, time.perf_counter()

    with TrainingProgress(total_steps, enabled=run.logging.progress) as progress:
        for step in range(1, total_steps + 1):
            # Act: uniform random during warm-up, then a sample from the policy.
            action = env.action_space.sample() if step <= s.start_steps else agent.act(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            # Only `terminated` cuts the bootstrap; a time-limit truncation is not the end of the MDP.
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
            agent.normalizer.update(next_obs)
            obs = next_obs
            if terminated or truncated:
                episode += 1
                episode_return = float(info["episode"]["r"])
                tracker.log(step, {"train/episode_return": episode_return,
                                   "train/episode_length": int(info["episode"]["l"]), "train/episode": episode})
                progress.update(step, train_return=episode_return)
                obs, _ = env.reset()
                agent.normalizer.update(obs)

            # Learn.
            if step >= s.update_after and every(s.update_every, step):
                if agent.decays_lr:
                    agent.set_lr_progress(training_progress(run, step))
                if buffer.prioritized:
                    buffer.set_progress((step - 1) / total_steps)
                for _ in range(s.gradient_steps):
                    metrics.update(agent.update(buffer.sample(s.batch_size)))
                    if buffer.prioritized:
                        buffer.update_priorities(agent.td_error)
            window_steps += 1

            if every(s.log_every, step):
                now = time.perf_counter()
                sps = window_steps / (now - window_start)
                if agent.decays_lr:
                    metrics.update({f"train/{n}_lr": torch.tensor(o.param_groups[0]["lr"]) for n, o in agent.optimizers.items()})
                tracker.log(step, {**{k: v.item() for k, v in metrics.items()},
                                   "time/sps": sps, "time/elapsed": now - started, "buffer/size": len(buffer),
                                   "buffer/bytes_per_transition": buffer.bytes_per_transition})
                progress.update(step, sps=sps)
                window_start, window_steps = now, 0

            last_step = step == total_steps
            if every(s.eval_interval, step) or last_step:
                result = evaluate(agent, eval_env, s.eval_episodes, seed=run.seed + EVAL_SEED_OFFSET)
                final = result.summary()
                best_eval = max(best_eval, sign * final["eval/return_mean"])
                final["eval/best_return_mean"] = sign * best_eval
                tracker.log(step, final)
                progress.update(step, eval_return=final["eval/return_mean"])
                log.info("step %d: eval return %.1f +- %.1f", step, final["eval/return_mean"], final["eval/return_std"])

            if every(s.checkpoint_interval, step) or last_step:
                save_checkpoint(run_dir, step, {"config": resolved, "obs_dim": parts.spaces.obs_dim,
                                                "action_dim": parts.spaces.action_dim,
                                                "discrete": parts.spaces.discrete, "episode": episode,
                                                "agent": agent.state_dict()})
            if every(100, step):
                progress.update(step)
        progress.update(total_steps)

    elapsed = time.perf_counter() - started
    final.update({"time/elapsed": elapsed, "time/sps_overall": total_steps / elapsed, "train/episodes": episode})
    return final


def _print_summary(final: dict[str, float], run_dir: Path, tracker: Tracker) -> None:
    rows = {
        "final eval return": f"{final['eval/return_mean']:.1f} ± {final['eval/return_std']:.1f}",
        "best eval return": f"{final['eval/best_return_mean']:.1f}",
        "episodes": int(final["train/episodes"]),
        "wall time": f"{final['time/elapsed']:.0f} s ({final['time/sps_overall']:.0f} steps/s)",
        "run directory": str(run_dir),
        "checkpoint": str(run_dir / "checkpoints" / "latest.pt"),
        "metrics": str(tracker.metrics_path),
    }
    if tracker.offline_run_dir is not None:
        rows["upload to W&B"] = f"wandb sync {tracker.offline_run_dir}"
    console.print(key_value_table("sac-train summary", rows))


register_configs()


@hydra.main(version_base="1.3", config_path="pkg://sac_runner.conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    final = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    return final["eval/return_mean"]


if __name__ == "__main__":
    main()
