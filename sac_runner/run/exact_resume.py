"""What a run needs, besides the agent and the replay buffer, to continue exactly where it stopped.

- The random number generators: Python's, NumPy's global one, torch's (CPU and CUDA), the
  environment's and its action space's (warm-up actions are drawn from it).
- The environment's state in the middle of an episode. A Gymnasium environment cannot be saved in
  general, so the episode is replayed instead: we keep the seed and RNG state its reset used and
  the actions taken since, and on resume reset the same way and take the same actions. For a
  deterministic environment (MuJoCo, classic control) this rebuilds the state bit for bit; the
  replayed observation is compared with the saved one, and a mismatch starts a fresh episode.

Everything here is plain ints, strings, tensors and containers, so checkpoints load with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import gymnasium as gym
import numpy as np
import torch

log = logging.getLogger(__name__)


def _legacy_state(state: tuple) -> dict[str, Any]:
    """A legacy RandomState's get_state() in types torch.load(weights_only=True) reads."""
    kind, key, pos, has_gauss, cached_gaussian = state
    return {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _legacy_tuple(state: dict[str, Any]) -> tuple:
    return (state["kind"], state["key"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
            state["cached_gaussian"])


def _generator_state(generator: np.random.Generator | np.random.RandomState) -> dict[str, Any]:
    """A Generator's state, or a legacy RandomState's (dm_control's tasks, env=dmc, draw from one)."""
    if isinstance(generator, np.random.RandomState):
        return _legacy_state(generator.get_state())
    return generator.bit_generator.state


def _set_generator_state(generator: np.random.Generator | np.random.RandomState, state: dict[str, Any]) -> None:
    if isinstance(generator, np.random.RandomState):
        generator.set_state(_legacy_tuple(state))
    else:
        generator.bit_generator.state = state


def capture_rng(env: gym.Env) -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": _legacy_state(np.random.get_state()),
        "torch": torch.get_rng_state(),
        "env_action_space": _generator_state(env.action_space.np_random),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], env: gym.Env) -> None:
    random.setstate(state["python"])
    np.random.set_state(_legacy_tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    _set_generator_state(env.action_space.np_random, state["env_action_space"])


class EpisodeRecorder:
    """Keeps what it takes to rebuild the current training episode: how it was reset, and its actions."""

    def __init__(self) -> None:
        self.reset_seed: int | None = None
        self.reset_rng: dict[str, Any] | None = None
        self.actions: list[np.ndarray] = []

    def reset(self, env: gym.Env, seed: int | None = None) -> np.ndarray:
        self.begin(env, seed)
        obs, _ = env.reset(seed=seed)
        return obs

    def begin(self, env: gym.Env | None, seed: int | None) -> None:
        """Note how `env` is about to be reset (by the caller); None: an environment in another
        process, whose episode cannot be replayed."""
        self.reset_seed = seed
        self.reset_rng = None if env is None else _generator_state(env.unwrapped.np_random)
        self.actions = []

    def record(self, action: np.ndarray) -> None:
        self.actions.append(np.array(action, copy=True))

    def state_dict(self) -> dict[str, Any]:
        actions = torch.from_numpy(np.stack(self.actions)) if self.actions else None
        return {"reset_seed": self.reset_seed, "reset_rng": self.reset_rng, "actions": actions}

    def replay(self, env: gym.Env, state: dict[str, Any], expected_obs: np.ndarray) -> tuple[np.ndarray, bool]:
        """Reset and step `env` as recorded. Returns (observation, whether it matches `expected_obs`);
        on a mismatch (a non-deterministic environment) a fresh episode is started instead."""
        if state["reset_seed"] is None:
            _set_generator_state(env.unwrapped.np_random, state["reset_rng"])
        self.reset_seed, self.reset_rng, self.actions = state["reset_seed"], state["reset_rng"], []
        obs, _ = env.reset(seed=state["reset_seed"])
        actions = [] if state["actions"] is None else list(state["actions"].numpy())
        for action in actions:
            self.record(action)
            obs, *_ = env.step(action)
        if np.array_equal(obs, expected_obs):
            return obs, True
        log.warning("the environment did not replay to the saved observation (is it non-deterministic?); "
                    "the resumed run starts a new episode, so it is not bitwise identical to an uninterrupted one")
        return self.reset(env), False
