"""Config data into today's schema: a composed config (Hydra's DictConfig) into the validated RunConfig,
and the keys that moved between versions, for a command line that still names an old key, a saved run's
overrides (sac-report) and a checkpoint written with the old layout."""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sac_runner.config import RunConfig
from sac_runner.errors import ConfigError


def unknown_keys(cfg: DictConfig, schema: type, prefix: str = "") -> list[str]:
    """Keys a `+key=value` override added that the schema does not have (Hydra accepts them)."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    found = []
    for key in cfg.keys():
        if key not in fields:
            found.append(f"{prefix}{key}")
        elif isinstance(cfg[key], DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(cfg[key])):
            found += unknown_keys(cfg[key], OmegaConf.get_type(cfg[key]), f"{prefix}{key}.")
    return found


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Turn a composed config into validated dataclasses; raises ConfigError naming the bad key."""
    unknown = [key for key in unknown_keys(cfg, RunConfig) if key != "hydra"]
    if unknown:
        if unknown[0] in MOVED_KEYS:
            raise ConfigError(moved_key_message(unknown[0]))
        raise ConfigError(f"unknown key {unknown[0]}: sac-runner has no such setting (added with +?); "
                          "`sac-train --cfg job` prints every key and its value")
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, RunConfig)
    return run


# ---- keys that moved (sac-runner 0.2) -------------------------------------------------------------
# Old name -> new name. A command line with an old name is refused with one line naming the new one;
# a checkpoint written with the old layout is read through `upgrade_saved_config`.
MOVED_KEYS = {
    "schedule.policy_update_every": "agent.policy_update_every",    # the algorithm's cadence, not the loop's
    "schedule.target_update_every": "agent.target_update_every",
    "schedule.policy_update_catch_up": "agent.policy_update_catch_up",
    "agent.nan_guard": "nan_guard",                                 # how the run is watched, not the agent
    "agent.init_from": "init_from",                                 # where the run starts, not the agent
}


def moved_key_message(old: str) -> str:
    new = MOVED_KEYS[old]
    return f"{old} is now {new} (moved in sac-runner 0.2); write {new}=<value> instead"


def renamed_override(override: str) -> str:
    """An override string with a moved key renamed (`schedule.policy_update_every=2` -> `agent...=2`)."""
    key, sep, value = override.partition("=")
    prefix = key[:len(key) - len(key.lstrip("+~"))]
    return f"{prefix}{MOVED_KEYS[key.lstrip('+~')]}{sep}{value}" if key.lstrip("+~") in MOVED_KEYS else override


def upgrade_saved_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A resolved run config saved before keys moved, in today's layout (a new dict; today's is unchanged)."""
    upgraded = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    for old, new in MOVED_KEYS.items():
        old_group, old_key = old.split(".")
        group = upgraded.get(old_group)
        if isinstance(group, dict) and old_key in group:
            value = group.pop(old_key)
            if "." in new:
                new_group, new_key = new.split(".")
                upgraded.setdefault(new_group, {})[new_key] = value
            else:
                upgraded[new] = value
    return upgraded
