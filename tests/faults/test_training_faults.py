"""Faults during training: a diverged update, W&B down, an environment that crashes, a full disk."""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import numpy as np
import pytest
import torch

from sac_runner.algo.replay_buffer import Batch, ReplayBuffer, n_step_discounts
from sac_runner.run.run_config import to_run_config
from sac_runner.errors import RunFailure
from sac_runner.run.builders import make_agent, make_parts
from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.envs import Spaces
from sac_runner.run.loop import Trainer
from sac_runner.run.nan_guard import NanGuard, NonFiniteUpdate
from sac_runner.run.run_dir import RunDir
from sac_runner.run.training import train
from tests.harness import TINY, cli, compose, error_line, metric_records, tiny_config, train_tiny

DRIFT = "env.id=tests.toy_envs:Drift-v0"


records = metric_records


# ---- nan_guard ------------------------------------------------------------------------------
def small_agent(*overrides):
    run = to_run_config(compose("agent.hidden_sizes=[16]", *overrides))
    return make_agent(run, Spaces(obs_dim=3, action_dim=1, discrete=False), torch.device("cpu"))


def batch_of(size: int = 8, reward: float = 0.5) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(size, 3, generator=g), torch.rand(size, 1, generator=g) * 2 - 1,
                 torch.full((size,), reward), torch.randn(size, 3, generator=g), torch.zeros(size))


def test_the_guard_passes_finite_updates_and_stops_the_first_non_finite_one():
    agent = small_agent()
    guard = NanGuard(agent)
    for _ in range(3):
        batch = batch_of()
        guard.check(agent.update(batch).metrics, batch)  # finite: no exception
    bad = batch_of(reward=float("nan"))
    with pytest.raises(NonFiniteUpdate) as caught:
        guard.check(agent.update(bad).metrics, bad)  # the very update that saw the NaN
    assert caught.value.quantity == "critic loss"
    assert caught.value.batch_note == "the batch itself holds non-finite reward (from the environment)"


@pytest.mark.parametrize("variant", [[], ["agent.value_network=true"], ["agent.policy_update_every=2"]])
@pytest.mark.parametrize("network", ["actor", "critic", "target"])
def test_a_non_finite_weight_is_caught_by_the_next_update(variant, network):
    """Every network feeds a loss of every update, so one bad weight cannot slip past the per-update check."""
    agent = small_agent(*variant)
    guard = NanGuard(agent)
    batch = batch_of()
    guard.check(agent.update(batch).metrics, batch)
    with torch.no_grad():
        next(getattr(agent, network).parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteUpdate):
        guard.check(agent.update(batch).metrics, batch)


