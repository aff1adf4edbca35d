"""Device and thread selection (no GPU on the CI machine: the CUDA branch is checked by its selection)."""

import pytest
import torch
from omegaconf import OmegaConf

from sac_runner import hardware
from sac_runner.config import ConfigError, RunConfig
from sac_runner.sweep import jobs_side_by_side


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


def test_auto_threads_share_the_usable_cores_among_parallel_jobs(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(hardware, "usable_cores", lambda: 8)
    assert hardware.torch_threads("auto") == 8
    assert hardware.torch_threads("auto", parallel_jobs=4) == 2
    assert hardware.torch_threads("auto", parallel_jobs=16) == 1
    assert hardware.torch_threads("3", parallel_jobs=4) == 3  # an explicit setting wins


def test_auto_threads_follow_a_schedulers_budget(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # e.g. Ray, for a task given 3 CPUs
    assert hardware.torch_threads("auto") == 3
    assert hardware.torch_threads("2") == 2


def test_use_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert hardware.use_threads("1") == 1
        assert torch.get_num_threads() == 1
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
    monkeypatch.setattr("sac_runner.sweep.usable_cores", lambda: 8)
    hydra_cfg = OmegaConf.create({"mode": mode, "launcher": launcher})
    assert jobs_side_by_side(hydra_cfg) == expected
