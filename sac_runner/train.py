"""sac-train: compose the run config, build env / agent / buffer / tracker, train, evaluate, checkpoint."""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sac_runner.buffer import Batch, ReplayBuffer, buffer_bytes
from sac_runner.checkpoint import (CheckpointError, load_buffer_state, load_checkpoint, resolve_checkpoint_path,
                                   save_best, save_checkpoint)
from sac_runner.config import LATEST_RUN, ConfigError, RunConfig, existing_run, register_configs, to_run_config
from sac_runner.console import TrainingProgress, console, key_value_table
from sac_runner.envs import Spaces, env_spaces, make_env
from sac_runner.errors import RunFailure, exit_on_user_error, one_line_config_errors
from sac_runner.evaluation import evaluate, record_episode
from sac_runner.hardware import RunRegistry, TorchThreads, available_memory, resolve_device
from sac_runner.nan_guard import NanGuard, NonFiniteUpdate, batch_tensors
from sac_runner.sac import SAC, DiscreteSAC
from sac_runner.resume import resumed_config
from sac_runner.run_state import EpisodeRecorder, capture_rng, restore_rng
from sac_runner.sweep import SweepJob, configure_job, run_job
from sac_runner.tracker import Tracker, truncate_metrics

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds disjoint from training's


def every(interval: int, step: int) -> bool:
    return step % interval == 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def build(run: RunConfig) -> Parts:
    device = resolve_device(run.device)
    env = make_env(run.env, seed=run.seed)
    eval_env = make_env(run.env)
    spaces = env_spaces(env)
    agent = make_agent(run, spaces, device)
    # A discrete action is stored as its index.
    action_columns, action_dtype = (1, np.int64) if spaces.discrete else (spaces.action_dim, np.float32)
    refuse_a_buffer_that_cannot_fit(run, buffer_bytes(run.buffer, spaces.obs_dim, action_columns, action_dtype))
    buffer = ReplayBuffer(run.buffer, spaces.obs_dim, action_columns, run.agent.gamma, device, seed=run.seed,
                          action_dtype=action_dtype)
    return Parts(env, eval_env, agent, buffer, spaces)


def train(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
          parallel_jobs: int = 1) -> dict[str, float]:
    """Train one SAC agent as `cfg` says (or continue the run `resume=` names); return the final evaluation.

    `overrides` are the command line's (Hydra's task overrides); with resume= only harmless ones apply.
    `parallel_jobs` is how many runs share this machine's cores (a local parallel sweep).
    """
    checkpoint, checkpoint_path = None, None
    if cfg.get("resume"):
        checkpoint_path = resolve_checkpoint_path(cfg.resume)
        checkpoint = load_checkpoint(checkpoint_path)
        cfg = resumed_config(cfg, checkpoint["config"], overrides or [], source=str(checkpoint_path))
    run: RunConfig = to_run_config(cfg)
    if checkpoint is None:
        refuse_to_overwrite(run_dir)
    with RunRegistry(run_dir=run_dir) as registry:
        threads = TorchThreads(run.threads, parallel_jobs, registry)
        log.info("%s", threads.choice.describe())
        return _train(cfg, run, run_dir, checkpoint, checkpoint_path, threads)