def test_the_parameter_check_names_the_network():
    agent = small_agent()
    guard = NanGuard(agent)
    guard.check_parameters()
    with torch.no_grad():
        next(agent.target.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(NonFiniteUpdate) as caught:
        guard.check_parameters()
    assert caught.value.quantity == "target parameters" and caught.value.batch_note == ""


def test_no_checkpoint_is_written_with_a_non_finite_parameter(tmp_path):
    run = to_run_config(tiny_config())
    trainer = Trainer(run, make_parts(run), RunDir(tmp_path), {})
    trainer.obs = np.zeros((1, 3), np.float32)
    trainer.save_checkpoint()
    with torch.no_grad():
        next(trainer.parts.agent.actor.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(RunFailure, match="non-finite actor parameters at step 0"):
        trainer.save_checkpoint()
    assert load_checkpoint(tmp_path).step == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == [
        "step_000000000.buffer.pt", "step_000000000.pt"]


def test_a_fixed_alpha_of_zero_is_not_a_fault():
    agent = small_agent("agent.alpha=0.0")  # log_alpha = -inf by design
    assert agent.log_alpha.item() == -float("inf")
    guard = NanGuard(agent)
    batch = batch_of()
    guard.check(agent.update(batch).metrics, batch)
    guard.check_parameters()


def test_a_nan_reward_stops_the_run_keeps_the_last_good_checkpoint_and_saves_the_batch(tmp_path):
    proc = cli("sac-train", tmp_path, *TINY, DRIFT, "+env.kwargs.nan_reward_at=200", "hydra.run.dir=run")
    run_dir = tmp_path / "run"
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = error_line(proc)
    (batch_file,) = run_dir.glob("nonfinite_batch_step_*.pt")
    step = int(batch_file.stem.rsplit("_", 1)[1])
    assert 200 <= step < 300
    assert line == (f"error: non-finite critic loss at step {step} (update {step - 100 + 1}) (the batch itself holds "
                    "non-finite reward (from the environment)): training stopped and nothing was saved from that "
                    f"update; the last good checkpoint {run_dir / 'checkpoints' / 'step_000000150.pt'} is kept; the "
                    f"batch is in {batch_file}; lower the learning rates or set agent.max_grad_norm (or fix the "
                    "environment's rewards/observations), then restart or resume")
    batch = torch.load(batch_file, weights_only=True)
    assert torch.isnan(batch["reward"]).any() and batch["obs"].shape == (32, 2)
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.step == 150
    assert all(torch.isfinite(p).all() for p in checkpoint.agent["critic"].values())



@pytest.mark.gpu
@pytest.mark.parametrize("num_envs", [1, 2])
def test_a_nan_reward_stops_a_run_on_the_gpu_fast_path(tmp_path, num_envs):
    """On a GPU the guard reads a step's checks at once (CUDA graphs, the buffer on the GPU): it still
    names the first non-finite update and saves its batch, and nothing after it is saved."""
    with pytest.raises(RunFailure, match=r"^non-finite critic loss at step \d+ \(update \d+\) \(the batch itself holds "
                                         r"non-finite reward") as stopped:
        train_tiny(tmp_path, DRIFT, f"+env.kwargs.nan_reward_at={200 // num_envs}", "device=cuda",  # at step 200
                   f"env.num_envs={num_envs}")
    (batch_file,) = tmp_path.glob("nonfinite_batch_step_*.pt")
    assert str(batch_file) in str(stopped.value)
    assert torch.isnan(torch.load(batch_file, weights_only=True)["reward"]).any()
    assert load_checkpoint(tmp_path).step == 150


# ---- a CUDA graph CUDA refuses to capture ----------------------------------------------------------
def test_a_refused_cuda_graph_capture_names_the_piece_and_the_compile_mode_that_avoids_it(monkeypatch):
    from sac_runner.algo import compilation

    def refuse(fn, args, stream):
        assert stream == "the warm-ups' stream"
        raise RuntimeError("CUDA error: operation would make the legacy stream depend on a capturing blocking "
                           "stream\nSearch for `cudaErrorStreamCaptureImplicit' ...")

    monkeypatch.setattr(compilation, "WARMUP_CALLS", 0)  # straight to the capture
    monkeypatch.setattr(compilation, "_CapturedCall", refuse)
    graphs = compilation.CudaGraphs(lambda x: x + 1, "critic update")
    graphs.stream = "the warm-ups' stream"  # made on a CUDA machine only
    x = torch.zeros(3)
    with pytest.raises(compilation.CaptureFailed) as failed:
        graphs.run(compilation._signature((x,)), (x,))
    assert str(failed.value) == (
        "agent.compile=cudagraphs: CUDA refused to capture the critic update as a graph (CUDA error: operation "
        "would make the legacy stream depend on a capturing blocking stream); a failed capture leaves this "
        "process's CUDA random number generator unusable, so the run stops; run it with agent.compile=compile "
        "(compiled, no CUDA graphs) or agent.compile=off")
    assert not graphs.captured(compilation._signature((x,)))


def test_a_refused_capture_stops_the_run_keeping_its_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch):
    from sac_runner.algo.compilation import CaptureFailed
    from sac_runner.algo.sac import SAC

    update = SAC.update

    def refused_after_the_first_checkpoint(agent, batch):
        if agent.num_updates >= 60:  # updates start at step 100: this is step 160, after the checkpoint at 150
            raise CaptureFailed("agent.compile=cudagraphs: CUDA refused to capture the critic update as a graph")
        return update(agent, batch)

    monkeypatch.setattr(SAC, "update", refused_after_the_first_checkpoint)
    with pytest.raises(RunFailure) as stopped:
        train_tiny(tmp_path)
    checkpoint = tmp_path / "checkpoints" / "step_000000150.pt"
    assert str(stopped.value) == (
        "step 160: agent.compile=cudagraphs: CUDA refused to capture the critic update as a graph; the last "
        f"checkpoint {checkpoint} is kept; to go on from it: sac-train resume={tmp_path} agent.compile=compile")
    assert load_checkpoint(tmp_path).step == 150

# ---- W&B failing ---------------------------------------------------------------------------------
@pytest.fixture
def tiny_wandb_run():
    return tiny_config("logging.mode=offline")


def test_wandb_failing_to_start_leaves_local_metrics_and_one_warning(tiny_wandb_run, tmp_path, monkeypatch, caplog):
    import wandb

    def no_wandb(**kwargs):
        raise wandb.errors.CommError("Network error (ConnectionError), entering retry loop")

    monkeypatch.setattr(wandb, "init", no_wandb)
    with caplog.at_level(logging.WARNING):
        final = train(tiny_wandb_run, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert warnings == [f"W&B failed to start (CommError: Network error (ConnectionError), entering retry loop): "
                        f"training continues with local metrics only, in {tmp_path / 'metrics.jsonl'}"]
    assert np.isfinite(final["eval/return_mean"])
    assert max(r["step"] for r in records(tmp_path)) == 300 and not (tmp_path / "wandb").exists()


def test_wandb_failing_to_log_mid_run_warns_once_and_training_goes_on(tiny_wandb_run, tmp_path, monkeypatch, caplog):
    from wandb.sdk.wandb_run import Run

    calls = {"n": 0}
    real_log = Run.log

    def flaky_log(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("wandb service is gone")
        return real_log(self, *args, **kwargs)

    monkeypatch.setattr(Run, "log", flaky_log)
    with caplog.at_level(logging.WARNING):
        train(tiny_wandb_run, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("W&B failed to log (OSError: wandb service is gone)")
    assert calls["n"] == 4  # no further attempts after the failure
    steps = [r["step"] for r in records(tmp_path) if "eval/return_mean" in r]
    assert steps == [150, 300]


# ---- an environment that raises in step ---------------------------------------------------------
RAISING = (*TINY, DRIFT, "+env.kwargs.raise_at=60", "schedule.eval_every=1000", "schedule.eval_episodes=1",
           "env.max_failures=3", "hydra.run.dir=run")


def test_an_environment_that_raises_is_rebuilt_and_training_goes_on(tmp_path):
    proc = cli("sac-train", tmp_path, *RAISING, "schedule.total_steps=200")
    assert proc.returncode == 0, proc.stderr[-2000:]
    failures = [r for r in records(tmp_path / "run") if "train/env_failures" in r]
    assert [(r["step"], r["train/env_failures"]) for r in failures] == [(60, 1), (120, 2), (180, 3)]
    assert "raised in step at step 60 (RuntimeError: simulator crashed at its step 60)" in " ".join(proc.stdout.split())
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.step == 200 and checkpoint.loop.env_failures == 3


def test_one_failure_more_than_allowed_stops_the_run(tmp_path):
    proc = cli("sac-train", tmp_path, *RAISING, "schedule.total_steps=300")
    assert proc.returncode == 1
    assert error_line(proc) == (
        "error: environment tests.toy_envs:Drift-v0 raised in step at step 240 (RuntimeError: simulator crashed at "
        "its step 60), failure 4 with env.max_failures=3: training stopped; the last checkpoint "
        f"{tmp_path / 'run' / 'checkpoints' / 'step_000000150.pt'} is kept; fix the environment and resume, or "
        "raise env.max_failures")


def test_an_evaluation_environment_that_raises_is_rebuilt_and_the_evaluation_restarted(tmp_path):
    """Evaluations of 2 x 50 steps reach the evaluation instance's 75th step first (training episodes
    are 50 steps): the evaluation at step 50 breaks twice, then runs on a third instance."""
    proc = cli("sac-train", tmp_path, *TINY, DRIFT, "+env.kwargs.raise_at=75", "+env.kwargs.raise_times=2",
                   "schedule.eval_every=50", "schedule.total_steps=100", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = records(tmp_path / "run")
    assert [(r["step"], r["train/env_failures"]) for r in rows if "eval/broken" in r] == [(50, 1), (50, 2)]
    assert [r["step"] for r in rows if "eval/return_mean" in r] == [50, 100]
    assert "evaluation environment tests.toy_envs:Drift-v0 raised in step at step 50" in " ".join(proc.stdout.split())


def test_a_broken_episode_closes_its_transitions_in_the_buffer():
    """The last transition before the crash keeps its next observation; n-step returns stop there."""
    cfg = to_run_config(compose("buffer.capacity=8", "buffer.n_step=3", "schedule.batch_size=4")).buffer
    buffer = ReplayBuffer(cfg, 1, 1, device=torch.device("cpu"), discounts=n_step_discounts(0.5, 3))
    buffer.add(np.array([0.0]), np.array([0.0]), 1.0, np.array([1.0]), False)
    buffer.add(np.array([1.0]), np.array([0.0]), 2.0, np.array([2.0]), False)
    buffer.end_episode()  # the environment raised on the next step
    buffer.end_episode()  # twice changes nothing
    buffer.add(np.array([10.0]), np.array([0.0]), 4.0, np.array([11.0]), False)
    batch = buffer.gather(np.array([0, 1, 3]))
    assert batch.next_obs[:, 0].tolist() == [2.0, 2.0, 11.0]
    assert batch.reward.tolist() == [1.0 + 0.5 * 2.0, 2.0, 4.0]   # no reward from after the crash
    assert batch.discount.tolist() == [0.25, 0.5, 0.5]
    assert len(buffer) == 3


# ---- a disk that fills up, an output directory that cannot be written -----------------------------
def limit_file_size(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_a_disk_full_during_a_checkpoint_keeps_the_previous_one_and_nothing_is_lost(tmp_path):
    """RLIMIT_FSIZE makes writes past 42 kB fail (EFBIG), as a full disk would: the checkpoint files (36 kB)
    and the replay buffer at step 1000 (24 kB) fit, the buffer at step 2000 (46 kB) does not."""
    args = (*TINY, "schedule.total_steps=2000", "schedule.checkpoint_every=1000", "schedule.eval_every=1000",
            "checkpoint.keep_last=0")
    proc = cli("sac-train", tmp_path, *args, "hydra.run.dir=run", preexec_fn=limit_file_size(42_000))
    run_dir = tmp_path / "run"
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert error_line(proc) == (
        f"error: could not write checkpoint {run_dir / 'checkpoints' / 'step_000002000.pt'} (File too large); the "
        "previous checkpoint step_000001000.pt is intact and latest.pt still points at it; free some disk space "
        f"(or fix the directory's permissions), then continue with: sac-train resume={run_dir}")
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best.pt", "latest.pt", "step_000001000.buffer.pt", "step_000001000.pt"]
    assert load_checkpoint(run_dir).step == 1000
    # With space again, the run resumes from there and finishes, every step logged once.
    proc = cli("sac-train", tmp_path, *args, f"resume={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_checkpoint(run_dir).step == 2000
    steps = [r["step"] for r in records(run_dir) if "time/sps" in r]
    assert steps == list(range(50, 2001, 50))


def test_an_output_directory_that_cannot_be_created_is_one_clear_line(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    proc = cli("sac-train", tmp_path, *TINY, f"hydra.run.dir={tmp_path / 'a_file' / 'run'}")
    assert proc.returncode == 1
    assert error_line(proc) == (f"error: could not write {tmp_path / 'a_file' / 'run'} (Not a directory); the files "
                                "written before are intact; free some disk space or choose a writable output "
                                "directory (hydra.run.dir=...)")
