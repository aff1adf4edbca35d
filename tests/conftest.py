"""Shared fixtures: compose run configs the way sac-train does, without launching a process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from sac_runner.config import register_configs

import tests.toy_envs  # noqa: F401  (registers the toy environments)

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")
BIN = Path(sys.executable).parent


@pytest.fixture
def compose_run():
    """compose_run(*overrides) -> the DictConfig sac-train would receive."""
    register_configs()

    def _compose(*overrides: str, config_name: str = "config"):
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides))

    yield _compose
    GlobalHydra.instance().clear()


def train_tiny(compose_run, run_dir: Path, *overrides: str):
    """Train in-process on the smoke schedule with a small network: (run, parts, final, metric records)."""
    import json

    from omegaconf import OmegaConf

    from sac_runner.config import to_run_config
    from sac_runner.tracker import Tracker
    from sac_runner.train import Trainer, build, seed_everything

    cfg = compose_run("schedule=smoke", "logging=disabled", "logging.progress=false", "device=cpu",
                      "agent.hidden_sizes=[16]", *overrides)
    run = to_run_config(cfg)
    seed_everything(run.seed)
    parts = build(run)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    with Tracker(run_dir, run.logging, resolved, run_name="test") as tracker:
        final = Trainer(run, parts, run_dir, resolved).train(tracker)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run, parts, final, records


def console_script(name: str) -> str:
    """The installed console script next to this interpreter (the venv's bin/)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}; run `make install`"
    return str(path)
