"""Checkpoints that hold a whole run, resume that continues it bit for bit, warm start, untrusted files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from omegaconf import OmegaConf

from sac_runner.checkpoint import CheckpointError, load_checkpoint
from sac_runner.config import ConfigError, to_run_config
from sac_runner.resume import resumed_config
from sac_runner.tracker import Tracker
from sac_runner.train import Trainer, build, seed_everything, train, warm_start
from tests.conftest import console_script

TINY = ("schedule=smoke", "logging=disabled", "logging.progress=false", "device=cpu", "agent.hidden_sizes=[16]")


class StopAt:
    """Stands in for a SIGTERM arriving during step `step`."""

    def __init__(self, trainer: Trainer, step: int):
        self.trainer, self.step = trainer, step

    @property
    def requested(self) -> bool:
        return self.trainer.step >= self.step


def _train_until(compose_run, run_dir, stop_step, *overrides):
    cfg = compose_run(*TINY, *overrides)
    run = to_run_config(cfg)
    seed_everything(run.seed)
    parts = build(run)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    trainer = Trainer(run, parts, run_dir, resolved)
    with Tracker(run_dir, run.logging, resolved, run_name=run_dir.name) as tracker:
        trainer.train(tracker, StopAt(trainer, stop_step))
    parts.close()
    return trainer


def _agent_tensors(checkpoint: dict) -> dict[str, torch.Tensor]:
    flat = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
    walk("agent", checkpoint["agent"])
    return flat


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---- exact resume -----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", [(), ("buffer=prioritized", "buffer.n_step=3", "env.normalize_obs=true"),
                                     ("env.id=CartPole-v1",)], ids=["uniform", "prioritized_nstep_normalized", "discrete"])
def test_resume_is_bitwise_identical_to_an_uninterrupted_run(compose_run, tmp_path, variant):
    whole, split = tmp_path / "whole", tmp_path / "split"
    _train_until(compose_run, whole, 10**9, *variant)
    # Stop at step 170: mid-episode for Pendulum (200-step episodes), so the episode must be replayed.
    stopped = _train_until(compose_run, split, 170, *variant)
    assert stopped.step == 170 and (split / "checkpoints" / "step_000000170.pt").exists()
    with open(split / "metrics.jsonl", "a") as f:  # as if the process died after logging past its checkpoint
        f.write(json.dumps({"step": 175, "train/episode_return": -1.0}) + "\n")

    train(compose_run(*TINY, f"resume={split}"), split, overrides=[f"resume={split}"])

    a, b = load_checkpoint(whole / "checkpoints" / "latest.pt"), load_checkpoint(split / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == 300
    ta, tb = _agent_tensors(a), _agent_tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different
    assert a["loop"] == b["loop"]
    assert _steps(split) == _steps(whole)  # appended in place, the record after the checkpoint dropped


def test_resume_refuses_changes_to_the_experiment_and_allows_harmless_ones(compose_run):
    saved = OmegaConf.to_container(compose_run(*TINY), resolve=True)
    asked = compose_run(*TINY, "env=halfcheetah", "schedule.total_steps=500", "logging.mode=offline")
    with pytest.raises(ConfigError, match=r"resume: env would change the experiment .*drop that override"):
        resumed_config(asked, saved, ["env=halfcheetah", "schedule.total_steps=500"], "ckpt.pt")
    resumed = resumed_config(asked, saved, ["schedule.total_steps=500", "logging.mode=offline", "seed=0"], "ckpt.pt")
    assert resumed.schedule.total_steps == 500 and resumed.logging.mode == "offline"
    assert resumed.env.id == "Pendulum-v1"  # the saved experiment, not today's composition
    with pytest.raises(ConfigError, match="agent.hidden_sizes would change"):
        resumed_config(compose_run(*TINY, "agent.hidden_sizes=[64]"), saved, ["agent.hidden_sizes=[64]"], "c.pt")


def test_resume_of_a_finished_run_says_how_to_extend_it(compose_run, tmp_path):
    _train_until(compose_run, tmp_path, 10**9)
    with pytest.raises(ConfigError, match="nothing to resume.*raise schedule.total_steps"):
        train(compose_run(*TINY, f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])


def test_resume_continues_the_same_wandb_run(compose_run, tmp_path, capsys):
    offline = ("logging=wandb", "logging.mode=offline")
    _train_until(compose_run, tmp_path, 120, *offline)
    first_id = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["wandb_run_id"]
    assert first_id
    capsys.readouterr()
    train(compose_run(*TINY, *offline, f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # Two offline segments of one W&B run: both record that run's id (wandb sync uploads both into it).
    assert len(runs) == 2 and all((r / f"run-{first_id}.wandb").exists() for r in runs)
    # The summary's sync command names both segments, oldest first.
    sync = next(line for line in capsys.readouterr().out.splitlines() if "wandb sync" in line)
    assert f"wandb sync {runs[0]} {runs[1]}" in sync, sync
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["wandb_run_id"] == first_id


# ---- retention and atomicity --------------------------------------------------------------------------

def test_keeps_the_last_k_and_the_best_and_the_buffer_of_the_newest_only(compose_run, tmp_path):
    _train_until(compose_run, tmp_path, 10**9, "schedule.checkpoint_every=50", "schedule.eval_every=50",
                 "checkpoint.keep_last=2")
    directory = tmp_path / "checkpoints"
    steps = sorted(p.name for p in directory.glob("step_*.pt") if not p.name.endswith(".buffer.pt"))
    assert set(steps) == {"step_000000250.pt", "step_000000300.pt"}
    assert (directory / "best.pt").is_file() and not (directory / "best.pt").is_symlink()
    assert [p.name for p in directory.glob("*.buffer.pt")] == ["step_000000300.buffer.pt"]
    assert os.readlink(directory / "latest.pt") == "step_000000300.pt"


@pytest.mark.parametrize("objective", ["maximize", "minimize"])
def test_best_pt_is_the_agent_of_the_best_evaluation_even_between_checkpoints(compose_run, tmp_path, objective):
    """Evaluations every 30 steps, checkpoints every 150: best.pt must hold the best evaluation's agent
    (the highest return, or the lowest for a cost), which evaluates to exactly the return recorded for
    it (same deterministic policy, same seeds), even when no step checkpoint fell on that evaluation."""
    from sac_runner.evaluation import evaluate
    from sac_runner.train import EVAL_SEED_OFFSET
    from sac_runner.trained import load_trained

    _train_until(compose_run, tmp_path, 10**9, "schedule.checkpoint_every=150", "schedule.eval_every=30",
                 f"agent.objective={objective}")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval/return_mean"] for r in records if "eval/return_mean" in r}
    pick = max if objective == "maximize" else min
    best_step = pick(evals, key=evals.get)
    if objective == "minimize":  # the lowest return comes before learning starts, between checkpoints
        assert best_step % 150 != 0
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["best"] == {"step": best_step, "return": evals[best_step]} and best["step"] == best_step
    last = records[-1] if "eval/best_step" in records[-1] else [r for r in records if "eval/best_step" in r][-1]
    assert last["eval/best_step"] == best_step and last["eval/best_return_mean"] == evals[best_step]
    trained = load_trained(str(tmp_path / "checkpoints" / "best.pt"), torch.device("cpu"))
    assert trained.best == best["best"]
    replay = evaluate(trained.agent, trained.env, 2, seed=trained.run.seed + EVAL_SEED_OFFSET)
    assert replay.summary()["eval/return_mean"] == pytest.approx(evals[best_step], rel=1e-6)


def test_checkpoint_holds_everything_a_run_needs(compose_run, tmp_path):
    _train_until(compose_run, tmp_path, 10**9)
    data = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert {"config", "agent", "loop", "rng", "episode_replay", "obs", "wandb_run_id", "buffer_file"} <= set(data)
    assert {"python", "numpy", "torch", "env_action_space"} <= set(data["rng"])
    assert {"actor", "critic", "target", "log_alpha", "normalizer", "num_updates", "actor_optimizer",
            "critic_optimizer", "alpha_optimizer"} <= set(data["agent"])
    buffer = torch.load(tmp_path / "checkpoints" / data["buffer_file"], weights_only=True)
    assert buffer["size"] == 300 and buffer["obs"].shape[0] == buffer["slots_used"]


def test_save_buffer_false_writes_no_buffer(compose_run, tmp_path):
    _train_until(compose_run, tmp_path, 10**9, "checkpoint.save_buffer=false")
    assert not list((tmp_path / "checkpoints").glob("*.buffer.pt"))
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["buffer_file"] is None


def test_killing_the_writer_mid_checkpoint_leaves_the_previous_one_loadable(tmp_path):
    # A child process writes step 1, then is SIGKILLed in the middle of writing step 2's file.
    script = textwrap.dedent(f"""
        import os, signal, torch
        from pathlib import Path
        import sac_runner.checkpoint as ck
        run_dir = Path({str(tmp_path)!r})
        ck.save_checkpoint(run_dir, 1, {{"weights": torch.ones(1000)}})
        real_save = torch.save
        def dying_save(obj, f, *a, **k):
            f.write(b"PK\\x03\\x04 half of a zip archive")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        ck.torch.save = dying_save
        ck.save_checkpoint(run_dir, 2, {{"weights": torch.zeros(1000)}})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    data = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert data["step"] == 1 and torch.equal(data["weights"], torch.ones(1000))
    assert not (tmp_path / "checkpoints" / "step_000000002.pt").exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_with_a_pickled_object_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "sac-runner", "version": 2, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused unloaded"):
        load_checkpoint(path)
    assert not marker.exists()


