"""Where a run computes: the torch device, and how many CPU threads torch may use on a shared machine.

`threads=auto` counts the CPUs this process may really use (its affinity, a cgroup CPU quota of a
container or Slurm job, SLURM_CPUS_PER_TASK, a scheduler's OMP_NUM_THREADS) and shares them with the
other sac-runner runs on this machine, found in a small registry of running processes. Two runs that
each start one OpenMP thread per core on a 2-core machine spin against each other: measured together
7.6x slower than two 1-thread runs (issue 18). Runs register when they start and leave when they end,
and a running run re-counts every few seconds, so the threads follow runs as they start and stop.

One module (just over 300 lines) on purpose: the device, the CPUs and memory a process may use, and
the torch threads shared between runs all read the same affinity set and cgroup files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sac_runner.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """auto: the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA device is available; set device=auto or device=cpu")
    return device


# ---- the CPUs this process may use -------------------------------------------------------------------

def affinity() -> set[int]:
    """The CPUs this process may run on (taskset, a Slurm or container cpuset), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def usable_cores() -> int:
    return len(affinity())


CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _cgroup_limits(controller: str, read_v1, read_v2, proc_cgroup: Path, root: Path) -> list[float]:
    """The limits `read_*` find in this process's cgroup and each parent, in v2's unified hierarchy and
    in v1's `controller` hierarchy. A container sees its own cgroup at the root, so the walk up ends
    there too."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":   # v2: one unified hierarchy
            base, read = root, read_v2
        elif controller in controllers.split(","):
            base, read = root / controllers, read_v1
            if not base.is_dir():
                base = root / controller
        else:
            continue
        directory = base / path.lstrip("/")
        while True:
            if (limit := read(directory)) is not None:
                limits.append(limit)
            if directory == base or base not in directory.parents:
                break
            directory = directory.parent
    return limits


def cgroup_cpu_quota(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time the process's cgroups allow (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` /
    `cpu.cfs_period_us`), the tightest over the cgroup and its parents; None when there is no limit."""
    quotas = _cgroup_limits("cpu", _v1_quota, _v2_quota, proc_cgroup, root)
    return min(quotas) if quotas else None


def available_memory(meminfo: Path = Path("/proc/meminfo"), proc_cgroup: Path = PROC_CGROUP,
                     root: Path = CGROUP_ROOT) -> int | None:
    """Bytes this process can still allocate: the machine's MemAvailable, or less where a cgroup memory
    limit (a container, a Slurm job's --mem) leaves less; None where neither can be read."""
    found = _cgroup_limits("memory", _v1_memory_left, _v2_memory_left, proc_cgroup, root)
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    return int(min(found)) if found else None


def _memory_left(limit_file: Path, usage_file: Path) -> float | None:
    try:
        limit = limit_file.read_text().strip()
        if limit == "max" or int(limit) >= 2**60:  # v1 writes "no limit" as a huge number
            return None
        return max(0, int(limit) - int(usage_file.read_text()))
    except (OSError, ValueError):
        return None


def _v2_memory_left(directory: Path) -> float | None:
    return _memory_left(directory / "memory.max", directory / "memory.current")


def _v1_memory_left(directory: Path) -> float | None:
    return _memory_left(directory / "memory.limit_in_bytes", directory / "memory.usage_in_bytes")


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 else quota / period


@dataclass(frozen=True)
class CpuBudget:
    """How many CPUs this process may keep busy, and what limits it (for the log line)."""

    cores: int
    reason: str


def cpu_budget() -> CpuBudget:
    """The tightest of: the affinity set, the cgroup CPU quota (rounded down: 1.5 CPUs of time keep one
    thread busy without being throttled), Slurm's cpus-per-task, a scheduler's OMP_NUM_THREADS (Ray
    sets it per task)."""
    cores = usable_cores()
    budget = CpuBudget(cores, f"{cores} usable core{'s' if cores != 1 else ''}")
    quota = cgroup_cpu_quota()
    if quota is not None and max(1, math.floor(quota)) < budget.cores:
        budget = CpuBudget(max(1, math.floor(quota)), f"a cgroup CPU quota of {quota:g} of {cores} cores")
    for variable in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and 0 < int(value) < budget.cores:
            budget = CpuBudget(int(value), f"{variable}={value}")
    return budget


# ---- other sac-runner runs on this machine -------------------------------------------------------------

def _default_registry_dir() -> Path:
    return Path(os.environ.get("SAC_RUNNER_RUN_REGISTRY", Path(tempfile.gettempdir()) / "sac-runner-runs"))


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (tells a live run from a new process that reused its pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class RunRegistry:
    """One small file per running sac-runner run in a directory every user can write (like /tmp), so a
    run can count the others that share its CPUs. A file whose process is gone (a killed run) is
    ignored and removed by the next run that looks."""

    def __init__(self, directory: Path | None = None, run_dir: Path | None = None):
        self.directory = directory or _default_registry_dir()
        self.path = self.directory / str(os.getpid())
        self.run_dir = run_dir  # lets sac-report mark a run that is still training

    def __enter__(self) -> "RunRegistry":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.directory.stat().st_uid == os.getuid():
                os.chmod(self.directory, 0o1777)  # shared by every user's runs, like /tmp
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "start": _process_start(os.getpid()),
                                       "cpus": sorted(affinity()),
                                       "run_dir": str(self.run_dir.resolve()) if self.run_dir else None}))
            os.replace(tmp, self.path)
        except OSError as error:  # counting others is an optimization; a run never fails for it
            log.debug("run registry %s not writable (%s): other runs are not counted", self.directory, error)
        return self

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)

    def others_sharing_cpus(self) -> int:
        """Live sac-runner runs other than this one whose CPUs overlap this process's."""
        mine = affinity()
        return sum(1 for record in self.live_runs() if mine & set(record.get("cpus", [])))

    def live_runs(self) -> list[dict]:
        """The records of the live runs other than this process (files of dead ones are removed)."""
        try:
            entries = [p for p in self.directory.iterdir() if p.name.isdigit() and p != self.path]
        except OSError:
            return []
        live = []
        for entry in entries:
            try:
                record = json.loads(entry.read_text())
                alive = _alive(record)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written, just removed, or not a record of ours
            if alive:
                live.append(record)
                continue
            try:
                entry.unlink(missing_ok=True)
            except OSError:  # another user's file in the shared (sticky) directory: theirs to remove
                pass
        return live