def _train(cfg: DictConfig, run: RunConfig, run_dir: Path, checkpoint: dict | None, checkpoint_path: Path | None,
           threads: TorchThreads) -> dict[str, float]:
    seed_everything(run.seed)
    parts = build(run)
    if run.agent.init_from and checkpoint is None:
        warm_start(parts.agent, parts.spaces, run.agent.init_from)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    trainer = Trainer(run, parts, run_dir, resolved, threads)
    if checkpoint is not None:
        trainer.restore(checkpoint, checkpoint_path)
        dropped = truncate_metrics(run_dir, trainer.step)
        log.info("resumed %s at step %d%s", run_dir, trainer.step,
                 f" ({dropped} metric records after the checkpoint dropped)" if dropped else "")
    log.info("run directory: %s (%s)", run_dir, parts.agent.device)
    try:
        with Tracker(run_dir, run.logging, resolved, run_name=run_dir.name,
                     resume_id=checkpoint.get("wandb_run_id") if checkpoint else None) as tracker, \
                StopOnSignals() as stop:
            if checkpoint is None:  # every check has passed: the run exists from here on
                point_latest_at(run_dir)
            final = trainer.train(tracker, stop)
            if not stop.requested:
                _print_summary(final, run_dir, tracker)
    finally:
        parts.close()
    if stop.requested:  # after the W&B run has finished cleanly: it is paused, not failed
        then = ("the job scheduler requeues the job, which resumes from it" if stop.scheduler_takes_over
                else f"continue with: sac-train resume={run_dir}")
        console.print(f"[bold]{stop.signal_name}[/bold]: stopped at step {trainer.step} of {run.schedule.steps} "
                      f"and saved {trainer.last_checkpoint}; {then}")
        stop.hand_over()
        raise SystemExit(128 + stop.signal_number)
    return final


