"""Where a run computes: the torch device and the number of CPU threads."""

from __future__ import annotations

import os

import torch

from sac_runner.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """auto: the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA device is available; set device=auto or device=cpu")
    return device


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a Slurm allocation), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_threads(setting: str, parallel_jobs: int = 1) -> int:
    """Intra-op threads for torch. `auto`: the thread budget a scheduler gave this process in
    OMP_NUM_THREADS (Ray sets it to a task's CPUs), else the usable cores shared among the jobs that
    run side by side (all of them for a single run, one each when a local sweep runs a job per core).
    A number is kept as it is."""
    if setting != "auto":
        return int(setting)
    budget = os.environ.get("OMP_NUM_THREADS", "")
    if budget.isdigit() and int(budget) > 0:
        return int(budget)
    return max(1, usable_cores() // max(1, parallel_jobs))


def use_threads(setting: str, parallel_jobs: int = 1) -> int:
    threads = torch_threads(setting, parallel_jobs)
    torch.set_num_threads(threads)
    return threads
