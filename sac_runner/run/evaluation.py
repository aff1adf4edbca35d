"""Evaluation episodes with a fixed set of seeds, so evaluations are comparable over training; and the
evaluation of a saved checkpoint (sac-eval), its agent rebuilt through the same builders as training.

Each episode is kept as an `EpisodeRecord` (return, length, and the numeric values the environment's
`info` reports at its end, e.g. `is_success`); `EvalResult.summary` is the one place their statistics are
computed, for the training loop's metrics (metrics.jsonl, W&B, TensorBoard, sac-report) and for sac-eval
(eval_results.json, its table, its W&B run). A new statistic of a per-episode value is an entry in
SUMMARY_STATISTICS (a new kind, e.g. a median, also one in STATISTICS beside it); a number the environment
reports in `info` needs no code: its mean is summarized as eval/<key>_mean.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo

from sac_runner.algo.sac import SAC
from sac_runner.config import EvalConfig
from sac_runner.run.builders import Trained, load_trained, seed_everything
from sac_runner.run.hardware import resolve_device
from sac_runner.run.run_dir import RunDir
from sac_runner.run.tracker import Tracker

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds disjoint from training's

# The statistics the summary gives of each per-episode value, as "<prefix><value>_<statistic>": the return
# and the length as named here, every value of the environment's info its mean. Statistics over the
# episodes that report the value; std is the population standard deviation (np.std).
STATISTICS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
SUMMARY_STATISTICS: dict[str, tuple[str, ...]] = {"return": ("mean", "std", "min", "max"), "length": ("mean",)}
INFO_STATISTICS = ("mean",)
# Info keys that are not the environment's own measurements: RecordEpisodeStatistics' return and length,
# and the dm_env time step's bookkeeping that Shimmy passes on for DMC tasks (env=dmc).
IGNORED_INFO = frozenset({"episode", "timestep.discount", "timestep.step_type"})


def numeric_info(info: dict[str, Any]) -> dict[str, float]:
    """The numbers in an environment's `info` (int, float, bool and numpy scalars), as floats."""
    return {key: float(value) for key, value in info.items()
            if key not in IGNORED_INFO and isinstance(value, (int, float, np.integer, np.floating, np.bool_))}


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluation episode: its return, its length, and the numbers its last step's `info` held."""
    episode_return: float
    length: int
    info: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """Its per-episode values by name: return, length, then its info's (which cannot override them)."""
        own = {"return": self.episode_return, "length": float(self.length)}
        return {**own, **{name: value for name, value in self.info.items() if name not in own}}

    def as_json(self) -> dict[str, Any]:
        return {"return": self.episode_return, "length": self.length, "info": self.info}


@dataclass
class EvalResult:
    episodes: list[EpisodeRecord] = field(default_factory=list)

    @property
    def returns(self) -> list[float]:
        return [episode.episode_return for episode in self.episodes]

    @property
    def lengths(self) -> list[int]:
        return [episode.length for episode in self.episodes]

    def summary(self, prefix: str = "eval/") -> dict[str, float]:
        """The statistics of every per-episode value: return, length, then the info values in the order
        the episodes first reported them (SUMMARY_STATISTICS says which)."""
        per_value: dict[str, list[float]] = {}
        for episode in self.episodes:
            for name, value in episode.values().items():
                per_value.setdefault(name, []).append(value)
        return {f"{prefix}{name}_{statistic}": float(STATISTICS[statistic](np.asarray(values, dtype=float)))
                for name, values in per_value.items()
                for statistic in SUMMARY_STATISTICS.get(name, INFO_STATISTICS)}


def evaluate(agent: SAC, env: gym.Env, episodes: int, seed: int, deterministic: bool = True) -> EvalResult:
    """`episodes` full episodes; episode i starts from env.reset(seed=seed + i) (modulo 2**32, the seeds
    Gymnasium takes: a run's seed may be as large as 2**32 - 1)."""
    result = EvalResult()
    for i in range(episodes):
        obs, _ = env.reset(seed=(seed + i) % 2**32)
        episode_return, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, deterministic=deterministic))
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
        result.episodes.append(EpisodeRecord(episode_return, length, numeric_info(info)))
    return result


