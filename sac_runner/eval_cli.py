"""sac-eval: rebuild env and agent from a checkpoint's own config and run evaluation episodes.

    sac-eval checkpoint=outputs/runs/<run>/checkpoints/latest.pt episodes=10
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from sac_runner.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
from sac_runner.config import EvalConfig, RunConfig, register_configs
from sac_runner.console import console
from sac_runner.envs import env_spaces, make_env
from sac_runner.errors import exit_on_user_error
from sac_runner.evaluation import evaluate
from sac_runner.train import make_agent, resolve_device, seed_everything


def run_config_of(checkpoint: dict, path: Path) -> RunConfig:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), checkpoint["config"])
        return OmegaConf.to_object(merged)
    except Exception as error:
        raise CheckpointError(f"{path} holds a config this sac-runner cannot read ({error}); "
                              "evaluate it with the sac-runner release that wrote it") from error


def evaluate_checkpoint(cfg: EvalConfig, out_dir: Path) -> dict:
    path = resolve_checkpoint_path(cfg.checkpoint)
    checkpoint = load_checkpoint(path)
    run = run_config_of(checkpoint, path)
    seed_everything(cfg.seed)
    env = make_env(run.env, seed=cfg.seed)
    spaces = env_spaces(env)
    if (spaces.obs_dim, spaces.action_dim) != (checkpoint["obs_dim"], checkpoint["action_dim"]):
        raise CheckpointError(f"{path} was trained with observation/action sizes "
                              f"({checkpoint['obs_dim']}, {checkpoint['action_dim']}) but {run.env.id} has "
                              f"({spaces.obs_dim}, {spaces.action_dim})")
    agent = make_agent(run, spaces, resolve_device(cfg.device))
    agent.actor.load_state_dict(checkpoint["agent"]["actor"])
    agent.normalizer.load_state_dict(checkpoint["agent"]["normalizer"])
    result = evaluate(agent, env, cfg.episodes, seed=cfg.seed, deterministic=cfg.deterministic)
    env.close()

    returns, lengths = np.asarray(result.returns), np.asarray(result.lengths)
    report = {
        "checkpoint": str(path.resolve()), "env": run.env.id, "step": checkpoint["step"],
        "episodes": cfg.episodes, "deterministic": cfg.deterministic, "seed": cfg.seed,
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "return_min": float(returns.min()), "return_max": float(returns.max()),
        "length_mean": float(lengths.mean()), "returns": result.returns, "lengths": result.lengths,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval_results.json").write_text(json.dumps(report, indent=2))
    _print_report(report, out_dir)
    return report


def _print_report(report: dict, out_dir: Path) -> None:
    table = Table(title=f"sac-eval · {report['env']} · step {report['step']} · "
                        f"{report['episodes']} {'deterministic' if report['deterministic'] else 'stochastic'} episodes",
                  title_justify="left")
    for column in ("return mean", "return std", "return min", "return max", "length mean"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{report[k]:.1f}" for k in ("return_mean", "return_std", "return_min", "return_max",
                                                 "length_mean")))
    console.print(table)
    console.print(f"results: {out_dir / 'eval_results.json'}")


register_configs()


@hydra.main(version_base="1.3", config_path="pkg://sac_runner.conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    eval_cfg: EvalConfig = OmegaConf.to_object(cfg)
    report = evaluate_checkpoint(eval_cfg, Path(HydraConfig.get().runtime.output_dir))
    return report["return_mean"]


if __name__ == "__main__":
    main()
