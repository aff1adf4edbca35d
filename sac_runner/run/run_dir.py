"""The layout of a run directory: the one place that knows where a run keeps what.

    outputs/runs/<date>_<env>_seed<seed>/    (a sweep job: outputs/sweeps/<date>/<job number>/)
      .hydra/config.yaml, overrides.yaml     the composed config and the command line (Hydra writes them)
      .hydra/resumed_<time>/                 the same, for each resume
      train.log                              the log (Hydra's file handler)
      metrics.jsonl                          one JSON record per line, keyed by environment step
      checkpoints/step_<N>.pt                step checkpoints (the newest keep_last)
      checkpoints/step_<N>.buffer.pt         the replay buffer, beside the newest step checkpoint only
      checkpoints/latest.pt -> step_<N>.pt   the newest complete checkpoint
      checkpoints/best.pt                    the agent of the best evaluation so far
      videos/step_<N>-episode-0.mp4          evaluation videos (logging.video_every_evals)
      tensorboard/                           TensorBoard event files (logging.tensorboard=true)
      wandb/offline-run-<time>-<id>/         the W&B run (offline: upload with `wandb sync`)
      nonfinite_batch_step_<N>.pt            the batch of an update that went non-finite (nan_guard)
      failure.txt                            why a sweep job failed
    outputs/runs/latest -> <the newest run started from this directory>

Everything else asks `RunDir` for a path; changing a name here changes it everywhere. Hydra's own
config below `hydra.run.dir` uses the resolvers registered by `register_resolvers`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from sac_runner.errors import ConfigError

log = logging.getLogger(__name__)

RUNS = Path("outputs/runs")           # hydra.run.dir's parent (conf/config.yaml) for single runs
LATEST_RUN = RUNS / "latest"          # a link to the newest run started from this directory
HYDRA = Path(".hydra")
STEP_FILE = re.compile(r"^step_(\d{9})\.pt$")


@dataclass(frozen=True)
class RunDir:
    path: Path

    # ---- what sac-train writes ---------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest_checkpoint(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:09d}.pt"

    @staticmethod
    def buffer_file_of(step_file: Path) -> Path:
        """The replay buffer's file beside a step checkpoint."""
        return step_file.with_name(step_file.stem + ".buffer.pt")

    @staticmethod
    def is_step_checkpoint(path: Path) -> bool:
        return STEP_FILE.match(path.name) is not None

    @property
    def log(self) -> Path:
        """Hydra's job log: named after sac-train's module (cli/train.py)."""
        return self.path / "train.log"

    def checkpointed_step(self) -> int | None:
        """The step of the newest complete checkpoint (the one latest.pt points at), or None."""
        latest = self.latest_checkpoint
        found = STEP_FILE.match(os.readlink(latest)) if latest.is_symlink() else None
        return int(found.group(1)) if found else None

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def alerts(self) -> Path:
        """The health alerts the run raised, one JSON record a line (run/health.py)."""
        return self.path / "alerts.jsonl"

    def alert_records(self) -> list[dict]:
        """The health alerts the run raised, as written (a line torn by a hard kill is skipped)."""
        if not self.alerts.exists():
            return []
        records = []
        for line in self.alerts.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    @property
    def videos(self) -> Path:
        return self.path / "videos"

    def video_prefix(self, step: int) -> str:
        return f"step_{step:09d}"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def wandb(self) -> Path:
        """W&B creates `wandb/` inside the directory given to wandb.init: this one's parent."""
        return self.path / "wandb"

    def nonfinite_batch(self, step: int) -> Path:
        return self.path / f"nonfinite_batch_step_{step:09d}.pt"

    @property
    def failure(self) -> Path:
        return self.path / "failure.txt"

    # ---- what Hydra writes ---------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / HYDRA / "config.yaml"

    @property
    def overrides(self) -> Path:
        return self.path / HYDRA / "overrides.yaml"

    def is_run(self) -> bool:
        return self.config.exists()

    @staticmethod
    def configs_below(folder: Path) -> list[Path]:
        """The run directories at any depth below `folder` (not sweep launchers' or resumes' records)."""
        return [p.parent.parent for p in folder.rglob(str(HYDRA / "config.yaml"))
                if ".submitit" not in p.parts and "resumed_" not in p.parent.name]

    def existing_run(self) -> Optional[str]:
        """What shows that a run already lives here (its newest checkpoint, or its metrics), or None."""
        if self.latest_checkpoint.exists():
            return "its checkpoints/latest.pt"
        if self.metrics.exists() and self.metrics.stat().st_size > 0:
            return "its metrics.jsonl, and no checkpoint to resume from"
        return None

    @classmethod
    def of_checkpoint_file(cls, path: Path) -> "RunDir":
        """<run>/checkpoints/<file>.pt -> <run>."""
        return cls(path.resolve().parent.parent)


def resolve_latest(path: str) -> str:
    """`latest` (checkpoint=latest, resume=latest) names the newest run: outputs/runs/latest's target."""
    if path != "latest" or Path(path).exists():
        return path
    if not LATEST_RUN.is_symlink():
        raise ConfigError(f"latest: {LATEST_RUN} does not exist (no run was started from this directory); "
                          "give a run directory or .pt file instead")
    return str(LATEST_RUN.resolve())


def point_latest_at(run_dir: Path) -> None:
    """outputs/runs/latest -> the run just started (replaced atomically), for checkpoint=latest and
    resume=latest; only for runs in a `runs/` folder (not sweep jobs, not a hydra.run.dir elsewhere)."""
    if run_dir.parent.name != RUNS.name:
        return
    link = run_dir.parent / LATEST_RUN.name
    tmp = link.with_name(f".latest.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, link)
    except OSError as error:  # a convenience: never a reason to stop a run
        log.debug("could not point %s at %s: %s", link, run_dir, error)


# ---- Hydra resolvers (conf/config.yaml) ---------------------------------------------------------------

def run_dir_of(resume: Optional[str], new_run_dir: str) -> str:
    """hydra.run.dir: the resumed run's own directory, or a new one."""
    if not resume:
        return new_run_dir
    try:
        resume = resolve_latest(resume)
    except ConfigError:
        return new_run_dir  # the refusal comes with a clear message once the run starts
    path = Path(resume).expanduser()
    if path.suffix == ".pt" or path.is_file():  # <run>/checkpoints/<file>.pt
        return str(RunDir.of_checkpoint_file(path).path)
    return str(path)


def hydra_subdir_of(resume: Optional[str], now: str, run_dir: Optional[str] = None) -> str:
    """hydra.output_subdir: a resumed run keeps its original .hydra/ and records the resume beside it; a
    new run pointed at an existing run's directory (refused by sac-train) must not overwrite that run's."""
    if resume:
        return str(HYDRA / f"resumed_{now}")
    if run_dir and RunDir(Path(run_dir)).existing_run():
        return str(HYDRA / f"refused_{now}")
    return str(HYDRA)


def dir_name_of(env_id: str) -> str:
    """An environment id as part of a run directory's name: a namespaced id's slash would make a folder
    (dm_control/cheetah-run-v0 -> dm_control-cheetah-run-v0)."""
    return env_id.replace("/", "-")


def register_resolvers() -> None:
    """The resolvers conf/config.yaml uses to name a run's directory and send a resumed run to its own."""
    for name, resolver in (("sac_run_dir", run_dir_of), ("sac_hydra_subdir", hydra_subdir_of),
                           ("sac_dir_name", dir_name_of)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
