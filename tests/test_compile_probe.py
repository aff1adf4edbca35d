"""agent.compile=auto never stops a run where eager PyTorch would finish: the probe in a child process
(run/compile_probe.py), with its failure made on purpose on the CPU (CUDA graphs cannot run there; a
C++ compiler that does not exist stops Inductor), and on the CPU compile only where it wins."""

from __future__ import annotations

import logging
import os

import joblib
import torch
from torch._inductor.runtime.cache_dir_utils import default_cache_dir

from sac_runner.algo.compilation import keep_compiled_kernels
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


def test_the_probe_runs_from_a_sweeps_joblib_worker():
    """Hydra's joblib launcher runs each job in a loky worker, whose multiprocessing start method
    ('loky') a spawned child cannot set: the probe's process must not be a multiprocessing child."""
    run = to_run_config(tiny_config())
    with joblib.parallel_config(backend="loky", n_jobs=2):
        [answer] = joblib.Parallel()(joblib.delayed(probe_in_child)(run, PENDULUM, CPU, "off") for _ in range(1))
    assert answer is None


def test_the_probes_arguments_reach_its_process_as_they_were():
    run = to_run_config(tiny_config("agent=crossq_small", "buffer=prioritized", "env.num_envs=2"))
    pixels = Spaces(obs_dim=0, action_dim=6, discrete=False, image_shape=(9, 84, 84), frame_stack=3)
    for spaces in (PENDULUM, pixels):
        text = compile_probe.probe_arguments_to_json(run, spaces, "cuda:1", "cudagraphs", 3)
        assert compile_probe.probe_arguments_from_json(text) == (run, spaces, "cuda:1", "cudagraphs", 3)


def test_a_failed_mode_reports_why_from_the_child_process():
    run = to_run_config(tiny_config())
    reason = probe_in_child(run, PENDULUM, CPU, "cudagraphs")  # no CUDA here: the capture cannot happen
    assert reason is not None and "needs a CUDA device" in reason


def test_modes_asked_for_by_name_are_never_probed(monkeypatch):
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda *args: "must not be called")
    for mode in ("off", "compile", "cudagraphs"):
        choice = choose_compile_mode(to_run_config(tiny_config(f"agent.compile={mode}")), PENDULUM, CPU)
        assert choice.mode == mode and choice.note == ""


def test_auto_on_the_cpu_stays_eager_without_a_probe_where_compiling_does_not_win(monkeypatch):
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda *args: "must not be called")
    long = ("schedule.total_steps=1000000",)
    cases = {  # overrides, spaces -> why eager
        ((), PENDULUM): "201 gradient steps do not win back the compile time on a CPU (from 50_000 they do)",
        (long + ("agent=droq",), PENDULUM): "dropout critics (DroQ) update 1.3x slower compiled",
        (long, Spaces(obs_dim=0, action_dim=1, discrete=False, image_shape=(9, 84, 84), frame_stack=3)): "image encoders are not measured",
    }
    for (overrides, spaces), why in cases.items():
        choice = choose_compile_mode(to_run_config(tiny_config(*overrides)), spaces, CPU)
        assert choice.mode == "off" and not choice.warns
        assert choice.note.startswith("agent.compile=auto: off (eager PyTorch): ") and why in choice.note, choice.note


def test_auto_on_the_cpu_probes_compile_for_a_long_mlp_run(monkeypatch):
    probed = []
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda run, spaces, device, mode: probed.append(mode))
    cartpole = Spaces(obs_dim=4, action_dim=2, discrete=True)
    for agent, spaces in (("sac", PENDULUM), ("crossq_small", PENDULUM), ("sac_discrete", cartpole)):
        run = to_run_config(tiny_config(f"agent={agent}", "schedule.total_steps=1000000"))
        assert choose_compile_mode(run, spaces, CPU).mode == "compile"
    assert probed == ["compile", "compile", "compile"]


def test_the_planned_gradient_steps_follow_the_schedule():
    def steps(*overrides):
        return compile_probe.planned_gradient_steps(to_run_config(tiny_config(*overrides)))

    # Updates at every step from update_after to total_steps, both included.
    assert steps("schedule.total_steps=20000", "schedule.update_after=1000") == 19_001
    # Every 50th step from 1000 (1000, 1050, ..., 20000: 381 updates), 50 gradient steps each.
    assert steps("schedule.total_steps=20000", "schedule.update_after=1000", "schedule.update_every=50",
                 "schedule.gradient_steps=50") == 381 * 50
    # Epochs give the budget: 5 x 4000 steps.
    assert steps("schedule.steps_per_epoch=4000", "schedule.epochs=5", "schedule.update_after=0") == 20_000


