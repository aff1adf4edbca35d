"""`train()`: one run from its config to its summary. It reads as the table of contents of a run; each
line is a named step whose details live in the module that owns them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sac_runner.config import RunConfig
from sac_runner.run.run_config import to_run_config
from sac_runner.errors import ConfigError
from sac_runner.run.builders import make_parts, seed_everything, warm_start
from sac_runner.run.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from sac_runner.run.console import console, key_value_table
from sac_runner.run.hardware import RunRegistry, TorchThreads
from sac_runner.run.loop import Trainer
from sac_runner.run.rendering import prepare_rendering
from sac_runner.run.resumed_config import resumed_config
from sac_runner.run.run_dir import RunDir, point_latest_at
from sac_runner.run.signals import StopOnSignals
from sac_runner.run.tracker import Tracker, truncate_metrics

log = logging.getLogger(__name__)


def train(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
          parallel_jobs: int = 1, sweep_job: str | None = None) -> dict[str, float]:
    """Train one SAC agent as `cfg` says (or continue the run `resume=` names); return the final evaluation.

    `overrides` are the command line's (Hydra's task overrides); with resume= only harmless ones apply.
    `parallel_jobs` is how many runs share this machine's cores (a local parallel sweep).
    `sweep_job` names the sweep job this run is (None for a single run): a sweep started again resumes
    its stopped jobs and returns the finished ones' last evaluation without training them again.
    """
    start = new_or_resumed(cfg, overrides or [])
    if start.finished:
        return already_finished(start, sweep_job)
    run_dir = RunDir(run_dir)
    if start.checkpoint is None:
        refuse_to_overwrite(run_dir)
    with RunRegistry(run_dir=run_dir.path) as registry:
        threads = TorchThreads(start.run.threads, parallel_jobs, registry)
        seed_everything(start.run.seed)
        parts = make_parts(start.run)
        try:
            if start.run.logging.video_every_evals:
                prepare_rendering(parts.eval_env)  # refused now, in one line, not at the first video hours in
            trainer = Trainer(start.run, parts, run_dir, start.resolved, threads)
            continue_or_warm_start(trainer, start)
            log.info("%s", threads.choice.describe())  # once every check has passed: a refused run prints one line
            parts.compile_choice.log()
            log.info("run directory: %s (%s)", run_dir.path, parts.agent.device)
            log.info("replay buffer: %s", parts.buffer.describe())
            with Tracker(run_dir, start.run.logging, start.resolved, run_name=run_dir.path.name,
                         resume_id=start.wandb_run_id) as tracker, StopOnSignals() as stop:
                if start.checkpoint is None:  # every check has passed: the run exists from here on
                    point_latest_at(run_dir.path)
                final = trainer.train(tracker, stop)
                if not stop.requested:
                    print_summary(final, run_dir, tracker)
        finally:
            parts.close()
    if stop.requested:  # after the W&B run has finished cleanly: it is paused, not failed
        pause(stop, trainer, sweep_job)
    return final


@dataclass
class Start:
    """Where a run starts: its validated config, and the checkpoint it resumes from, if any."""

    run: RunConfig
    resolved: dict                       # the resolved config: saved in checkpoints, given to W&B
    checkpoint: Checkpoint | None = None

    @property
    def wandb_run_id(self) -> str | None:
        return self.checkpoint.wandb_run_id if self.checkpoint else None

    @property
    def finished(self) -> bool:
        """A resumed run whose checkpoint is at its last step (schedule.total_steps as resumed)."""
        return self.checkpoint is not None and self.checkpoint.loop.step >= self.run.schedule.steps


def new_or_resumed(cfg: DictConfig, overrides: list[str]) -> Start:
    """A new run's config, or (resume=) the checkpoint's own config with the harmless overrides applied."""
    checkpoint = None
    if cfg.get("resume"):
        path = resolve_checkpoint_path(cfg.resume)
        checkpoint = load_checkpoint(path)
        cfg = resumed_config(cfg, checkpoint.config, overrides, source=str(path))
    return Start(to_run_config(cfg), OmegaConf.to_container(cfg, resolve=True), checkpoint)


def already_finished(start: Start, sweep_job: str | None) -> dict[str, float]:
    """A finished run is not trained again: resume= of one is refused with the way to extend it; a
    finished job of a sweep started again returns its last evaluation (what the sweeper records)."""
    loop, path = start.checkpoint.loop, start.checkpoint.path
    if sweep_job is None:
        raise ConfigError(f"nothing to resume: {path} is at step {loop.step}, the run's last step; "
                          "raise schedule.total_steps to train it longer")
    final = {**loop.last_eval, "time/elapsed": loop.elapsed}
    log.info("%s finished before, at step %d (%s): not trained again; its last evaluation: %.1f", sweep_job,
             loop.step, path, final["eval/return_mean"])
    return final


def refuse_to_overwrite(run_dir: RunDir) -> None:
    """A new run never writes over another run's checkpoints or metrics (hydra.run.dir=<an old run>)."""
    held = run_dir.existing_run()
    if held is None:
        return
    raise ConfigError(f"{run_dir.path} already holds a run ({held}); continue it with: sac-train "
                      f"resume={run_dir.path}, or start this run in another directory (hydra.run.dir=...)")


