"""sac-eval: evaluate a checkpoint on its own environment (run/evaluation.py) and print the results.

    sac-eval checkpoint=outputs/runs/<run>/checkpoints/latest.pt episodes=10 [video=true] [seed=...]
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from sac_runner.cli.one_line_errors import hydra_command
from sac_runner.config import EvalConfig
from sac_runner.cli.config_store import register_configs
from sac_runner.run.console import console
from sac_runner.run.evaluation import CheckpointEvaluation, evaluate_checkpoint


def _cell(value: float) -> str:
    """One decimal, or three significant digits for a value under 1 in size (a success rate)."""
    return f"{value:.3g}" if 0 < abs(value) < 1 else f"{value:.1f}"


def _results_table(evaluation: CheckpointEvaluation) -> Table:
    """One column per statistic of the summary, in its order."""
    report, best = evaluation.report, evaluation.report["best_during_training"]
    saved_as = f" (best.pt: training evaluation {best['return']:.1f})" if best else ""
    table = Table(title=f"sac-eval · {report['env']} · step {report['step']}{saved_as} · "
                        f"{report['episodes']} {'deterministic' if report['deterministic'] else 'stochastic'} episodes",
                  title_justify="left")
    for name in evaluation.summary:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_row(*(_cell(value) for value in evaluation.summary.values()))
    return table


def _print_report(evaluation: CheckpointEvaluation, out_dir: Path) -> None:
    console.print(_results_table(evaluation))
    console.print(f"results: {out_dir / 'eval_results.json'}")
    videos = evaluation.report["videos"]
    if videos:
        console.print(f"videos: {len(videos)} MP4 files in {Path(videos[0]).parent}")


register_configs()


@hydra_command("eval")
def main(cfg: DictConfig) -> float:
    eval_cfg: EvalConfig = OmegaConf.to_object(cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    evaluation = evaluate_checkpoint(eval_cfg, out_dir)
    _print_report(evaluation, out_dir)
    return evaluation.summary["return_mean"]


if __name__ == "__main__":
    main()
