"""What a run does differently as one job of a Hydra multirun (`sac-train -m ...`, any launcher or sweeper).

- W&B: every job of a sweep goes in one W&B group (the sweep directory's name, unless logging.group
  is set), named by its job number and overrides.
- Threads: a local parallel launcher's jobs share the cores (see hardware.choose_threads).
- Failures: a job that fails writes `failure.txt` (its overrides and the error) into its directory,
  logs one line, and returns NaN to the sweeper (Optuna records a failed trial); the other jobs go on,
  and `SweepSummary` lists the failed jobs when the sweep ends and exits non-zero.
- Started again: a job whose directory already holds its checkpoint (Slurm requeued it after a
  preemption or time-out, or the sweep was stopped and its command run again) resumes from that
  checkpoint; a job that had finished is not trained again, and its last evaluation goes to the sweeper.
- Stopped: Ctrl-C (SIGINT or SIGTERM) stops every running job after its checkpoint. On a parallel
  launcher the launcher waits for them (signals.LauncherWaitsForJobs), the jobs still queued do not
  start, and the sweep ends with one line saying how it continues (the same command).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from sac_runner.run.console import console
from sac_runner.run.hardware import usable_cores
from sac_runner.run.run_dir import HYDRA, RunDir
from sac_runner.run.signals import LauncherWaitsForJobs, record_stop_signals, stop_received

log = logging.getLogger(__name__)

INFRASTRUCTURE = ("device", "threads", "resume", "sweep_objective")


@dataclass
class SweepJob:
    sweep_dir: Path
    num: int
    overrides: list[str]
    parallel_jobs: int  # jobs a local parallel launcher runs at once (1 for sequential launchers)

    @property
    def experiment_overrides(self) -> list[str]:
        return experiment_overrides(self.overrides)

    @property
    def label(self) -> str:
        return f"job {self.num} ({' '.join(self.experiment_overrides) or 'no overrides'})"

    @classmethod
    def from_hydra(cls, hydra_cfg: Any) -> "SweepJob | None":
        """The job this process runs, or None outside a multirun."""
        if str(hydra_cfg.mode) != "RunMode.MULTIRUN":
            return None
        return cls(Path(hydra_cfg.sweep.dir), int(hydra_cfg.job.num), list(hydra_cfg.overrides.task),
                   jobs_side_by_side(hydra_cfg))


def experiment_overrides(overrides: list[str]) -> list[str]:
    """The overrides that shape the experiment (not where it logs, runs or how many threads it uses)."""
    return [o for o in overrides if o.split("=")[0].lstrip("+~") not in INFRASTRUCTURE
            and not o.startswith(("logging.", "logging=", "hydra"))]


def jobs_side_by_side(hydra_cfg: Any) -> int:
    """Jobs a local parallel launcher (joblib) runs at once; 1 for a single run or a sequential launcher.
    joblib's n_jobs=-1 means one job per core."""
    if str(hydra_cfg.mode) != "RunMode.MULTIRUN":
        return 1
    n_jobs = hydra_cfg.launcher.get("n_jobs")
    if n_jobs is None:
        return 1
    return usable_cores() if int(n_jobs) < 0 else int(n_jobs)


def configure_job(cfg: DictConfig, job: SweepJob, run_dir: Path) -> None:
    """W&B group and name for the job; resume its own checkpoint if the job was started again (requeued,
    or the sweep's command run again)."""
    with open_dict(cfg):
        if cfg.logging.group is None:
            cfg.logging.group = job.sweep_dir.name
        if cfg.logging.get("name") is None:
            cfg.logging.name = f"{job.num}: {' '.join(job.experiment_overrides)}".rstrip(": ")
        if not cfg.get("resume") and RunDir(run_dir).latest_checkpoint.exists():
            log.info("%s: its directory holds a checkpoint (the job was requeued, or the sweep started again): "
                     "resuming it", job.label)
            cfg.resume = str(run_dir)


def run_job(train_job: Callable[[], float], job: SweepJob, run_dir: Path) -> float:
    """Run one job; a failure is recorded in its directory and returned to the sweeper as NaN.

    In a parallel launcher's worker process, a job stopped by a signal (checkpoint saved) returns NaN
    too rather than exiting, so that the launcher waits for the other running jobs' checkpoints instead
    of killing their workers; the jobs queued after the signal do not start."""
    in_worker = multiprocessing.parent_process() is not None
    if in_worker:
        record_stop_signals()
        if stop_received() is not None:
            return not_started(job, run_dir)
    failure = RunDir(run_dir).failure
    failure.unlink(missing_ok=True)  # from an earlier attempt of a requeued job
    try:
        return train_job()
    except SystemExit:
        if in_worker and stop_received() is not None:
            return math.nan  # stopped by the signal after its checkpoint, which it logged
        raise
    except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the sweep
        one_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        run_dir.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"overrides: {' '.join(job.experiment_overrides)}\nerror: {one_line}\n\n"
                                            f"{traceback.format_exc()}", encoding="utf-8")
        log.error("%s failed: %s (details in %s)", job.label, one_line, failure)
        return math.nan


