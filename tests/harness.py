"""The one test harness: tiny runs trained in-process, and the installed commands run as a user runs them.

Every test that trains starts from `TINY` (a few hundred Pendulum steps, a 16-unit network, no W&B, no
progress bar) and says only what differs from it:

    train_tiny(tmp_path, "buffer=prioritized")              # in-process: run, parts, trainer, records
    cli("sac-train", tmp_path, *TINY, "hydra.run.dir=run")  # the console script, one CompletedProcess
    start_cli("sac-train", tmp_path, *TINY)                 # the same, running (a Popen to signal or kill)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from sac_runner.config import RunConfig
from sac_runner.cli.config_store import register_configs
from sac_runner.run.run_config import to_run_config
from sac_runner.run.builders import Parts, make_parts, seed_everything
from sac_runner.run.checkpoint import Checkpoint
from sac_runner.run.loop import Trainer
from sac_runner.run.run_dir import RunDir, register_resolvers
from sac_runner.run.tracker import Tracker

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# No W&B, no progress bar, on the CPU (so a GPU machine runs the same tests).
QUIET = ("logging=disabled", "logging.progress=false", "device=cpu")
# The tiny run every test starts from: a few hundred steps of a 16-unit network.
TINY = ("schedule=smoke", *QUIET, "agent.hidden_sizes=[16]")


# ---- configs ---------------------------------------------------------------------------------------------

def compose(*overrides: str, config_name: str = "config") -> DictConfig:
    """The DictConfig sac-train (or sac-eval: config_name="eval") would receive for these overrides."""
    register_configs()
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def tiny_config(*overrides: str) -> DictConfig:
    return compose(*TINY, *overrides)


def group_options(group: str) -> list[str]:
    """The options Hydra finds in a config group (conf/ and the installed plugins), sorted."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
            return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
    finally:
        GlobalHydra.instance().clear()


# ---- tiny runs in this process ---------------------------------------------------------------------------

class TinyRun(NamedTuple):
    run: RunConfig
    parts: Parts
    final: dict[str, Any]
    records: list[dict]   # metrics.jsonl
    trainer: Trainer


class StopAt:
    """Stands in for a SIGTERM arriving during step `step` of `trainer`."""

    def __init__(self, trainer: Trainer, step: int):
        self.trainer, self.step = trainer, step

    @property
    def requested(self) -> bool:
        return self.trainer.state.step >= self.step


def train_tiny(run_dir: Path, *overrides: str, stop_at: int | None = None) -> TinyRun:
    """Train in-process as sac-train would (without its process-level set-up), optionally stopping as a
    signal would after step `stop_at`."""
    cfg = tiny_config(*overrides)
    run = to_run_config(cfg)
    seed_everything(run.seed)  # as sac-train seeds a run before building it
    parts, resolved = make_parts(run), OmegaConf.to_container(cfg, resolve=True)
    trainer = Trainer(run, parts, RunDir(run_dir), resolved)
    with Tracker(RunDir(run_dir), run.logging, resolved, run_name=run_dir.name) as tracker:
        final = trainer.train(tracker, None if stop_at is None else StopAt(trainer, stop_at))
    parts.close()
    return TinyRun(run, parts, final, metric_records(run_dir), trainer)


def loop_but_its_clock(checkpoint: Checkpoint) -> dict:
    """A checkpoint's loop state without the seconds trained, which no two runs share."""
    return {key: value for key, value in checkpoint.loop.state_dict().items() if key != "elapsed"}


def metric_records(run_dir: Path) -> list[dict]:
    path = RunDir(run_dir).metrics
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ---- the installed commands ------------------------------------------------------------------------------

def console_script(name: str) -> str:
    """The installed console script next to this interpreter (the venv's bin/)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}; run `make install`"
    return str(path)


def cli_env(**extra: str) -> dict[str, str]:
    """A user's environment, with this repository importable so that the toy environments can be named
    on the command line (env.id=tests.toy_envs:Drift-v0), and W&B offline and quiet."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return {**env, **extra}


SLOW_CHECKPOINTS = """
import time
import torch
_save = torch.save
def _save_then_wait(obj, f, *args, **kwargs):
    _save(obj, f, *args, **kwargs)
    time.sleep(2)
torch.save = _save_then_wait
"""


def slow_checkpoints_env(tmp_path: Path) -> dict[str, str]:
    """cli_env() in which every process's torch.save waits 2 s after writing (a checkpoint's file is then
    written but not yet in place): through a sitecustomize module, so that a sweep's workers have it too."""
    hook = tmp_path / "slow_checkpoints"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_CHECKPOINTS)
    return cli_env(PYTHONPATH=f"{hook}{os.pathsep}{REPO}")


def cli(command: str, cwd: Path, *args: str, timeout: int = 300, env: dict[str, str] | None = None,
        **run: Any) -> subprocess.CompletedProcess:
    """Run `command` (sac-train, sac-eval, sac-export, sac-report) to its end (`run`: more of
    subprocess.run's arguments, e.g. preexec_fn)."""
    return subprocess.run([console_script(command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env or cli_env(), **run)


def start_cli(command: str, cwd: Path, *args: str, env: dict[str, str] | None = None,
              **popen: Any) -> subprocess.Popen:
    """Start `command` and return while it runs (to signal or kill it)."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([console_script(command), *args], cwd=cwd, env=env or cli_env(), **popen)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """stderr, which must be exactly one line (no traceback, no Hydra banner)."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def refusal_line(proc: subprocess.CompletedProcess) -> str:
    """A command refused before it started: its one error line on stderr, and nothing else (no threads
    line, no log) on stdout."""
    line = error_line(proc)
    assert proc.stdout.strip() == "", proc.stdout
    return line
