"""The training loop of one run. Each environment step (or vector step of env.num_envs environments):
collect transitions, learn when updates are due, then log, evaluate and checkpoint when due.
`Cadence` holds the when, the `Trainer` the what, `LoopState` the loop's own counters; the Trainer
gathers every component's state into one `Checkpoint` and gives it back on resume."""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from sac_runner.algo.compilation import CaptureFailed
from sac_runner.algo.replay_buffer import Batch
from sac_runner.config import RunConfig
from sac_runner.errors import RunFailure
from sac_runner.run.builders import Parts
from sac_runner.run.cadence import Cadence, Throughput
from sac_runner.run.checkpoint import Checkpoint, load_checkpoint, save_best, save_checkpoint
from sac_runner.run.console import TrainingProgress
from sac_runner.run.envs import make_env
from sac_runner.run.evaluation import EVAL_SEED_OFFSET, EvalResult, evaluate, record_episode
from sac_runner.run.exact_resume import capture_rng, restore_rng
from sac_runner.run.hardware import TorchThreads
from sac_runner.run.health import Alert, HealthMonitor
from sac_runner.run.loop_state import LoopState
from sac_runner.run.nan_guard import NanGuard, NonFiniteUpdate, batch_tensors, non_finite_inputs
from sac_runner.run.run_dir import RunDir
from sac_runner.run.signals import StopOnSignals
from sac_runner.run.tracker import Tracker
from sac_runner.run.vector_env import VectorEnvs

log = logging.getLogger(__name__)


