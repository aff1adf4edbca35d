"""sac-train: compose the run config with Hydra and train one run, or one job of a sweep (`-m`).

    sac-train env=halfcheetah agent.alpha=auto seed=1
    sac-train -m seed=0,1,2 hydra/launcher=joblib
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sac_runner.cli.one_line_errors import hydra_command
from sac_runner.cli.config_store import register_configs
from sac_runner.run.run_dir import register_resolvers
from sac_runner.run.sweep import SweepJob, configure_job, run_job
from sac_runner.run.training import train

register_configs()
register_resolvers()


@hydra_command("config")
def main(cfg: DictConfig) -> float:
    """One run, or one job of a sweep; returns the evaluation return `sweep_objective` names (to a sweeper)."""
    hydra_cfg = HydraConfig.get()
    run_dir, overrides = Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task)
    job = SweepJob.from_hydra(hydra_cfg)
    if job is None:
        return sweep_objective(train(cfg, run_dir, overrides), cfg.sweep_objective)
    configure_job(cfg, job, run_dir)
    return run_job(lambda: sweep_objective(train(cfg, run_dir, overrides, job.parallel_jobs, sweep_job=job.label),
                                           cfg.sweep_objective), job, run_dir)


def sweep_objective(final: dict[str, float], which: str) -> float:
    return final["eval/best_return_mean" if which == "best" else "eval/return_mean"]


if __name__ == "__main__":
    main()
