"""Run the installed console scripts as a user would, with this repository importable so that the
misbehaving toy environments can be named on the command line (env.id=tests.toy_envs:Drift-v0)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import console_script

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_cli(command: str, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([console_script(command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=cli_env())


def error_line(proc: subprocess.CompletedProcess) -> str:
    """stderr, which must be exactly one line (no traceback, no Hydra banner)."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


TINY = ("schedule=smoke", "logging=disabled", "logging.progress=false", "agent.hidden_sizes=[16]")