def not_started(job: SweepJob, run_dir: Path) -> float:
    """A job that reached a worker after the sweep was stopped: it does not start, and the directory
    Hydra has just made for it goes (unless an earlier attempt left a run or a failure there)."""
    log.info("%s: not started, the sweep was stopped", job.label)
    if all(p.name == HYDRA.name or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
    return math.nan


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep (those Hydra wrote overrides into), in job order."""
    found = [p for p in sweep_dir.iterdir() if RunDir(p).overrides.exists()] if sweep_dir.is_dir() else []
    return sorted(found, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


class SweepSummary(Callback):
    """At the end of a multirun: how many jobs finished, each failed job with its overrides, and each
    job that stopped before its last step (a signal sent to its worker alone, health.on_collapse=stop).
    Exits with status 1 when a job failed or was stopped, so scripts and CI notice. A parallel sweep
    stopped by a signal says how it continues and exits with 128 + the signal's number, as a single
    run does."""

    def __init__(self) -> None:
        self.launcher: LauncherWaitsForJobs | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.launcher.get("n_jobs") not in (None, 1):
            self.launcher = LauncherWaitsForJobs().install()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = job_dirs(sweep_dir)
        failed = [d for d in jobs if RunDir(d).failure.exists()]
        stopped = {d: why for d in jobs if d not in failed and (why := stopped_early(d))}
        stopped_by = self.launcher.signal_name if self.launcher else None
        if self.launcher:
            self.launcher.restore()
        if stopped_by:
            console.print(f"sweep {sweep_dir} stopped by {stopped_by}: its running jobs saved their checkpoints; "
                          "continue it with the same sac-train -m command (jobs that finished are not trained "
                          "again)" + (f"; {len(failed)} failed:" if failed else ""), soft_wrap=True)
        else:
            finished = len(jobs) - len(failed) - len(stopped)
            console.print(f"sweep {sweep_dir}: {finished} of {len(jobs)} jobs finished"
                          + (f", {len(stopped)} stopped before their last step (the same sac-train -m command "
                             "continues them)" if stopped else "")
                          + (f", {len(failed)} failed:" if failed else ""), soft_wrap=True)
            for d, why in stopped.items():
                _job_line(d, " ".join(experiment_overrides(overrides_of(d))), str(why), RunDir(d).latest_checkpoint)
        for d in failed:
            lines = RunDir(d).failure.read_text(encoding="utf-8").splitlines()
            overrides, error = lines[0].removeprefix("overrides: "), lines[1].removeprefix("error: ")
            _job_line(d, overrides, error, RunDir(d).failure)
        if stopped_by:
            raise SystemExit(128 + self.launcher.signal_number)
        if failed or any(not why.by_health for why in stopped.values()):
            raise SystemExit(1)


def _job_line(job_dir: Path, overrides: str, what: str, where: Path) -> None:
    console.print(f"  job {job_dir.name} ({overrides}): {what}  [{where}]", markup=False,
                  highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class EarlyStop:
    """A job that ended before its last step without failing: a signal sent to its worker alone (the
    launcher did not see it), a hard kill, or health.on_collapse=stop."""

    step: int | None  # its newest checkpoint's (None: none yet)
    total: int
    by_health: bool

    def __str__(self) -> str:
        if self.step is None:
            return f"stopped before its first checkpoint, of {self.total} steps"
        return f"stopped at step {self.step} of {self.total}" + (" by health.on_collapse=stop" if self.by_health else "")


def stopped_early(job_dir: Path) -> EarlyStop | None:
    """How a job that has not failed ended before its last step, or None if it reached it."""
    run_dir = RunDir(job_dir)
    total = planned_steps(OmegaConf.load(run_dir.config)) if run_dir.is_run() else None
    step = run_dir.checkpointed_step()
    if total is None or (step is not None and step >= total):
        return None
    return EarlyStop(step, total, any(alert.get("kind") == "stop" for alert in run_dir.alert_records()))


def planned_steps(config: DictConfig) -> int | None:
    """The environment steps a run's config asks for (schedule.total_steps, or epochs x steps_per_epoch)."""
    schedule = config.get("schedule", {})
    if schedule.get("epochs") is not None and schedule.get("steps_per_epoch") is not None:
        return int(schedule.epochs) * int(schedule.steps_per_epoch)
    return None if schedule.get("total_steps") is None else int(schedule.total_steps)


def overrides_of(run_dir: Path) -> list[str]:
    """The command-line overrides a run (or sweep job) was started with."""
    path = RunDir(run_dir).overrides
    return [str(o) for o in OmegaConf.load(path)] if path.exists() else []