# ---- signals ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signal_number):
    run_dir = tmp_path / "run"
    command = [console_script("sac-train"), *TINY, "schedule.total_steps=100000", "schedule.checkpoint_every=100000",
               f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists() and len(_steps(run_dir)) > 3):
        time.sleep(0.5)
    process.send_signal(signal_number)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal_number, err
    assert f"continue with: sac-train resume={run_dir}" in " ".join(out.split())
    assert "Traceback" not in err
    data = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    stopped_at = data["step"]
    assert 0 < stopped_at < 100000

    # Resume in place for 50 more steps: same directory, metrics continue without gaps or repeats.
    result = subprocess.run([console_script("sac-train"), f"resume={run_dir}",
                             f"schedule.total_steps={stopped_at + 50}", "logging.progress=false"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["step"] == stopped_at + 50
    steps = _steps(run_dir)
    assert steps == sorted(steps) and steps[-1] == stopped_at + 50
    assert list((run_dir / ".hydra").glob("resumed_*/config.yaml"))  # the original .hydra/ is kept


def test_resume_with_a_changed_env_is_one_clear_line(tmp_path, compose_run):
    _train_until(compose_run, tmp_path, 120)
    result = subprocess.run([console_script("sac-train"), f"resume={tmp_path}", "env=halfcheetah"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: resume: env would change the experiment") and \
        len(result.stderr.strip().splitlines()) == 1


# ---- warm start -----------------------------------------------------------------------------------------

def test_warm_start_copies_the_networks_and_starts_fresh_otherwise(compose_run, tmp_path):
    source = tmp_path / "source"
    _train_until(compose_run, source, 10**9)
    saved = load_checkpoint(source / "checkpoints" / "latest.pt")["agent"]
    run = to_run_config(compose_run(*TINY, f"agent.init_from={source}"))
    parts = build(run)
    warm_start(parts.agent, parts.spaces, run.agent.init_from)
    for name, tensor in parts.agent.actor.state_dict().items():
        assert torch.equal(tensor, saved["actor"][name])
    for name, tensor in parts.agent.critic.state_dict().items():
        assert torch.equal(tensor, saved["critic"][name])
    assert parts.agent.num_updates == 0 and len(parts.buffer) == 0
    parts.close()


def test_warm_start_from_other_spaces_is_refused(compose_run, tmp_path):
    _train_until(compose_run, tmp_path, 10**9)
    run = to_run_config(compose_run(*TINY, "env=cartpole", f"agent.init_from={tmp_path}"))
    parts = build(run)
    with pytest.raises(CheckpointError, match="observation size 3 and action size 1, but this environment has 4 and 2"):
        warm_start(parts.agent, parts.spaces, run.agent.init_from)
    parts.close()