def test_auto_takes_the_first_mode_whose_probe_passes_and_says_what_failed(monkeypatch, caplog):
    outcomes = {"cudagraphs": "AcceleratorError: operation not permitted when stream is capturing", "compile": None}
    monkeypatch.setattr(compile_probe, "auto_modes", lambda run, spaces, device: (("cudagraphs", "compile"), ""))
    monkeypatch.setattr(compile_probe, "probe_in_child", lambda run, spaces, device, mode: outcomes[mode])
    choice = choose_compile_mode(to_run_config(tiny_config()), PENDULUM, CPU)
    assert choice.mode == "compile" and choice.warns
    assert choice.note.startswith("agent.compile=auto: compile (probed in")
    assert "cudagraphs failed in the probe: AcceleratorError: operation not permitted" in choice.note
    with caplog.at_level(logging.INFO):
        choice.log()
    [line] = [r for r in caplog.records if r.name == compile_probe.__name__]
    assert line.levelno == logging.WARNING and line.getMessage() == choice.note


def test_a_run_whose_capture_fails_goes_on_eagerly_with_one_warning(tmp_path, monkeypatch):
    """End to end: auto tries CUDA graphs (here on the CPU, where the capture fails in the child), warns
    once and trains to the end in eager mode."""
    monkeypatch.setattr(compile_probe, "auto_modes", lambda run, spaces, device: (("cudagraphs",), ""))
    tiny = train_tiny(tmp_path, "agent.compile=auto")
    choice = tiny.parts.compile_choice
    assert choice.warns and choice.note.startswith("agent.compile=auto: off (eager PyTorch); cudagraphs failed in the probe: ")
    assert tiny.parts.agent.compile_mode == "off"
    assert tiny.trainer.state.step == tiny.run.schedule.total_steps
    assert tiny.run.agent.compile == "auto"  # the saved config keeps auto: a resume probes again


def test_a_cpu_without_a_working_cpp_compiler_trains_eagerly_with_one_warning(tmp_path, monkeypatch):
    """End to end on the CPU: auto picks compile for the run (its threshold lowered to this tiny run), the
    probe finds no C++ compiler for Inductor (CXX names none; an empty Inductor cache, so nothing
    compiled before is reused), and the run trains to the end eagerly."""
    monkeypatch.setattr(compile_probe, "CPU_COMPILE_MIN_GRADIENT_STEPS", 1)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor-cache"))
    tiny = train_tiny(tmp_path / "run", "agent.compile=auto")
    choice = tiny.parts.compile_choice
    assert choice.warns and choice.note.startswith("agent.compile=auto: off (eager PyTorch); compile failed in the probe: ")
    assert "No working C++ compiler" in choice.note
    assert tiny.parts.agent.compile_mode == "off"
    assert tiny.trainer.state.step == tiny.run.schedule.total_steps


def test_auto_trains_compiled_on_the_cpu_where_the_probe_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_probe, "CPU_COMPILE_MIN_GRADIENT_STEPS", 1)
    tiny = train_tiny(tmp_path, "agent.compile=auto")
    choice = tiny.parts.compile_choice
    assert not choice.warns and choice.note.startswith("agent.compile=auto: compile (probed in")
    assert tiny.parts.agent.compile_mode == "compile" and tiny.parts.agent.compile_seconds > 0
    assert tiny.trainer.state.step == tiny.run.schedule.total_steps


def test_compiled_kernels_are_kept_in_the_users_cache_unless_torchinductor_cache_dir_says(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "chosen"))
    assert keep_compiled_kernels() == str(tmp_path / "chosen")
    # What importing torch._inductor sets by itself is PyTorch's default, not the user's choice.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tiny = train_tiny(tmp_path / "run", "agent.compile=compile")
    kept = tmp_path / "cache" / "sac-runner" / "torchinductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(kept)
    assert tiny.parts.agent.compile_seconds > 0 and any(kept.rglob("*.py"))  # Inductor wrote its kernels there
