"""agent.compile=auto on a GPU: CUDA graphs where they work on this machine, and a run that goes on
where they do not.

CUDA refuses some captures (a stream autograd kept from an earlier call, an operation that syncs with
the host, a driver's limits), and a failed capture leaves PyTorch's CUDA random number generator in
capture mode: the process cannot go on, with graphs or without. So, before a run with
agent.compile=auto builds its agent on a CUDA device, a child process builds the same agent (same
config, spaces and device), runs enough updates on random batches for every piece to be captured, and
acts as training and evaluation will. If that fails, the next mode is probed the same way; the run
takes the first that works (cudagraphs, then compile), or eager PyTorch, and says which in one line.

The probe costs a process start and one compile; Inductor's on-disk cache keeps the compiled kernels
for the run itself. Modes asked for by name (off, compile, cudagraphs) are never probed: the user
chose them, and a failure stops the run with how to go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import numpy as np
import torch

from sac_runner.config import RunConfig
from sac_runner.run.envs import Spaces

log = logging.getLogger(__name__)

PROBE_TRANSITIONS = 64  # random transitions the probe's buffer holds per environment, at least two batches


def auto_modes(device: torch.device) -> tuple[str, ...]:
    """The modes agent.compile=auto tries on `device`, fastest first; eager (off) when none works."""
    return ("cudagraphs", "compile") if device.type == "cuda" else ()


def choose_compile_mode(run: RunConfig, spaces: Spaces, device: torch.device) -> str:
    """The agent.compile mode this run builds its agent with: agent.compile as set, or for auto the
    first of auto_modes(device) that a probe in a child process runs without error (off if none)."""
    if run.agent.compile != "auto":
        return run.agent.compile
    modes = auto_modes(device)
    if not modes:
        return "auto"  # the agent resolves it for the device (algo/compilation.py)
    failures = []
    for mode in modes:
        start = time.perf_counter()
        failure = probe_in_child(run, spaces, device, mode)
        if failure is None:
            chosen = f"agent.compile=auto: {mode} (probed in {time.perf_counter() - start:.0f} s)"
            if failures:
                log.warning("%s; %s", chosen, "; ".join(failures))
            else:
                log.info(chosen)
            return mode
        failures.append(f"{mode} failed in the probe: {failure}")
    log.warning("agent.compile=auto: off (eager PyTorch); %s", "; ".join(failures))
    return "off"


def probe_in_child(run: RunConfig, spaces: Spaces, device: torch.device, mode: str) -> str | None:
    """None if the agent, built with agent.compile=mode in a fresh process, updates and acts; else why not.
    A fresh process (spawned, not forked: CUDA does not survive a fork) takes the failed capture's
    broken state with it."""
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(_probe, run, spaces, str(device), mode).result()
    except BrokenProcessPool:
        return "the probe's process died"


def _probe(run: RunConfig, spaces: Spaces, device_name: str, mode: str) -> str | None:
    """In the child: build the agent with `mode`, run updates until every piece is past its warm-up calls
    and captured, and act on a batch of num_envs observations (sampled) and on one (deterministic)."""
    logging.disable(logging.WARNING)  # the child's notes (compiling, capturing) are the parent's to report
    from sac_runner.algo.compilation import WARMUP_CALLS
    from sac_runner.run.builders import make_agent, make_replay_buffer

    try:
        device = torch.device(device_name)
        transitions = max(PROBE_TRANSITIONS, 2 * run.schedule.batch_size) * run.env.num_envs
        run = replace(run, agent=replace(run.agent, compile=mode), buffer=replace(run.buffer, capacity=transitions))
        agent = make_agent(run, spaces, device)
        buffer = make_replay_buffer(run, spaces, device)
        rng = np.random.default_rng(0)
        for i in range(transitions):
            buffer.add(_random_obs(spaces, rng), _random_action(spaces, rng), float(rng.normal()),
                       _random_obs(spaces, rng), terminated=i % 20 == 19, stream=i % run.env.num_envs)
        for _ in range((WARMUP_CALLS + 2) * agent.policy_update_every):  # the run's batch size: graphs are per shape
            agent.update(buffer.sample(run.schedule.batch_size))
        for _ in range(WARMUP_CALLS + 2):
            agent.act(np.stack([_random_obs(spaces, rng) for _ in range(run.env.num_envs)]))
            agent.act(_random_obs(spaces, rng), deterministic=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as error:  # anything the mode cannot run is a reason to try the next
        lines = str(error).strip().splitlines()
        return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return None


def _random_obs(spaces: Spaces, rng: np.random.Generator) -> np.ndarray:
    if spaces.pixels:
        return rng.integers(0, 256, size=spaces.obs_shape, dtype=np.uint8)
    return rng.normal(size=spaces.obs_dim).astype(np.float32)


def _random_action(spaces: Spaces, rng: np.random.Generator) -> np.ndarray | int:
    if spaces.discrete:
        return int(rng.integers(spaces.action_dim))
    return rng.uniform(-1, 1, size=spaces.action_dim).astype(np.float32)
