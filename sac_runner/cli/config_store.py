"""The schemas sac-train, sac-eval and sac-export compose their configs against, registered in Hydra's
ConfigStore (the schemas themselves, sac_runner/config.py, know nothing of Hydra)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from sac_runner.config import EvalConfig, ExportConfig, RunConfig


def register_configs() -> None:
    """Register the schemas the primary configs extend: `run_schema` (sac-train), `eval_schema` (sac-eval)
    and `export_schema` (sac-export)."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="export_schema", node=ExportConfig)
