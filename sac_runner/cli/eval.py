"""sac-eval: evaluate a checkpoint on its own environment (run/evaluation.py) and print the results.

    sac-eval checkpoint=outputs/runs/<run>/checkpoints/latest.pt episodes=10 [video=true] [seed=...]
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from sac_runner.cli.one_line_errors import hydra_command
from sac_runner.config import EvalConfig, register_configs
from sac_runner.run.console import console
from sac_runner.run.evaluation import evaluate_checkpoint


def _print_report(report: dict, out_dir: Path) -> None:
    best = report["best_during_training"]
    saved_as = f" (best.pt: training evaluation {best['return']:.1f})" if best else ""
    table = Table(title=f"sac-eval · {report['env']} · step {report['step']}{saved_as} · "
                        f"{report['episodes']} {'deterministic' if report['deterministic'] else 'stochastic'} episodes",
                  title_justify="left")
    for column in ("return mean", "return std", "return min", "return max", "length mean"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{report[k]:.1f}" for k in ("return_mean", "return_std", "return_min", "return_max",
                                                 "length_mean")))
    console.print(table)
    console.print(f"results: {out_dir / 'eval_results.json'}")
    if report["videos"]:
        console.print(f"videos: {len(report['videos'])} MP4 files in {Path(report['videos'][0]).parent}")


register_configs()


@hydra_command("eval")
def main(cfg: DictConfig) -> float:
    eval_cfg: EvalConfig = OmegaConf.to_object(cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    report = evaluate_checkpoint(eval_cfg, out_dir)
    _print_report(report, out_dir)
    return report["return_mean"]


if __name__ == "__main__":
    main()
