"""agent.compile=auto: the fastest mode that runs this agent on this machine, and a run that goes on
where a mode does not.

On a GPU that is CUDA graphs, then compile. CUDA refuses some captures (a stream autograd kept from an
earlier call, an operation that syncs with the host, a driver's limits), and a failed capture leaves
PyTorch's CUDA random number generator in capture mode: the process cannot go on, with graphs or
without. On a CPU it is compile where it was measured to win (docs/benchmarks.md, "The compiled update
on a CPU"): MLP agents, continuous or discrete, with enough gradient steps ahead to win back the
compile time; eager PyTorch for DroQ's dropout critics (slower compiled), image encoders (not measured)
and short runs. Inductor needs a C++ compiler on a CPU, which a slim image may lack.

So, before a run with agent.compile=auto builds its agent, a child process builds the same agent (same
config, spaces and device), runs enough updates on random batches for every piece to be compiled (and
captured), and acts as training and evaluation will. If that fails, the next mode is probed the same
way; the run takes the first that works, or eager PyTorch, and says which in one line. The choice
depends on the whole run's planned length, not on what is left of it, so a resumed run takes the mode
its first segment took and continues it bit for bit.

The probe costs a process start and one compile; Inductor's on-disk cache (in the user's cache
directory: algo/compilation.py) keeps the compiled kernels for the run itself, the next runs and
resumes. Modes asked for by name (off, compile, cudagraphs) are never probed: the user chose them, and
a failure stops the run with how to go on.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from sac_runner.algo.compilation import keep_compiled_kernels
from sac_runner.config import RunConfig
from sac_runner.run.cadence import Cadence
from sac_runner.run.envs import Spaces

log = logging.getLogger(__name__)

PROBE_TRANSITIONS = 64  # random transitions the probe's buffer holds per environment, at least two batches


# Gradient steps from which compile wins back its cost on a CPU: the compiled step saves 1.7 ms (sac)
# to 7 ms (crossq_small) of 5-15 ms, compiling costs 20-40 s with a cold cache plus the probe's
# process (scripts/bench_update.py, docs/benchmarks.md).
CPU_COMPILE_MIN_GRADIENT_STEPS = 50_000


def auto_modes(run: RunConfig, spaces: Spaces, device: torch.device) -> tuple[tuple[str, ...], str]:
    """The modes agent.compile=auto tries for this run on `device`, fastest first, and when it tries
    none, why eager PyTorch (off) is the faster choice."""
    if device.type == "cuda":
        return ("cudagraphs", "compile"), ""
    if device.type != "cpu":
        return (), f"compiling is not measured on {device.type}"
    if run.agent.critic_dropout > 0:
        return (), "dropout critics (DroQ) update 1.3x slower compiled on a CPU: their masks are drawn on the host"
    if spaces.pixels:
        return (), "image encoders are not measured faster compiled on a CPU"
    steps = planned_gradient_steps(run)
    if steps < CPU_COMPILE_MIN_GRADIENT_STEPS:
        return (), (f"{steps:_} gradient steps do not win back the compile time on a CPU "
                    f"(from {CPU_COMPILE_MIN_GRADIENT_STEPS:_} they do)")
    return ("compile",), ""


def planned_gradient_steps(run: RunConfig) -> int:
    """The gradient steps the whole run takes, from step 0 to schedule.total_steps (its epochs)."""
    return Cadence(run).update_events(0, run.schedule.steps) * run.schedule.gradient_steps


@dataclass(frozen=True)
class CompileChoice:
    """The agent.compile mode a run builds its agent with, and for auto what it chose and why: one line
    for the run's log once every check has passed (a refused run prints its error alone)."""

    mode: str
    note: str = ""
    warns: bool = False  # a probe failed: a warning, not an info line

    def log(self) -> None:
        if self.note:
            log.log(logging.WARNING if self.warns else logging.INFO, "%s", self.note)


