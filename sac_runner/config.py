"""Typed schemas for every config group, registered in Hydra's ConfigStore.

The primary config (conf/config.yaml) starts its defaults list with `run_schema`, so every group
file merged into it is checked against these dataclasses: an unknown key or a value of the wrong
type fails at compose time with Hydra's own message. Checks that
a type cannot express (ranges, cross-group constraints) live in ``__post_init__`` and run when
``to_run_config`` turns the composed DictConfig into these dataclasses, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that is well-typed but invalid. The message names the key and the fix."""


def _require(ok: bool, key: str, problem: str, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {problem}; {fix}")


@dataclass
class EnvConfig:
    id: str = "Pendulum-v1"
    # None keeps the environment's registered time limit.
    max_episode_steps: Optional[int] = None
    # Extra keyword arguments for gymnasium.make (e.g. {ctrl_cost_weight: 0.1}).
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.id), "env.id", "is empty", "set env.id=<a registered Gymnasium id>")
        if self.max_episode_steps is not None:
            _require(self.max_episode_steps > 0, "env.max_episode_steps",
                     f"must be positive, got {self.max_episode_steps}", "set it to a step count or null")


@dataclass
class AgentConfig:
    # Learning rates (Adam), one per optimized quantity.
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    # Polyak averaging rate of the target critics: target <- tau * online + (1 - tau) * target.
    tau: float = 0.005
    # Temperature: "auto" learns log(alpha) toward target_entropy; a number keeps alpha fixed.
    alpha: Union[float, str] = "auto"
    alpha_init: float = 1.0
    # "auto" means -dim(A), the heuristic of Haarnoja et al. (2019).
    target_entropy: Union[float, str] = "auto"
    num_critics: int = 2
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])

    def __post_init__(self) -> None:
        for key in ("actor_lr", "critic_lr", "alpha_lr"):
            value = getattr(self, key)
            _require(value > 0, f"agent.{key}", f"must be positive, got {value}",
                     f"set agent.{key}=3e-4 or another positive number")
        _require(0 < self.gamma <= 1, "agent.gamma", f"must be in (0, 1], got {self.gamma}",
                 "set agent.gamma=0.99 or another value in (0, 1]")
        _require(0 < self.tau <= 1, "agent.tau", f"must be in (0, 1], got {self.tau}",
                 "set agent.tau=0.005 (smoothing) or 1 (hard copy)")
        if isinstance(self.alpha, str):
            _require(self.alpha == "auto", "agent.alpha", f"must be 'auto' or a number, got '{self.alpha}'",
                     "set agent.alpha=auto or e.g. agent.alpha=0.2")
        else:
            _require(self.alpha >= 0, "agent.alpha", f"must be non-negative, got {self.alpha}",
                     "set agent.alpha=auto or e.g. agent.alpha=0.2")
        _require(self.alpha_init > 0, "agent.alpha_init", f"must be positive, got {self.alpha_init}",
                 "set agent.alpha_init=1.0")
        if isinstance(self.target_entropy, str):
            _require(self.target_entropy == "auto", "agent.target_entropy",
                     f"must be 'auto' or a number, got '{self.target_entropy}'",
                     "set agent.target_entropy=auto or a number such as -6")
        _require(self.num_critics >= 1, "agent.num_critics", f"must be at least 1, got {self.num_critics}",
                 "set agent.num_critics=2")
        _require(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes), "agent.hidden_sizes",
                 f"must be a non-empty list of positive widths, got {list(self.hidden_sizes)}",
                 "set agent.hidden_sizes=[256,256]")

    @property
    def learns_alpha(self) -> bool:
        return self.alpha == "auto"


@dataclass
class BufferConfig:
    capacity: int = 1_000_000

    def __post_init__(self) -> None:
        _require(self.capacity > 0, "buffer.capacity", f"must be positive, got {self.capacity}",
                 "set buffer.capacity=1_000_000")


@dataclass
class ScheduleConfig:
    total_steps: int = 1_000_000
    # Actions are uniform random for the first `start_steps` environment steps (exploration warm-up).
    start_steps: int = 5_000
    # Learning starts once the buffer holds `update_after` transitions.
    update_after: int = 5_000
    update_every: int = 1
    gradient_steps: int = 1
    batch_size: int = 256
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    log_every: int = 1_000

    def __post_init__(self) -> None:
        for key in ("total_steps", "update_every", "gradient_steps", "batch_size", "eval_every",
                    "eval_episodes", "checkpoint_every", "log_every"):
            value = getattr(self, key)
            _require(value > 0, f"schedule.{key}", f"must be positive, got {value}",
                     f"set schedule.{key} to a positive integer")
        for key in ("start_steps", "update_after"):
            value = getattr(self, key)
            _require(value >= 0, f"schedule.{key}", f"must be non-negative, got {value}",
                     f"set schedule.{key}=0 or more")


@dataclass
class LoggingConfig:
    # W&B mode: offline writes the run under the run directory (upload later with `wandb sync`).
    mode: str = "offline"
    project: str = "sac-runner"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    # Rich progress bar and summary table on the terminal.
    progress: bool = True

    def __post_init__(self) -> None:
        _require(self.mode in ("online", "offline", "disabled"), "logging.mode",
                 f"must be online, offline or disabled, got '{self.mode}'", "set logging.mode=offline")


@dataclass
class RunConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int = 0
    # auto picks cuda when available, else cpu.
    device: str = "auto"

    def __post_init__(self) -> None:
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device",
                 f"must be auto, cpu or cuda, got '{self.device}'", "set device=auto")
        _require(self.schedule.batch_size <= self.buffer.capacity, "schedule.batch_size",
                 f"({self.schedule.batch_size}) is larger than buffer.capacity ({self.buffer.capacity})",
                 "lower schedule.batch_size or raise buffer.capacity")


@dataclass
class EvalConfig:
    """sac-eval: evaluate a checkpoint written by sac-train."""

    checkpoint: str = "???"
    episodes: int = 10
    deterministic: bool = True
    seed: int = 12_345
    device: str = "auto"

    def __post_init__(self) -> None:
        _require(self.episodes > 0, "episodes", f"must be positive, got {self.episodes}", "set episodes=10")


def register_configs() -> None:
    """Register the schemas the primary configs extend: `run_schema` (sac-train), `eval_schema` (sac-eval)."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="eval_schema", node=EvalConfig)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Turn a composed config into validated dataclasses; raises ConfigError naming the bad key."""
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, RunConfig)
    return run
