"""agent.compile=auto never stops a run where eager PyTorch would finish: the probe in a child process
(run/compile_probe.py), with its failure made on purpose on the CPU (CUDA graphs cannot run there)."""

from __future__ import annotations

import logging

import torch

from sac_runner.run import compile_probe
from sac_runner.run.compile_probe import choose_compile_mode, probe_in_child
from sac_runner.run.envs import Spaces
from sac_runner.run.run_config import to_run_config
from tests.harness import tiny_config, train_tiny

CPU = torch.device("cpu")
PENDULUM = Spaces(obs_dim=3, action_dim=1, discrete=False)


def test_a_mode_that_runs_passes_the_probe():
    run = to_run_config(tiny_config("agent=crossq_small"))  # Batch Renorm, delayed actor: every piece
    assert probe_in_child(run, PENDULUM, CPU, "off") is None


def test_a_failed_mode_reports_why_from_the_child_process():
    run = to_run_config(tiny_config())
    reason = probe_in_child(run, PENDULUM, CPU, "cudagraphs")  # no CUDA here: the capture cannot happen
    assert reason is not None and "needs a CUDA device" in reason


def test_modes_asked_for_by_name_are_never_probed(monkeypatch):
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda *args: "must not be called")
    for mode in ("off", "compile", "cudagraphs"):
        assert choose_compile_mode(to_run_config(tiny_config(f"agent.compile={mode}")), PENDULUM, CPU) == mode


def test_auto_on_the_cpu_is_left_to_the_agent_without_a_probe(monkeypatch):
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda *args: "must not be called")
    assert choose_compile_mode(to_run_config(tiny_config()), PENDULUM, CPU) == "auto"


def test_auto_takes_the_first_mode_whose_probe_passes_and_says_what_failed(monkeypatch, caplog):
    outcomes = {"cudagraphs": "AcceleratorError: operation not permitted when stream is capturing", "compile": None}
    monkeypatch.setattr(compile_probe, "auto_modes", lambda device: ("cudagraphs", "compile"))
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda run, spaces, device, mode: outcomes[mode])
    with caplog.at_level(logging.INFO):
        assert choose_compile_mode(to_run_config(tiny_config()), PENDULUM, CPU) == "compile"
    [line] = [r for r in caplog.records if r.name == compile_probe.__name__]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("agent.compile=auto: compile (probed in")
    assert "cudagraphs failed in the probe: AcceleratorError: operation not permitted" in line.getMessage()


def test_a_run_whose_capture_fails_goes_on_eagerly_with_one_warning(tmp_path, monkeypatch, caplog):
    """End to end: auto tries CUDA graphs (here on the CPU, where the capture fails in the child), warns
    once and trains to the end in eager mode."""
    monkeypatch.setattr(compile_probe, "auto_modes", lambda device: ("cudagraphs",))
    with caplog.at_level(logging.WARNING):
        tiny = train_tiny(tmp_path, "agent.compile=auto")
    [warning] = [r.getMessage() for r in caplog.records if r.name == compile_probe.__name__]
    assert warning.startswith("agent.compile=auto: off (eager PyTorch); cudagraphs failed in the probe: ")
    assert tiny.parts.agent.compile_mode == "off"
    assert tiny.trainer.state.step == tiny.run.schedule.total_steps
    assert tiny.run.agent.compile == "auto"  # the saved config keeps auto: a resume probes again