def choose_compile_mode(run: RunConfig, spaces: Spaces, device: torch.device) -> CompileChoice:
    """agent.compile as set, or for auto the first of auto_modes() that a probe in a child process runs
    without error (off if none)."""
    if run.agent.compile != "off":
        keep_compiled_kernels()  # for the next run of a sweep and the resume, the probe's for the run
    if run.agent.compile != "auto":
        return CompileChoice(run.agent.compile)
    modes, why_eager = auto_modes(run, spaces, device)
    if not modes:
        return CompileChoice("off", f"agent.compile=auto: off (eager PyTorch): {why_eager}")
    failures = []
    for mode in modes:
        start = time.perf_counter()
        failure = probe_in_child(run, spaces, device, mode)
        if failure is None:
            chosen = f"agent.compile=auto: {mode} (probed in {time.perf_counter() - start:.0f} s)"
            return CompileChoice(mode, "; ".join([chosen, *failures]), warns=bool(failures))
        failures.append(f"{mode} failed in the probe: {failure}")
    return CompileChoice("off", "; ".join(["agent.compile=auto: off (eager PyTorch)", *failures]), warns=True)


PROBE_TIMEOUT_S = 900  # a cold compile takes 30 s on a 2-core CPU; a probe stuck past this is a failure


def probe_in_child(run: RunConfig, spaces: Spaces, device: torch.device, mode: str) -> str | None:
    """None if the agent, built with agent.compile=mode in a fresh process, updates and acts; else why not.

    A fresh Python (`python -m sac_runner.run.compile_probe`, the probe's arguments as JSON on its
    stdin, its answer the last line of its stdout) takes a failed capture's broken CUDA state with it.
    Not a multiprocessing child: spawning one from a sweep's joblib (loky) worker fails (the child
    cannot set the parent's start method, loky), and spawning re-runs the parent's main script."""
    payload = probe_arguments_to_json(run, spaces, str(device), mode, torch.get_num_threads()).encode()
    package_root = str(Path(__file__).resolve().parents[2])  # sac_runner's parent: importable however we were
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=payload, capture_output=True, env=env,
                              timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the probe took longer than {PROBE_TIMEOUT_S} s"
    answer = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not answer:
        errors = done.stderr.decode(errors="replace").strip().splitlines()
        return f"the probe's process died (exit code {done.returncode}{': ' + errors[-1] if errors else ''})"
    return json.loads(answer[-1])["failure"]


def _probe(run: RunConfig, spaces: Spaces, device_name: str, mode: str, threads: int) -> str | None:
    """In the child: build the agent with `mode`, run updates until every piece is past its warm-up calls
    and captured, and act on a batch of num_envs observations (sampled) and on one (deterministic).
    With the parent's torch threads: Inductor's CPU kernels are compiled for a thread count, and the
    run then finds the probe's kernels in the on-disk cache."""
    logging.disable(logging.WARNING)  # the child's notes (compiling, capturing) are the parent's to report
    torch.set_num_threads(threads)
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


def probe_arguments_to_json(run: RunConfig, spaces: Spaces, device_name: str, mode: str, threads: int) -> str:
    return json.dumps({"run": OmegaConf.to_container(OmegaConf.structured(run)), "spaces": asdict(spaces),
                       "device": device_name, "mode": mode, "threads": threads})


def probe_arguments_from_json(text: str) -> tuple[RunConfig, Spaces, str, str, int]:
    """What probe_arguments_to_json wrote, as _probe takes it (no pickle: only data crosses)."""
    payload = json.loads(text)
    run = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), payload["run"]))
    image_shape = payload["spaces"]["image_shape"]
    spaces = Spaces(**{**payload["spaces"], "image_shape": tuple(image_shape) if image_shape else None})
    return run, spaces, payload["device"], payload["mode"], payload["threads"]


if __name__ == "__main__":  # the probe's process (probe_in_child)
    print(json.dumps({"failure": _probe(*probe_arguments_from_json(sys.stdin.read()))}), flush=True)
