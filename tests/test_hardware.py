"""Device and thread selection (no GPU on the CI machine: the CUDA branch is checked by its selection)."""

import pytest
import torch
from omegaconf import OmegaConf

from sac_runner.run import hardware
from sac_runner.config import ConfigError, RunConfig
from sac_runner.run.sweep import jobs_side_by_side


def test_auto_device_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware.resolve_device("auto") == torch.device("cuda")
    assert hardware.resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device is available; set device=auto or device=cpu"):
        hardware.resolve_device("cuda")


def _budget(monkeypatch, cores: int, quota: float | None = None, **environ: str):
    """cpu_budget() with a faked affinity set, cgroup quota and environment."""
    for variable in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setattr(hardware, "affinity", lambda: set(range(cores)))
    monkeypatch.setattr(hardware, "cgroup_cpu_quota", lambda: quota)
    return hardware.cpu_budget()


def test_budget_counts_the_affinity_set_not_the_machine(monkeypatch):
    assert _budget(monkeypatch, 3) == hardware.CpuBudget(3, "3 usable cores")


def test_budget_follows_a_cgroup_quota_rounded_down(monkeypatch):
    assert _budget(monkeypatch, 4, quota=1.5) == hardware.CpuBudget(1, "a cgroup CPU quota of 1.5 of 4 cores")
    assert _budget(monkeypatch, 4, quota=0.5).cores == 1  # never below one thread
    assert _budget(monkeypatch, 2, quota=8.0) == hardware.CpuBudget(2, "2 usable cores")  # the tighter limit


def test_budget_follows_slurm_and_a_schedulers_omp_setting(monkeypatch):
    assert _budget(monkeypatch, 8, SLURM_CPUS_PER_TASK="4") == hardware.CpuBudget(4, "SLURM_CPUS_PER_TASK=4")
    assert _budget(monkeypatch, 8, OMP_NUM_THREADS="3") == hardware.CpuBudget(3, "OMP_NUM_THREADS=3")  # Ray
    assert _budget(monkeypatch, 8, SLURM_CPUS_PER_TASK="4", OMP_NUM_THREADS="2").cores == 2
    assert _budget(monkeypatch, 2, OMP_NUM_THREADS="16").cores == 2


def _cgroup(tmp_path, proc_line: str, files: dict[str, str]):
    """A fake /proc/self/cgroup and /sys/fs/cgroup tree; returns cgroup_cpu_quota() read from them."""
    (tmp_path / "proc_cgroup").write_text(proc_line + "\n")
    for name, text in files.items():
        path = tmp_path / "root" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    (tmp_path / "root").mkdir(exist_ok=True)
    return hardware.cgroup_cpu_quota(tmp_path / "proc_cgroup", tmp_path / "root")


def test_cgroup_v2_quota(tmp_path):
    assert _cgroup(tmp_path, "0::/job", {"job/cpu.max": "150000 100000"}) == 1.5


def test_cgroup_v2_max_is_no_limit(tmp_path):
    assert _cgroup(tmp_path, "0::/job", {"job/cpu.max": "max 100000"}) is None


def test_cgroup_v2_parent_limit_counts_and_the_tightest_wins(tmp_path):
    assert _cgroup(tmp_path, "0::/slurm/job/step", {"slurm/job/cpu.max": "200000 100000",
                                                    "slurm/job/step/cpu.max": "max 100000",
                                                    "cpu.max": "400000 100000"}) == 2.0


def test_cgroup_v2_in_a_container_reads_its_own_root(tmp_path):
    # A container's /proc/self/cgroup names a path that its cgroup namespace shows at the root.
    assert _cgroup(tmp_path, "0::/docker/abc", {"cpu.max": "50000 100000"}) == 0.5


def test_cgroup_v1_quota(tmp_path):
    assert _cgroup(tmp_path, "4:cpu,cpuacct:/docker/abc", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
                                                            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}) == 3.0
    assert _cgroup(tmp_path, "4:cpu,cpuacct:/", {"cpu,cpuacct/cpu.cfs_quota_us": "-1",
                                                  "cpu,cpuacct/cpu.cfs_period_us": "100000"}) is None


def test_cgroup_v1_separate_cpu_mount(tmp_path):
    assert _cgroup(tmp_path, "1:cpu:/", {"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000"}) == 1.5


def test_no_cgroup_file_means_no_limit(tmp_path):
    assert hardware.cgroup_cpu_quota(tmp_path / "missing", tmp_path) is None


def test_auto_threads_share_the_budget_with_other_runs_and_sweep_jobs():
    two = hardware.CpuBudget(2, "2 usable cores")
    assert hardware.choose_threads("auto", budget=two).describe() == "2 torch threads: 2 usable cores"
    assert hardware.choose_threads("auto", other_runs=1, budget=two).describe() == \
        "1 torch thread: 2 usable cores, 1 other sac-runner run on these cores"
    assert hardware.choose_threads("auto", other_runs=3, budget=two).threads == 1
    eight = hardware.CpuBudget(8, "8 usable cores")
    assert hardware.choose_threads("auto", parallel_jobs=4, budget=eight).describe() == \
        "2 torch threads: 8 usable cores, 4 sweep jobs side by side"
    # A sweep's jobs are registered runs too: 3 siblings of a 4-job sweep are not counted twice.
    assert hardware.choose_threads("auto", parallel_jobs=4, other_runs=3, budget=eight).threads == 2
    assert hardware.choose_threads("auto", parallel_jobs=16, budget=eight).threads == 1


