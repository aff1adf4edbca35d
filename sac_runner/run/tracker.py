"""Metric sinks for one run: a local JSONL file (always), Weights & Biases (unless disabled) and
TensorBoard event files (logging.tensorboard=true).

Every record is keyed by environment steps. W&B is given the same step through `define_metric`, and
TensorBoard as each scalar's global step, so both x-axes are environment steps for every namespaced
key (train/, eval/, time/, buffer/).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from sac_runner.config import LoggingConfig
from sac_runner.errors import ConfigError
from sac_runner.run.run_dir import RunDir

log = logging.getLogger(__name__)

STEP_KEY = "step"


def _step_of(line: str) -> int | None:
    """A record's step, or None for a line that is not a complete record (torn by a hard kill)."""
    try:
        return int(json.loads(line)[STEP_KEY])
    except (ValueError, KeyError, TypeError):
        return None


def truncate_metrics(run_dir: RunDir, last_step: int) -> int:
    """Drop metric and alert records after `last_step` (logged after the checkpoint a run resumes from),
    and a last line a hard kill left half-written; returns how many metric lines were dropped."""
    _truncate_records(run_dir.alerts, last_step)
    return _truncate_records(run_dir.metrics, last_step)


def _truncate_records(path: Path, last_step: int) -> int:
    if not path.exists():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if (step := _step_of(line)) is not None and step <= last_step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(lines) - len(kept)


class Tracker:
    """`resume_id` continues that W&B run (same id) instead of starting a new one."""

    def __init__(self, run_dir: RunDir, cfg: LoggingConfig, run_config: dict[str, Any], run_name: str,
                 resume_id: str | None = None):
        self.run_dir = run_dir
        run_dir.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path = run_dir.metrics
        self._file = open(self.metrics_path, "a", encoding="utf-8")
        self.wandb_run = None
        # Where an offline W&B run lies, for `wandb sync`.
        self.offline_run_dir: Path | None = None
        if cfg.mode != "disabled":
            try:
                self.wandb_run = self._start_wandb(cfg, run_config, run_name, resume_id)
            except Exception as error:  # no account, no network, a broken install: the run goes on
                self._wandb_failed("start", error)
            if self.wandb_run is not None and cfg.mode == "offline":
                self.offline_run_dir = Path(self.wandb_run.dir).parent
        self.tensorboard = _tensorboard_writer(run_dir.tensorboard) if cfg.tensorboard else None

    @property
    def offline_segments(self) -> list[Path]:
        """Every offline W&B directory of this run: a resumed run adds one per resume, all with the same
        run id; `wandb sync` needs them all, oldest first, to upload the whole run. (W&B names them
        offline-run-<time>-<id>, with a -1 suffix for a second one in the same second: the data file
        run-<id>.wandb inside is what tells them.)"""
        if self.offline_run_dir is None:
            return []
        return sorted(p for p in self.offline_run_dir.parent.glob("offline-run-*")
                      if (p / f"run-{self.run_id}.wandb").exists() or p == self.offline_run_dir)

    @property
    def run_id(self) -> str | None:
        return None if self.wandb_run is None else self.wandb_run.id

    def _start_wandb(self, cfg: LoggingConfig, run_config: dict[str, Any], run_name: str, resume_id: str | None):
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group,
            job_type=cfg.job_type,
            tags=list(cfg.tags),
            name=cfg.name or run_name,
            id=resume_id,
            resume="allow" if resume_id else None,
            config=run_config,
            dir=str(self.run_dir.wandb.parent),  # W&B writes into <dir>/wandb/
            mode=cfg.mode,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        run.define_metric(STEP_KEY, hidden=True)
        run.define_metric("*", step_metric=STEP_KEY)
        return run

    def _wandb_failed(self, action: str, error: Exception) -> None:
        """Say once that W&B stopped working; from then on metrics go to metrics.jsonl only. A run that did
        start is finished as failed, so that it does not linger (the next job of a sweep in this process
        starts its own)."""
        run, self.wandb_run = self.wandb_run, None
        if run is not None and action != "finish":
            try:
                run.finish(exit_code=1)
            except Exception:
                pass
        detail = str(error).splitlines()[0] if str(error) else ""
        log.warning("W&B failed to %s (%s: %s): training continues with local metrics only, in %s",
                    action, type(error).__name__, detail, self.metrics_path)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {STEP_KEY: step, **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != STEP_KEY and value is not None:
                    self.tensorboard.add_scalar(key, value, global_step=step)
        if self.wandb_run is not None:
            try:
                self.wandb_run.log(record)
            except Exception as error:
                self._wandb_failed("log", error)

    def alert(self, record: dict) -> None:
        """A health alert ({step, kind, title, text}): a line in alerts.jsonl and a W&B alert (kept in an
        offline run's file, sent by `wandb sync`); the console line is the caller's."""
        with open(self.run_dir.alerts, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            try:
                self.wandb_run.alert(title=f"sac-runner: {record['title']}"[:63],
                                     text=f"step {record[STEP_KEY]}: {record['text']}", level="WARN")
            except Exception as error:
                self._wandb_failed("send an alert", error)

    def log_videos(self, step: int, key: str, paths: list[Path]) -> None:
        """Videos go to W&B (when on); the MP4 files themselves stay where they were written."""
        if self.wandb_run is not None and paths:
            import wandb

            try:
                self.wandb_run.log({STEP_KEY: step, key: [wandb.Video(str(p), format="mp4") for p in paths]})
            except Exception as error:
                self._wandb_failed("log a video", error)

    def close(self, exit_code: int = 0) -> None:
        self._file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb_run is not None:
            try:
                self.wandb_run.finish(exit_code=exit_code)
            except Exception as error:
                self._wandb_failed("finish", error)
            self.wandb_run = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exit_code=0 if exc_type is None else 1)


def _tensorboard_writer(directory: Path):
    """torch's SummaryWriter (it flushes every few seconds, so a running run's curves show up)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ConfigError(f"logging.tensorboard=true needs the tensorboard package ({error}); "
                          "pip install 'sac-runner[tensorboard]' or set logging.tensorboard=false") from None
    return SummaryWriter(log_dir=str(directory), flush_secs=10)


def _plain(value: Any) -> float | int | None:
    """JSON-safe number: tensors and numpy scalars become floats, NaN/inf become null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