def continue_or_warm_start(trainer: Trainer, start: Start) -> None:
    """A resumed run continues from its checkpoint; a new one may start from another run's networks."""
    if start.checkpoint is not None:
        trainer.restore(start.checkpoint)
        dropped = truncate_metrics(trainer.run_dir, trainer.state.step)
        log.info("resumed %s at step %d%s", trainer.run_dir.path, trainer.state.step,
                 f" ({dropped} metric records after the checkpoint dropped)" if dropped else "")
    elif start.run.init_from:
        warm_start(trainer.parts.agent, trainer.parts.spaces, start.run.init_from)


def print_summary(final: dict[str, float], run_dir: RunDir, tracker: Tracker) -> None:
    rows = {
        "final eval return": f"{final['eval/return_mean']:.1f} ± {final['eval/return_std']:.1f}",
        "best eval return": f"{final['eval/best_return_mean']:.1f} at step {final['eval/best_step']} "
                            f"({run_dir.best_checkpoint.relative_to(run_dir.path)})",
        "episodes": int(final["train/episodes"]),
        **({"stopped": f"at step {final['health/stopped_at']} by health.on_collapse=stop (alerts: "
                       f"{run_dir.alerts.relative_to(run_dir.path)})"} if "health/stopped_at" in final else {}),
        **({"rolled back": f"{final['health/rollbacks']} time{'s' if final['health/rollbacks'] > 1 else ''} by "
                           f"health.on_collapse=rollback, learning rates now x{final['health/lr_scale']:g} (alerts: "
                           f"{run_dir.alerts.relative_to(run_dir.path)})"} if "health/rollbacks" in final else {}),
        "wall time": f"{final['time/elapsed']:.0f} s ({final['time/sps_overall']:.0f} steps/s)",
        "run directory": str(run_dir.path),
        "checkpoint": str(run_dir.latest_checkpoint),
        "metrics": str(tracker.metrics_path),
    }
    if tracker.offline_segments:
        rows["upload to W&B"] = f"wandb sync {' '.join(str(p) for p in tracker.offline_segments)}"
    console.print(key_value_table("sac-train summary", rows))


def pause(stop: StopOnSignals, trainer: Trainer, sweep_job: str | None = None) -> None:
    """A signal stopped the run after its checkpoint: say how it continues, hand over, exit 128 + signal."""
    if stop.scheduler_takes_over:
        then = "the job scheduler requeues the job, which resumes from it"
    elif sweep_job is not None:
        then = (f"continue the sweep with the same sac-train -m command (its jobs resume), or this job alone with: "
                f"sac-train resume={trainer.run_dir.path}")
    else:
        then = f"continue with: sac-train resume={trainer.run_dir.path}"
    console.print(f"[bold]{stop.signal_name}[/bold]: stopped at step {trainer.state.step} of "
                  f"{trainer.cadence.total_steps} and saved {trainer.last_checkpoint}; {then}")
    stop.hand_over()
    raise SystemExit(128 + stop.signal_number)