class Trainer:
    """The training loop of one run."""

    def __init__(self, run: RunConfig, parts: Parts, run_dir: RunDir, resolved: dict,
                 threads: TorchThreads | None = None):
        self.run, self.parts, self.run_dir, self.resolved = run, parts, run_dir, resolved
        self.threads = threads  # re-counted now and then: other runs on this machine start and stop
        self.cadence = Cadence(run)
        self.state = LoopState()
        # "Best" follows the objective: the highest return, or the lowest cost (sign = -1).
        self.sign = 1.0 if run.agent.objective == "maximize" else -1.0
        self.obs: np.ndarray | None = None  # the environments' current observations, one row each
        self.last_checkpoint: Path | None = None
        self.wandb_run_id: str | None = None
        self.nan_guard = NanGuard(parts.agent) if run.nan_guard else None
        self.metrics: dict[str, torch.Tensor] = {}  # the latest update's, logged every log_every steps
        self.health = HealthMonitor(run.health, run.seed) if run.health.enabled else None
        self.stopped_by_health = False  # health.on_collapse=stop ended the run
        self.clock = Throughput()

    # ---- the loop -------------------------------------------------------------------------------------
    def train(self, tracker: Tracker, stop: StopOnSignals | None = None) -> dict[str, float]:
        self.tracker, self.wandb_run_id = tracker, tracker.run_id
        if self.obs is None:  # a new run (a resumed one has replayed its current episodes)
            self.start_episodes(seed=self.run.seed)
        state, total = self.state, self.cadence.total_steps
        self.clock, first_step = Throughput(state.elapsed), state.step  # counting the seconds trained before
        with TrainingProgress(total, enabled=self.run.logging.progress, start=state.step) as self.progress, \
                self.stop_on_failed_capture():
            while not self.cadence.is_last(state.step):
                before = state.step
                state.step += self.num_envs * self.cadence.repeat  # environment steps (frames)
                self.collect()
                if updates := self.cadence.update_events(before, state.step):
                    self.learn(updates)
                self.clock.tick(self.num_envs * self.cadence.repeat)
                if self.cadence.logs(before, state.step):
                    self.log_training()
                if self.cadence.evaluates(before, state.step):
                    self.evaluate()
                stopping = stop is not None and stop.requested
                if self.cadence.checkpoints(before, state.step) or stopping or self.stopped_by_health:
                    self.save_checkpoint()
                if stopping:
                    return dict(state.last_eval)
                if self.stopped_by_health:
                    break
                if self.cadence.refreshes_progress(before, state.step):
                    self.progress.update(state.step)
                self.share_cpus()
            self.progress.update(state.step)
        return self.final_metrics(first_step)

    def final_metrics(self, first_step: int) -> dict[str, float]:
        """The last evaluation, health's verdict and the run's throughput: what sac-train returns."""
        health = {"health/stopped_at": self.state.step} if self.stopped_by_health else {}
        if self.health is not None and self.health.rollbacks:
            health |= {"health/rollbacks": self.health.rollbacks, "health/lr_scale": self.parts.agent.lr_scale}
        return {**self.state.last_eval, **health, "time/elapsed": self.clock.elapsed(),
                "time/sps_overall": (self.state.step - first_step) / max(self.clock.segment(), 1e-9),
                "train/episodes": self.state.episode}

    @contextmanager
    def stop_on_failed_capture(self):
        """A CUDA graph that could not be captured ends the run with what was kept and how to go on."""
        try:
            yield
        except CaptureFailed as failed:
            raise RunFailure(f"step {self.state.step}: {failed}; {self._kept('the last checkpoint')}; to go on from it: "
                             f"sac-train resume={self.run_dir.path} agent.compile=compile") from failed

    @property
    def num_envs(self) -> int:
        return self.run.env.num_envs

    def start_episodes(self, seed: int | None) -> None:
        """Every environment's first episode; environment i's reset is seeded with seed + i."""
        self.obs = self.parts.env.reset_all(seed=seed)
        self.parts.agent.normalizer.update(self.obs)

    def collect(self) -> None:
        """One step of every environment: a batched action (uniform random during warm-up, then sampled
        from the policy), each environment's transition stored in its own stream of the buffer; an
        environment whose episode ended is reset after its transition is stored."""
        envs, agent = self.parts.env, self.parts.agent
        actions = envs.action_space.sample() if self.cadence.acts_randomly(self.state.step) else agent.act(self.obs)
        envs.record(actions)
        try:
            next_obs, reward, terminated, truncated, info = envs.step(actions)
        except Exception as error:  # a broken environment: all rebuilt, up to env.max_failures times
            self.replace_broken_env(error)
            return
        # Only `terminated` cuts the bootstrap; a time-limit truncation is not the end of the MDP.
        for i in range(self.num_envs):
            self.parts.buffer.add(self.obs[i], actions[i], reward[i], next_obs[i], terminated[i], truncated[i],
                                  stream=i)
        agent.normalizer.update(next_obs)
        self.obs = next_obs  # a fresh array each step; the rows of reset environments are replaced below
        for i in np.flatnonzero(terminated | truncated):
            self.end_episode(float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))
            self.obs[i] = envs.reset(int(i))
            agent.normalizer.update(self.obs[i])

    def end_episode(self, episode_return: float, length: int) -> None:
        state = self.state
        state.episode += 1
        self.tracker.log(state.step, {"train/episode_return": episode_return, "train/episode": state.episode,
                                      "train/episode_length": length})
        self.progress.update(state.step, train_return=episode_return)

    def learn(self, updates: int) -> None:
        """`updates` x schedule.gradient_steps gradient steps on batches from the buffer."""
        agent, buffer, s = self.parts.agent, self.parts.buffer, self.run.schedule
        if agent.decays_lr:
            agent.set_lr_progress(self.cadence.lr_progress(self.state.step))
        if buffer.prioritized:
            buffer.set_progress(self.cadence.fraction_done(self.state.step))
        # nan_guard reads its checks after each update where that costs no wait for a GPU (on a CPU; with
        # prioritized replay, whose priorities come to the host anyway), else once after the step's updates.
        read_each = agent.device.type == "cpu" or buffer.prioritized
        watched: list[tuple[torch.Tensor, dict[str, torch.Tensor], Batch]] = []
        for i in range(total := updates * s.gradient_steps):
            batch = buffer.sample(s.batch_size)
            update = agent.update(batch)
            if self.nan_guard is not None:
                watched.append((self.nan_guard.finite(update.metrics), update.metrics, batch))
                if read_each or i == total - 1:
                    self.check_updates(watched)
                    watched.clear()
            self.metrics.update(update.metrics)
            if buffer.prioritized:
                buffer.update_priorities(update.td_error)

    def log_training(self) -> None:
        agent, buffer = self.parts.agent, self.parts.buffer
        sps, elapsed = self.clock.window()
        if agent.decays_lr or agent.lr_scale != 1.0:  # decaying, or lowered by a rollback
            self.metrics.update({f"train/{n}_lr": torch.tensor(lr) for n, lr in agent.learning_rates().items()})
        compiling = {"time/compile_s": agent.compile_seconds} if agent.compile_mode != "off" else {}
        self.tracker.log(self.state.step, {**{k: v.item() for k, v in self.metrics.items()}, "time/sps": sps,
                                     "time/elapsed": elapsed, "time/agent_steps": self.state.step // self.cadence.repeat,
                                     "buffer/size": len(buffer),
                                     "buffer/bytes_per_transition": buffer.bytes_per_transition, **compiling})
        self.progress.update(self.state.step, sps=sps)

    def evaluate(self) -> None:
        """Evaluation episodes; a new best is saved as best.pt; every K-th evaluation is also filmed."""
        self.state.last_eval = self.run_evaluation().summary()
        is_best = self.sign * self.state.last_eval["eval/return_mean"] > self.state.best_eval
        if is_best:
            self.state.best_eval, self.state.best_step = self.sign * self.state.last_eval["eval/return_mean"], self.state.step
        self.state.last_eval["eval/best_return_mean"] = self.sign * self.state.best_eval
        self.state.last_eval["eval/best_step"] = self.state.best_step
        if is_best and self.run.checkpoint.keep_best:
            self.save_best()
        health = self.check_health() if self.health is not None else {}
        self.tracker.log(self.state.step, {**self.state.last_eval, **health, "time/elapsed": self.clock.elapsed()})
        self.state.evaluations += 1
        video_every = self.run.logging.video_every_evals
        if video_every and self.state.evaluations % video_every == 0:
            self.record_video()
        self.progress.update(self.state.step, eval_return=self.state.last_eval["eval/return_mean"])
        log.info("step %d: eval return %.1f +- %.1f", self.state.step, self.state.last_eval["eval/return_mean"],
                 self.state.last_eval["eval/return_std"])

    # ---- health (run/health.py) ------------------------------------------------------------------------
    def check_health(self) -> dict[str, float]:
        """The health/ measurements of this evaluation, the alerts they raise, and health.on_collapse."""
        agent, started = self.parts.agent, time.perf_counter()
        env = make_env(self.run.env)  # its own: the evaluation environment's state stays evaluation's
        try:
            metrics = self.health.measure(agent, self.parts.buffer, env)
        finally:
            _close_quietly(env)
        metrics["time/health_s"] = time.perf_counter() - started  # their cost, against the training between evaluations
        for alert in self.health.check(self.state.step, metrics, agent.learns_alpha):
            self.raise_alert(alert)
        collapse = self.health.collapsed(self.state.step, self.sign * self.state.last_eval["eval/return_mean"], self.state.best_eval,
                                         self.state.best_step, self.sign)
        if collapse is not None:
            self.act_on_collapse(collapse)
        return {**metrics, "health/alerts": len(self.health.alert_steps), "health/rollbacks": self.health.rollbacks}

    def act_on_collapse(self, alert: Alert) -> None:
        """health.on_collapse: warn, roll back to the best agent (buffer and step kept), or stop the run."""
        health, best = self.run.health, f"checkpoints/best.pt, step {self.state.best_step}"
        action = health.on_collapse
        if action == "rollback" and self.run_dir.best_checkpoint.exists():
            agent = self.parts.agent
            best_agent = load_checkpoint(self.run_dir.best_checkpoint, map_location=agent.device).agent
            agent.roll_back_to(best_agent, lr_factor=health.rollback_lr_factor)
            agent.set_lr_progress(self.cadence.lr_progress(self.state.step))
            lr_scale = agent.lr_scale
            self.health.rolled_back()
            then = (f"rolled back to the best agent ({best}), buffer and step kept, learning rates now "
                    f"x{lr_scale:g} of the configured ones (health.on_collapse=rollback, "
                    f"health.rollback_lr_factor={health.rollback_lr_factor:g})")
        elif action == "stop":
            self.stopped_by_health = True
            then = f"the run stops here (health.on_collapse=stop); its best agent is kept ({best})"
        else:
            then = "health.on_collapse=rollback would restore the best agent, health.on_collapse=stop end the run"
        self.raise_alert(dataclasses.replace(alert, kind=action if action != "warn" else alert.kind,
                                             text=f"{alert.text}; {then}"))

    def raise_alert(self, alert: Alert) -> None:
        log.warning("step %d: health alert: %s", alert.step, alert.text)
        self.tracker.alert(alert.record())

    def share_cpus(self) -> None:
        """threads=auto: follow the other sac-runner runs that start and stop on this machine."""
        if self.threads is not None and (choice := self.threads.refresh()) is not None:
            log.info("step %d: now %s", self.state.step, choice.describe())

    def run_evaluation(self) -> EvalResult:
        """Evaluation episodes on the evaluation environment; if it raises in step, it is rebuilt and the
        evaluation starts again (its episodes have fixed seeds), up to env.max_failures in all."""
        while True:
            try:
                return evaluate(self.parts.agent, self.parts.eval_env, self.run.schedule.eval_episodes,
                                seed=self.run.seed + EVAL_SEED_OFFSET)
            except Exception as error:
                self.count_env_failure(error, "evaluation environment", {"eval/broken": 1})
                log.warning("evaluation restarted on a rebuilt environment")
                _close_quietly(self.parts.eval_env)
                self.parts.eval_env = make_env(self.run.env)

    def record_video(self) -> None:
        """The first evaluation episode again, rendered to videos/step_<N>-episode-0.mp4 and logged to W&B."""
        env = make_env(self.run.env, render_mode="rgb_array")
        paths = record_episode(self.parts.agent, env, self.run_dir.videos, self.run_dir.video_prefix(self.state.step),
                               seed=self.run.seed + EVAL_SEED_OFFSET)
        self.tracker.log_videos(self.state.step, "eval/video", paths)

    # ---- faults ---------------------------------------------------------------------------------------
    def replace_broken_env(self, error: Exception) -> None:
        """The training environment raised in `step`: record the episode as broken, close its last
        transition like a time limit, rebuild the environment and start a new episode."""
        self.state.episode += self.num_envs  # every environment's episode (which one raised is unknown)
        for stream in range(self.num_envs):
            self.parts.buffer.end_episode(stream)
        self.count_env_failure(error, "environment", {"train/broken_episode": self.state.episode})
        log.warning("episode %d recorded as broken, environment rebuilt", self.state.episode)
        _close_quietly(self.parts.env)
        seed = (self.run.seed + self.state.env_failures) % 2**32  # a fresh stream for the new environments' resets
        self.parts.env = VectorEnvs(self.run.env, seed=seed)
        self.start_episodes(seed=seed)

    def count_env_failure(self, error: Exception, which: str, record: dict) -> None:
        """One more exception from an environment's step; past env.max_failures the run stops (the last
        checkpoint stays as it was)."""
        self.state.env_failures += 1
        self.tracker.log(self.state.step, {**record, "train/env_failures": self.state.env_failures})
        what = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        allowed = self.run.env.max_failures
        if self.state.env_failures > allowed:
            raise RunFailure(f"{which} {self.run.env.id} raised in step at step {self.state.step} ({what}), "
                             f"failure {self.state.env_failures} with env.max_failures={allowed}: training stopped; "
                             f"{self._kept('the last checkpoint')}; fix the environment and resume, or raise "
                             "env.max_failures")
        log.warning("%s %s raised in step at step %d (%s), failure %d of %d allowed", which, self.run.env.id,
                    self.state.step, what, self.state.env_failures, allowed)

    def check_updates(self, watched: list[tuple[torch.Tensor, dict[str, torch.Tensor], Batch]]) -> None:
        """nan_guard after this step's updates: a non-finite one stops the run before anything is saved."""
        finite = torch.stack([flag for flag, _, _ in watched])
        if bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        _, metrics, batch = watched[first]
        update_number = self.parts.agent.num_updates - (len(watched) - 1 - first)
        try:
            self.nan_guard.check(metrics, batch)
            # Replayed CUDA graphs reuse their outputs: a later update's finite values may have replaced them.
            fault = NonFiniteUpdate("losses", non_finite_inputs(batch))
        except NonFiniteUpdate as found:
            fault = found
        self.stop_non_finite(fault, batch, update_number)

    def stop_non_finite(self, fault: NonFiniteUpdate, batch: Batch | None, update_number: int | None = None) -> None:
        saved = ""
        if batch is not None:
            path = self.run_dir.nonfinite_batch(self.state.step)
            torch.save(batch_tensors(batch), path)
            saved = f"; the batch is in {path}"
        note = f" ({fault.batch_note})" if fault.batch_note else ""
        update_number = self.parts.agent.num_updates if update_number is None else update_number
        raise RunFailure(f"non-finite {fault.quantity} at step {self.state.step} (update {update_number})"
                         f"{note}: training stopped and nothing was saved from that update; "
                         f"{self._kept('the last good checkpoint')}{saved}; lower the learning rates or set "
                         "agent.max_grad_norm (or fix the environment's rewards/observations), then restart or "
                         "resume") from None

    def _kept(self, what: str) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint had been written yet"
        return f"{what} {self.last_checkpoint} is kept"

    # ---- checkpoints ----------------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Everything it takes to continue this run exactly: the config, the agent, the loop's state, the
        health monitor's, the environments' current episodes, the RNGs and the W&B run id."""
        if self.nan_guard is not None:  # a checkpoint never holds a non-finite weight
            try:
                self.nan_guard.check_parameters()
            except NonFiniteUpdate as fault:
                self.stop_non_finite(fault, None)
        state = dataclasses.replace(self.state, elapsed=self.clock.elapsed())
        return Checkpoint(config=self.resolved, spaces=self.parts.spaces, agent=self.parts.agent.state_dict(),
                          loop=state, health=None if self.health is None else self.health.state_dict(),
                          episodes=self.parts.env.state_dict(), obs=self.obs, rng=capture_rng(self.parts.env),
                          wandb_run_id=self.wandb_run_id, step=state.step)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from `checkpoint`: agent, buffer, the loop's state, health, the current episodes, then
        the RNGs. A finished run never gets here (training.already_finished)."""
        self.parts.agent.load_state_dict(checkpoint.agent)
        buffer_state = checkpoint.load_buffer()
        if buffer_state is not None:
            self.parts.buffer.load_state_dict(buffer_state)
        else:
            log.warning("%s has no saved replay buffer (checkpoint.save_buffer=false, or an older checkpoint "
                        "whose buffer was pruned): the buffer refills from scratch, so the run is not exact",
                        checkpoint.path)
        self.state = dataclasses.replace(checkpoint.loop)
        if self.health is not None and checkpoint.health is not None:  # none with health off then, or older
            self.health.load_state_dict(checkpoint.health)
        self.obs = self.parts.env.replay(checkpoint.episodes, checkpoint.obs)
        restore_rng(checkpoint.rng, self.parts.env)
        self.last_checkpoint = checkpoint.path

    def save_checkpoint(self) -> Path:
        c = self.run.checkpoint
        buffer_state = self.parts.buffer.state_dict() if c.save_buffer else None
        self.last_checkpoint = save_checkpoint(self.run_dir, self.checkpoint(), buffer_state, keep_last=c.keep_last)
        return self.last_checkpoint

    def save_best(self) -> None:
        """checkpoints/best.pt: the agent of this (new best) evaluation, at every new best."""
        save_best(self.run_dir, self.checkpoint(), self.sign * self.state.best_eval)


def _close_quietly(env: gym.Env) -> None:
    try:
        env.close()
    except Exception:  # a broken environment may not close cleanly either
        pass
