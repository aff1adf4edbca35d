"""sac-eval: rebuild env and agent from a checkpoint's own config and run evaluation episodes.

    sac-eval checkpoint=outputs/runs/<run>/checkpoints/latest.pt episodes=10 [video=true] [seed=...]
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from sac_runner.config import EvalConfig, register_configs
from sac_runner.console import console
from sac_runner.errors import exit_on_user_error, one_line_config_errors
from sac_runner.evaluation import evaluate, recording
from sac_runner.hardware import resolve_device
from sac_runner.tracker import Tracker
from sac_runner.train import seed_everything
from sac_runner.trained import load_trained


def evaluate_checkpoint(cfg: EvalConfig, out_dir: Path) -> dict:
    seed_everything(cfg.seed)
    trained = load_trained(cfg.checkpoint, resolve_device(cfg.device), env_seed=cfg.seed,
                           render_mode="rgb_array" if cfg.video else None, env_id=cfg.env_id)
    env = recording(trained.env, out_dir / "videos", "eval") if cfg.video else trained.env
    try:
        result = evaluate(trained.agent, env, cfg.episodes, seed=cfg.seed, deterministic=cfg.deterministic)
    finally:
        env.close()

    returns, lengths = np.asarray(result.returns), np.asarray(result.lengths)
    videos = sorted((out_dir / "videos").glob("*.mp4")) if cfg.video else []
    report = {
        "checkpoint": str(trained.path.resolve()), "env": trained.run.env.id, "step": trained.step,
        "episodes": cfg.episodes, "deterministic": cfg.deterministic, "seed": cfg.seed,
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "return_min": float(returns.min()), "return_max": float(returns.max()),
        "length_mean": float(lengths.mean()), "returns": result.returns, "lengths": result.lengths,
        "videos": [str(v) for v in videos],
        # best.pt: the training evaluation it was saved at (step, mean return)
        "best_during_training": trained.best,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval_results.json").write_text(json.dumps(report, indent=2))
    if cfg.logging.mode != "disabled":
        config = {"checkpoint": report["checkpoint"], "env": report["env"], "train_step": report["step"],
                  "episodes": cfg.episodes, "deterministic": cfg.deterministic, "seed": cfg.seed}
        with Tracker(out_dir, cfg.logging, config, run_name=f"eval-{out_dir.name}") as tracker:
            tracker.log(report["step"], {f"eval/{k}": report[k] for k in
                                         ("return_mean", "return_std", "return_min", "return_max", "length_mean")})
            tracker.log_videos(report["step"], "eval/video", videos)
    _print_report(report, out_dir)
    return report


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


@one_line_config_errors
@hydra.main(version_base="1.3", config_path="pkg://sac_runner.conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    eval_cfg: EvalConfig = OmegaConf.to_object(cfg)
    report = evaluate_checkpoint(eval_cfg, Path(HydraConfig.get().runtime.output_dir))
    return report["return_mean"]


if __name__ == "__main__":
    main()