def _alive(record: dict) -> bool:
    pid = int(record["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    start = _process_start(pid)
    return start is None or record.get("start") in (None, start)


# ---- torch's threads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str

    def describe(self) -> str:
        return f"{self.threads} torch thread{'s' if self.threads != 1 else ''}: {self.reason}"


def choose_threads(setting: str, parallel_jobs: int = 1, other_runs: int = 0,
                   budget: CpuBudget | None = None) -> ThreadChoice:
    """`threads=N` is obeyed. `auto`: the CPU budget shared evenly among this run, the other sac-runner
    runs on these CPUs and the jobs a local parallel sweep runs at once (its jobs are such runs too, so
    the larger count is taken, not the product), at least one thread each."""
    if setting != "auto":
        return ThreadChoice(int(setting), f"threads={setting} (as set)")
    budget = budget or cpu_budget()
    sharing = max(1 + other_runs, parallel_jobs)
    reason = budget.reason
    if other_runs:
        reason += f", {other_runs} other sac-runner run{'s' if other_runs != 1 else ''} on these cores"
    if parallel_jobs > 1 + other_runs:
        reason += f", {parallel_jobs} sweep jobs side by side"
    return ThreadChoice(max(1, budget.cores // sharing), reason)


class TorchThreads:
    """Sets torch's intra-op threads for one run and keeps the choice current while it trains.

    `refresh()` is called by the training loop after every step (from the main thread: OpenMP's
    thread count is per calling thread); it re-counts the other runs at most every `recount_s` seconds
    (a count reads a few tiny files, about 0.1 ms) and changes torch's threads when the share changed.
    The check is on time, not on steps: a run that oversubscribes the cores crawls (measured: 100
    HalfCheetah steps in 32 s with 2 threads beside two 1-thread runs on 2 cores), so a check every
    N steps would come far too late."""

    def __init__(self, setting: str, parallel_jobs: int = 1, registry: RunRegistry | None = None,
                 recount_s: float = 2.0):
        self.setting, self.parallel_jobs, self.registry = setting, parallel_jobs, registry
        self.recount_s = recount_s
        self.budget = cpu_budget() if setting == "auto" else None
        self.choice = self._choose()
        self._counted_at = time.monotonic()
        torch.set_num_threads(self.choice.threads)

    def _choose(self) -> ThreadChoice:
        others = self.registry.others_sharing_cpus() if self.registry and self.setting == "auto" else 0
        return choose_threads(self.setting, self.parallel_jobs, others, self.budget)

    def refresh(self) -> ThreadChoice | None:
        """The new choice when it changed, else None."""
        if self.setting != "auto" or self.registry is None or time.monotonic() - self._counted_at < self.recount_s:
            return None
        self._counted_at = time.monotonic()
        choice = self._choose()
        if choice.threads == self.choice.threads:
            return None
        self.choice = choice
        torch.set_num_threads(choice.threads)
        return choice