def recording(env: gym.Env, folder: Path, name_prefix: str) -> gym.Env:
    """Record every episode of `env` (made with render_mode="rgb_array") as an MP4 in `folder`."""
    logging.getLogger("moviepy").setLevel(logging.WARNING)
    return RecordVideo(env, video_folder=str(folder), episode_trigger=lambda episode: True, name_prefix=name_prefix,
                       disable_logger=True)


def record_episode(agent: SAC, env: gym.Env, folder: Path, name_prefix: str, seed: int) -> list[Path]:
    """One deterministic episode of `env` (render_mode="rgb_array") recorded to `folder`; the MP4 paths."""
    video_env = recording(env, folder, name_prefix)
    try:
        evaluate(agent, video_env, episodes=1, seed=seed)
    finally:
        video_env.close()
    return sorted(folder.glob(f"{name_prefix}*.mp4"))


@dataclass(frozen=True)
class CheckpointEvaluation:
    """sac-eval's evaluation of a checkpoint: `report`, what eval_results.json holds; `summary`, its
    statistics (EvalResult.summary without a prefix, also in `report`) in the order of sac-eval's table."""
    report: dict[str, Any]
    summary: dict[str, float]


def evaluate_checkpoint(cfg: EvalConfig, out_dir: Path) -> CheckpointEvaluation:
    """Rebuild the checkpoint's agent and environment, run the episodes, write eval_results.json (and
    videos, and a W&B run when asked) into `out_dir`."""
    seed_everything(cfg.seed)
    trained = load_trained(cfg.checkpoint, resolve_device(cfg.device), env_seed=cfg.seed,
                           render_mode="rgb_array" if cfg.video else None, env_id=cfg.env_id)
    videos_dir = RunDir(out_dir).videos
    env = recording(trained.env, videos_dir, "eval") if cfg.video else trained.env
    try:
        result = evaluate(trained.agent, env, cfg.episodes, seed=cfg.seed, deterministic=cfg.deterministic)
    finally:
        env.close()
    videos = sorted(videos_dir.glob("*.mp4")) if cfg.video else []
    summary = result.summary(prefix="")
    evaluation = CheckpointEvaluation(_report(cfg, trained, result, summary, videos), summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval_results.json").write_text(json.dumps(evaluation.report, indent=2))
    if cfg.logging.mode != "disabled":
        _log_evaluation(cfg, out_dir, evaluation.report, result, videos)
    return evaluation


def _report(cfg: EvalConfig, trained: Trained, result: EvalResult, summary: dict[str, float],
            videos: list[Path]) -> dict[str, Any]:
    """eval_results.json: the checkpoint and how it was evaluated, the summary, and every episode."""
    return {
        "checkpoint": str(trained.path.resolve()), "env": trained.run.env.id, "step": trained.step,
        "episodes": cfg.episodes, "deterministic": cfg.deterministic, "seed": cfg.seed,
        **summary, "returns": result.returns, "lengths": result.lengths,
        "episode_records": [episode.as_json() for episode in result.episodes],
        "videos": [str(v) for v in videos],
        # best.pt: the training evaluation it was saved at (step, mean return)
        "best_during_training": trained.best,
    }


def _log_evaluation(cfg: EvalConfig, out_dir: Path, report: dict[str, Any], result: EvalResult,
                    videos: list[Path]) -> None:
    """The summary (under the keys training logs its evaluations with) and the videos, to a tracker run."""
    config = {"checkpoint": report["checkpoint"], "env": report["env"], "train_step": report["step"],
              "episodes": cfg.episodes, "deterministic": cfg.deterministic, "seed": cfg.seed}
    with Tracker(RunDir(out_dir), cfg.logging, config, run_name=f"eval-{out_dir.name}") as tracker:
        tracker.log(report["step"], result.summary())
        tracker.log_videos(report["step"], "eval/video", videos)