def point_latest_at(run_dir: Path) -> None:
    """outputs/runs/latest -> the run just started (replaced atomically), for checkpoint=latest and
    resume=latest; only for runs in a `runs/` folder (not sweep jobs, not a hydra.run.dir elsewhere)."""
    if run_dir.parent.name != Path(LATEST_RUN).parent.name:
        return
    link = run_dir.parent / Path(LATEST_RUN).name
    tmp = link.with_name(f".latest.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, link)
    except OSError as error:  # a convenience: never a reason to stop a run
        log.debug("could not point %s at %s: %s", link, run_dir, error)


def refuse_to_overwrite(run_dir: Path) -> None:
    """A new run never writes over another run's checkpoints or metrics (hydra.run.dir=<an old run>)."""
    held = existing_run(str(run_dir))
    if held is None:
        return
    raise ConfigError(f"{run_dir} already holds a run ({held}); continue it with: sac-train resume={run_dir}, "
                      "or start this run in another directory (hydra.run.dir=...)")


def warm_start(agent: SAC, spaces: Spaces, source: str) -> None:
    """Copy a trained agent's networks (and observation statistics) into a new run's agent."""
    path = resolve_checkpoint_path(source)
    checkpoint = load_checkpoint(path)
    saved = Spaces.of_checkpoint(checkpoint)
    if saved != spaces:
        raise CheckpointError(f"agent.init_from={source} was trained with {saved.describe()}, but this environment "
                              f"has {spaces.obs_dim} and {spaces.action_dim}; warm-start from a run on the same spaces")
    try:
        agent.load_networks(checkpoint["agent"])
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(f"agent.init_from={source} has networks of another shape than this run's "
                              f"({str(error).splitlines()[0]}); use the same agent.hidden_sizes, num_critics and "
                              "value_network as that run") from error
    log.info("warm start: networks from %s (step %d)", path, checkpoint["step"])


def training_progress(run: RunConfig, step: int) -> float:
    """Fraction of training done before `step`, counted in steps or in whole epochs (agent.lr_decay_ref)."""
    s = run.schedule
    if run.agent.lr_decay_ref == "epoch":
        return ((step - 1) // s.steps_per_epoch) / s.num_epochs
    return (step - 1) / s.steps


class StopOnSignals:
    """SIGINT (Ctrl-C) and SIGTERM (a cluster preempting the job) ask the loop to checkpoint and stop.
    A second signal stops at once.

    SIGUSR1/SIGUSR2 are taken over only where a job scheduler's handler is installed (submitit's, which
    requeues a Slurm job before its time limit or on preemption): the loop checkpoints and stops first,
    then `hand_over` calls that handler, and the requeued job resumes from the checkpoint."""

    SCHEDULER_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._scheduler_handlers: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def signal_name(self) -> str | None:
        return None if self.signal_number is None else signal.Signals(self.signal_number).name

    def _handle(self, number, frame) -> None:
        if self.requested:
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signal_number = number
        log.warning("%s received: saving a checkpoint after this step", signal.Signals(number).name)

    @property
    def scheduler_takes_over(self) -> bool:
        return self.signal_number in self._scheduler_handlers

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
            for number in self.SCHEDULER_SIGNALS:
                if callable(handler := signal.getsignal(number)):
                    self._scheduler_handlers[number] = handler
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def hand_over(self) -> None:
        """Call the scheduler's handler for the signal that stopped the loop (submitit requeues and exits)."""
        if self.scheduler_takes_over:
            self._scheduler_handlers[self.signal_number](self.signal_number, None)

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Trainer:
    """The training loop of one run, and the state a checkpoint must hold to continue it exactly."""

    def __init__(self, run: RunConfig, parts: Parts, run_dir: Path, resolved: dict,
                 threads: TorchThreads | None = None):
        self.run, self.parts, self.run_dir, self.resolved = run, parts, run_dir, resolved
        self.threads = threads  # re-counted now and then: other runs on this machine start and stop
        self.step = 0          # environment steps done
        self.episode = 0       # training episodes finished
        # "Best" follows the objective: the highest return, or the lowest cost (sign = -1).
        self.sign = 1.0 if run.agent.objective == "maximize" else -1.0
        self.best_eval = -float("inf")
        self.best_step = 0     # the step of the best evaluation (its agent is checkpoints/best.pt)
        self.last_eval: dict[str, float] = {}
        self.evaluations = 0
        self.recorder = EpisodeRecorder()
        self.obs: np.ndarray | None = None
        self.last_checkpoint: Path | None = None
        self.wandb_run_id: str | None = None
        self.nan_guard = NanGuard(parts.agent) if run.agent.nan_guard else None
        self.env_failures = 0  # exceptions the environment raised in step (env.max_failures)

    def train(self, tracker: Tracker, stop: StopOnSignals | None = None) -> dict[str, float]:
        run, s = self.run, self.run.schedule
        env, agent, buffer = self.parts.env, self.parts.agent, self.parts.buffer
        self.wandb_run_id = tracker.run_id
        total_steps = s.steps
        metrics: dict[str, torch.Tensor] = {}
        if self.obs is None:  # a new run (a resumed one has replayed its current episode)
            self.obs = self.recorder.reset(env, seed=run.seed)
            agent.normalizer.update(self.obs)
        window_start, window_steps, started = time.perf_counter(), 0, time.perf_counter()
        first_step = self.step + 1

        with TrainingProgress(total_steps, enabled=run.logging.progress, start=self.step) as progress:
            for step in range(first_step, total_steps + 1):
                self.step = step
                # Act: uniform random during warm-up, then a sample from the policy.
                action = env.action_space.sample() if step <= s.start_steps else agent.act(self.obs)
                self.recorder.record(action)
                try:
                    next_obs, reward, terminated, truncated, info = env.step(action)
                except Exception as error:  # a broken environment: rebuilt, up to env.max_failures times
                    env = self.replace_broken_env(error, tracker)
                else:
                    # Only `terminated` cuts the bootstrap; a time-limit truncation is not the end of the MDP.
                    buffer.add(self.obs, action, reward, next_obs, terminated, truncated)
                    agent.normalizer.update(next_obs)
                    self.obs = next_obs
                    if terminated or truncated:
                        self.episode += 1
                        episode_return = float(info["episode"]["r"])
                        tracker.log(step, {"train/episode_return": episode_return, "train/episode": self.episode,
                                           "train/episode_length": int(info["episode"]["l"])})
                        progress.update(step, train_return=episode_return)
                        self.obs = self.recorder.reset(env)
                        agent.normalizer.update(self.obs)

                # Learn.
                if step >= s.update_after and every(s.update_every, step):
                    if agent.decays_lr:
                        agent.set_lr_progress(training_progress(run, step))
                    if buffer.prioritized:
                        buffer.set_progress((step - 1) / total_steps)
                    for _ in range(s.gradient_steps):
                        batch = buffer.sample(s.batch_size)
                        update = agent.update(batch)
                        if self.nan_guard is not None:
                            self.check_update(update, batch)
                        metrics.update(update)
                        if buffer.prioritized:
                            buffer.update_priorities(agent.td_error)
                window_steps += 1

                if every(s.log_every, step):
                    now = time.perf_counter()
                    sps = window_steps / (now - window_start)
                    if agent.decays_lr:
                        metrics.update({f"train/{n}_lr": torch.tensor(o.param_groups[0]["lr"])
                                        for n, o in agent.optimizers.items()})
                    tracker.log(step, {**{k: v.item() for k, v in metrics.items()},
                                       "time/sps": sps, "time/elapsed": now - started, "buffer/size": len(buffer),
                                       "buffer/bytes_per_transition": buffer.bytes_per_transition})
                    progress.update(step, sps=sps)
                    window_start, window_steps = now, 0

                last_step = step == total_steps
                if every(s.eval_interval, step) or last_step:
                    result = self.run_evaluation(tracker)
                    self.last_eval = result.summary()
                    is_best = self.sign * self.last_eval["eval/return_mean"] > self.best_eval
                    if is_best:
                        self.best_eval, self.best_step = self.sign * self.last_eval["eval/return_mean"], step
                    self.last_eval["eval/best_return_mean"] = self.sign * self.best_eval
                    self.last_eval["eval/best_step"] = self.best_step
                    if is_best and run.checkpoint.keep_best:
                        self.save_best()
                    tracker.log(step, self.last_eval)
                    self.evaluations += 1
                    video_every = run.logging.video_every_evals
                    if video_every and self.evaluations % video_every == 0:
                        self.record_video(tracker)
                    progress.update(step, eval_return=self.last_eval["eval/return_mean"])
                    log.info("step %d: eval return %.1f +- %.1f", step, self.last_eval["eval/return_mean"],
                             self.last_eval["eval/return_std"])

                stopping = stop is not None and stop.requested
                if every(s.checkpoint_interval, step) or last_step or stopping:
                    self.save_checkpoint()
                if stopping:
                    return dict(self.last_eval)
                if every(100, step):
                    progress.update(step)
                self.share_cpus()
            progress.update(total_steps)

        elapsed = time.perf_counter() - started
        steps_done = total_steps - first_step + 1
        return {**self.last_eval, "time/elapsed": elapsed, "time/sps_overall": steps_done / max(elapsed, 1e-9),
                "train/episodes": self.episode}

    def share_cpus(self) -> None:
        """threads=auto: follow the other sac-runner runs that start and stop on this machine."""
        if self.threads is not None and (choice := self.threads.refresh()) is not None:
            log.info("step %d: now %s", self.step, choice.describe())

    def run_evaluation(self, tracker: Tracker):
        """Evaluation episodes on the evaluation environment; if it raises in step, it is rebuilt and the
        evaluation starts again (its episodes have fixed seeds), up to env.max_failures in all."""
        s = self.run.schedule
        while True:
            try:
                return evaluate(self.parts.agent, self.parts.eval_env, s.eval_episodes,
                                seed=self.run.seed + EVAL_SEED_OFFSET)
            except Exception as error:
                self.count_env_failure(error, tracker, "evaluation environment", {"eval/broken": 1})
                log.warning("evaluation restarted on a rebuilt environment")
                _close_quietly(self.parts.eval_env)
                self.parts.eval_env = make_env(self.run.env)

    def replace_broken_env(self, error: Exception, tracker: Tracker) -> gym.Env:
        """The training environment raised in `step`: record the episode as broken, close its last
        transition like a time limit, rebuild the environment and start a new episode."""
        self.episode += 1
        self.parts.buffer.end_episode()
        self.count_env_failure(error, tracker, "environment", {"train/broken_episode": self.episode})
        log.warning("episode %d recorded as broken, environment rebuilt", self.episode)
        _close_quietly(self.parts.env)
        seed = (self.run.seed + self.env_failures) % 2**32  # a fresh stream for the new environment's resets
        self.parts.env = make_env(self.run.env, seed=seed)
        self.obs = self.recorder.reset(self.parts.env, seed=seed)
        self.parts.agent.normalizer.update(self.obs)
        return self.parts.env

    def count_env_failure(self, error: Exception, tracker: Tracker, which: str, record: dict) -> None:
        """One more exception from an environment's step; past env.max_failures the run stops (the last
        checkpoint stays as it was)."""
        self.env_failures += 1
        tracker.log(self.step, {**record, "train/env_failures": self.env_failures})
        what = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        allowed = self.run.env.max_failures
        if self.env_failures > allowed:
            kept = f"the last checkpoint {self.last_checkpoint} is kept" if self.last_checkpoint else \
                "no checkpoint had been written yet"
            raise RunFailure(f"{which} {self.run.env.id} raised in step at step {self.step} ({what}), "
                             f"failure {self.env_failures} with env.max_failures={allowed}: training stopped; {kept}; "
                             "fix the environment and resume, or raise env.max_failures")
        log.warning("%s %s raised in step at step %d (%s), failure %d of %d allowed", which, self.run.env.id,
                    self.step, what, self.env_failures, allowed)

    def check_update(self, update: dict[str, torch.Tensor], batch: Batch) -> None:
        """agent.nan_guard after every update: a non-finite one stops the run before anything is saved."""
        try:
            self.nan_guard.check(update, batch)
        except NonFiniteUpdate as fault:
            self.stop_non_finite(fault, batch)

    def stop_non_finite(self, fault: NonFiniteUpdate, batch: Batch | None) -> None:
        saved = ""
        if batch is not None:
            path = self.run_dir / f"nonfinite_batch_step_{self.step:09d}.pt"
            torch.save(batch_tensors(batch), path)
            saved = f"; the batch is in {path}"
        kept = f"the last good checkpoint {self.last_checkpoint} is kept" if self.last_checkpoint else \
            "no checkpoint had been written yet"
        note = f" ({fault.batch_note})" if fault.batch_note else ""
        raise RunFailure(f"non-finite {fault.quantity} at step {self.step} (update {self.parts.agent.num_updates})"
                         f"{note}: training stopped and nothing was saved from that update; {kept}{saved}; "
                         "lower the learning rates or set agent.max_grad_norm (or fix the environment's "
                         "rewards/observations), then restart or resume") from None

    def record_video(self, tracker: Tracker) -> None:
        """The first evaluation episode again, rendered to videos/step_<N>-episode-0.mp4 and logged to W&B."""
        env = make_env(self.run.env, render_mode="rgb_array")
        paths = record_episode(self.parts.agent, env, self.run_dir / "videos", f"step_{self.step:09d}",
                               seed=self.run.seed + EVAL_SEED_OFFSET)
        tracker.log_videos(self.step, "eval/video", paths)

    # ---- checkpoints --------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        c = self.run.checkpoint
        buffer_state = self.parts.buffer.state_dict() if c.save_buffer else None
        self.last_checkpoint = save_checkpoint(self.run_dir, self.step, self.checkpoint_payload(), buffer_state,
                                               keep_last=c.keep_last)
        return self.last_checkpoint

    def save_best(self) -> None:
        """checkpoints/best.pt: the agent of this (new best) evaluation, at every new best."""
        save_best(self.run_dir, self.checkpoint_payload(), self.best_step, self.sign * self.best_eval)

    def checkpoint_payload(self) -> dict:
        if self.nan_guard is not None:  # a checkpoint never holds a non-finite weight
            try:
                self.nan_guard.check_parameters()
            except NonFiniteUpdate as fault:
                self.stop_non_finite(fault, None)
        spaces = self.parts.spaces
        return {
            "config": self.resolved, "obs_dim": spaces.obs_dim, "action_dim": spaces.action_dim,
            "discrete": spaces.discrete, "agent": self.parts.agent.state_dict(),
            "loop": {"step": self.step, "episode": self.episode, "best_eval": self.best_eval,
                     "best_step": self.best_step, "last_eval": self.last_eval, "evaluations": self.evaluations,
                     "env_failures": self.env_failures},
            "episode_replay": self.recorder.state_dict(), "obs": torch.as_tensor(self.obs),
            "rng": capture_rng(self.parts.env), "wandb_run_id": self.wandb_run_id,
        }

    def restore(self, checkpoint: dict, path: Path) -> None:
        """Continue from `checkpoint`: agent, buffer, counters, the current episode, then the RNGs."""
        loop = checkpoint["loop"]
        if loop["step"] >= self.run.schedule.steps:
            raise ConfigError(f"nothing to resume: {path} is at step {loop['step']}, the run's last step; "
                              f"raise schedule.total_steps to train it longer")
        agent, buffer = self.parts.agent, self.parts.buffer
        agent.load_state_dict(checkpoint["agent"])
        buffer_state = load_buffer_state(path, checkpoint)
        if buffer_state is not None:
            buffer.load_state_dict(buffer_state)
        else:
            log.warning("%s has no saved replay buffer (checkpoint.save_buffer=false, or an older checkpoint "
                        "whose buffer was pruned): the buffer refills from scratch, so the run is not exact", path)
        self.step, self.episode = loop["step"], loop["episode"]
        self.best_eval, self.last_eval = loop["best_eval"], dict(loop["last_eval"])
        self.best_step = loop.get("best_step", 0)  # checkpoints before best.pt held its own agent: 0
        self.evaluations = loop["evaluations"]
        self.env_failures = loop.get("env_failures", 0)
        self.obs, _ = self.recorder.replay(self.parts.env, checkpoint["episode_replay"], checkpoint["obs"].numpy())
        restore_rng(checkpoint["rng"], self.parts.env)
        self.last_checkpoint = path


def _close_quietly(env: gym.Env) -> None:
    try:
        env.close()
    except Exception:  # a broken environment may not close cleanly either
        pass


def _print_summary(final: dict[str, float], run_dir: Path, tracker: Tracker) -> None:
    rows = {
        "final eval return": f"{final['eval/return_mean']:.1f} ± {final['eval/return_std']:.1f}",
        "best eval return": f"{final['eval/best_return_mean']:.1f} at step {final['eval/best_step']} "
                            f"(checkpoints/best.pt)",
        "episodes": int(final["train/episodes"]),
        "wall time": f"{final['time/elapsed']:.0f} s ({final['time/sps_overall']:.0f} steps/s)",
        "run directory": str(run_dir),
        "checkpoint": str(run_dir / "checkpoints" / "latest.pt"),
        "metrics": str(tracker.metrics_path),
    }
    if tracker.offline_segments:
        rows["upload to W&B"] = f"wandb sync {' '.join(str(p) for p in tracker.offline_segments)}"
    console.print(key_value_table("sac-train summary", rows))


register_configs()


@one_line_config_errors
@hydra.main(version_base="1.3", config_path="pkg://sac_runner.conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    """One run, or one job of a sweep; returns the evaluation return `sweep_objective` names (to a sweeper)."""
    hydra_cfg = HydraConfig.get()
    run_dir, overrides = Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task)
    job = SweepJob.from_hydra(hydra_cfg)
    if job is None:
        return sweep_objective(train(cfg, run_dir, overrides), cfg.sweep_objective)
    configure_job(cfg, job, run_dir)
    return run_job(lambda: sweep_objective(train(cfg, run_dir, overrides, job.parallel_jobs), cfg.sweep_objective),
                   job, run_dir)


def sweep_objective(final: dict[str, float], which: str) -> float:
    return final["eval/best_return_mean" if which == "best" else "eval/return_mean"]


if __name__ == "__main__":
    main()