def test_an_explicit_thread_count_is_obeyed():
    choice = hardware.choose_threads("3", parallel_jobs=4, other_runs=5, budget=hardware.CpuBudget(2, "x"))
    assert choice.describe() == "3 torch threads: threads=3 (as set)"


def test_registry_counts_live_runs_on_shared_cpus_and_drops_dead_ones(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys

    monkeypatch.setattr(hardware, "affinity", lambda: {0, 1})
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / str(sleeper.pid)).write_text(json.dumps({"pid": sleeper.pid, "cpus": [1, 2]}))
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (tmp_path / dead.stdout.strip()).write_text(json.dumps({"pid": int(dead.stdout), "cpus": [0]}))
        (tmp_path / "99999999").write_text(json.dumps({"pid": sleeper.pid, "cpus": [5, 6]}))  # other cores
        with hardware.RunRegistry(tmp_path) as registry:
            assert registry.path.exists()
            assert registry.others_sharing_cpus() == 1  # the sleeper; not itself, not the dead one
            assert not (tmp_path / dead.stdout.strip()).exists()  # a killed run's file is cleaned up
        assert not registry.path.exists()  # a finished run leaves
    finally:
        sleeper.kill()
        sleeper.wait()
    with hardware.RunRegistry(tmp_path) as registry:
        assert registry.others_sharing_cpus() == 0


def test_a_reused_pid_is_not_a_live_run(tmp_path, monkeypatch):
    import json
    import os

    monkeypatch.setattr(hardware, "affinity", lambda: {0})
    (tmp_path / "1").write_text(json.dumps({"pid": os.getppid(), "start": "not-its-start-time", "cpus": [0]}))
    assert hardware.RunRegistry(tmp_path).others_sharing_cpus() == 0


def test_threads_follow_runs_that_start_and_stop(tmp_path, monkeypatch):
    import json
    import os

    monkeypatch.setattr(hardware, "cpu_budget", lambda: hardware.CpuBudget(2, "2 usable cores"))
    monkeypatch.setattr(hardware, "affinity", lambda: {0, 1})
    before = torch.get_num_threads()
    try:
        with hardware.RunRegistry(tmp_path) as registry:
            threads = hardware.TorchThreads("auto", registry=registry, recount_s=0.0)
            assert (threads.choice.threads, torch.get_num_threads()) == (2, 2)
            other = tmp_path / "1"
            other.write_text(json.dumps({"pid": os.getppid(), "cpus": [0, 1]}))  # a live process: a second run
            assert threads.refresh().describe() == "1 torch thread: 2 usable cores, 1 other sac-runner run on these cores"
            assert torch.get_num_threads() == 1
            assert threads.refresh() is None  # unchanged
            other.unlink()
            assert threads.refresh().threads == 2 and torch.get_num_threads() == 2
            fixed = hardware.TorchThreads("1", registry=registry, recount_s=0.0)
            other.write_text(json.dumps({"pid": os.getppid(), "cpus": [0, 1]}))
            assert fixed.refresh() is None and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_setting_is_validated():
    with pytest.raises(ConfigError, match="threads must be auto or a positive number of threads, got 'many'"):
        RunConfig(threads="many")
    with pytest.raises(ConfigError, match="got '0'"):
        RunConfig(threads="0")


@pytest.mark.parametrize("mode, launcher, expected", [
    ("RunMode.RUN", {"n_jobs": 4}, 1),
    ("RunMode.MULTIRUN", {}, 1),                 # the basic launcher runs jobs one after another
    ("RunMode.MULTIRUN", {"n_jobs": 2}, 2),      # joblib
    ("RunMode.MULTIRUN", {"n_jobs": -1}, 8),     # joblib: one job per core
])
def test_jobs_side_by_side_reads_the_launcher(monkeypatch, mode, launcher, expected):
    monkeypatch.setattr("sac_runner.run.sweep.usable_cores", lambda: 8)
    hydra_cfg = OmegaConf.create({"mode": mode, "launcher": launcher})
    assert jobs_side_by_side(hydra_cfg) == expected


def test_registry_ignores_files_that_are_not_records(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "affinity", lambda: {0})
    (tmp_path / "123").write_text("not json")
    (tmp_path / "124").write_text('{"cpus": [0]}')  # no pid
    (tmp_path / "125").write_text('{"pid": "x", "cpus": [0]}')
    assert hardware.RunRegistry(tmp_path).others_sharing_cpus() == 0


def test_available_memory_is_the_tighter_of_memavailable_and_a_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    root = tmp_path / "root"
    (root / "job").mkdir(parents=True)
    (tmp_path / "cgroup").write_text("0::/job\n")
    (root / "job" / "memory.max").write_text("4294967296\n")       # a 4 GiB limit (v2)
    (root / "job" / "memory.current").write_text("1073741824\n")   # 1 GiB of it used
    assert hardware.available_memory(meminfo, tmp_path / "cgroup", root) == 3 * 2**30
    (root / "job" / "memory.max").write_text("max\n")
    assert hardware.available_memory(meminfo, tmp_path / "cgroup", root) == 20000000 * 1024
    (tmp_path / "cgroup").write_text("5:memory:/\n")                 # v1, "no limit" as a huge number
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text(str(2**63 - 4096))
    (root / "memory" / "memory.usage_in_bytes").write_text("0")
    assert hardware.available_memory(meminfo, tmp_path / "cgroup", root) == 20000000 * 1024
    (root / "memory" / "memory.limit_in_bytes").write_text(str(2 * 2**30))
    assert hardware.available_memory(meminfo, tmp_path / "cgroup", root) == 2 * 2**30
