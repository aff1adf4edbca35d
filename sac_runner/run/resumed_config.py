"""`sac-train resume=<run dir or checkpoint>`: the run's own config back, with only harmless overrides.

A resumed run is the same experiment: its config comes from the checkpoint, not from today's
defaults. Overrides on the resume command line may change how long the run goes and how it is
watched (total steps, evaluation and checkpoint cadence, logging, device, agent.compile and
buffer.device: the same math on other hardware); any other override is
refused unless it restates the saved value.
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sac_runner.config import RunConfig
from sac_runner.errors import ConfigError

HARMLESS = ("resume", "device", "agent.compile", "buffer.device", "threads", "sweep_objective", "nan_guard", "health", "env.max_failures",
            "logging", "checkpoint", "schedule.total_steps", "schedule.epochs",
            "schedule.eval_every", "schedule.eval_every_epochs", "schedule.eval_episodes",
            "schedule.checkpoint_every", "schedule.checkpoint_every_epochs", "schedule.log_every")


def _harmless(key: str) -> bool:
    return any(key == h or key.startswith(h + ".") for h in HARMLESS)


def override_keys(overrides: list[str]) -> list[str]:
    """The config keys (or groups) a command line sets, without Hydra's own (hydra.*)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.key_or_group for o in parsed if not o.key_or_group.startswith("hydra")]


def resumed_config(cfg: DictConfig, saved: dict[str, Any], overrides: list[str], source: str) -> DictConfig:
    """The checkpoint's config with the harmless overrides of `cfg` applied; other changes refused."""
    try:
        resumed = OmegaConf.merge(OmegaConf.structured(RunConfig), saved)
    except Exception as error:
        raise ConfigError(f"resume: {source} holds a config this sac-runner cannot read ({error}); "
                          "resume it with the sac-runner release that wrote it") from error
    for key in override_keys(overrides):
        asked, was = OmegaConf.select(cfg, key), OmegaConf.select(resumed, key)
        if _harmless(key):
            OmegaConf.update(resumed, key, asked, merge=False)
        elif asked != was:
            differences = _differences(key, was, asked)
            changes = ", ".join(f"{k}: {w} -> {a}" for k, w, a in differences if not _harmless(k))
            if changes:
                raise ConfigError(f"resume: {key} would change the experiment ({changes}; the run is {source}); "
                                  "drop that override, or start a new run without resume=")
            for leaf, _, value in differences:  # a group such as schedule=smoke that differs only in cadence
                OmegaConf.update(resumed, leaf, value, merge=False)
    return resumed


def _differences(key: str, was: Any, asked: Any) -> list[tuple[str, Any, Any]]:
    """The leaves that differ, as (dotted key, saved value, asked value)."""
    if OmegaConf.is_dict(was) and OmegaConf.is_dict(asked):
        found = []
        for name in sorted(set(was) | set(asked), key=str):
            found += _differences(f"{key}.{name}", was.get(name), asked.get(name))
        return found
    plain = lambda v: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v  # noqa: E731
    return [] if plain(was) == plain(asked) else [(key, plain(was), plain(asked))]
