"""Checkpoints that hold a whole run, resume that continues it bit for bit, warm start, untrusted files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sac_runner.config import ConfigError
from sac_runner.run.run_config import to_run_config
from sac_runner.errors import CheckpointError
from sac_runner.run.builders import make_parts, warm_start
from sac_runner.run.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from sac_runner.run.resumed_config import resumed_config
from sac_runner.run.training import train
from tests.harness import TINY, cli, loop_but_its_clock, slow_checkpoints_env, start_cli, tiny_config, train_tiny


def _agent_tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
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
    walk("agent", checkpoint.agent)
    return flat


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---- exact resume -----------------------------------------------------------------------------------

CROSSQ_TINY = ("agent=crossq", "agent.critic_hidden_sizes=[32]", "agent.actor_hidden_sizes=[16]",
               "agent.batch_renorm_warmup=40", "schedule.start_steps=100", "schedule.update_after=100",
               "schedule.batch_size=32")  # Batch Renorm statistics and their warm-up counters cross the checkpoint


@pytest.mark.parametrize("variant", [(), ("buffer=prioritized", "buffer.n_step=3", "env.normalize_obs=true"),
                                     ("env.id=CartPole-v1",), CROSSQ_TINY, ("agent.compile=compile",)],
                         ids=["uniform", "prioritized_nstep_normalized", "discrete", "crossq", "compiled"])
def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, variant):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_tiny(whole, *variant)
    # Stop at step 170: mid-episode for Pendulum (200-step episodes), so the episode must be replayed.
    stopped = train_tiny(split, *variant, stop_at=170).trainer
    assert stopped.state.step == 170 and (split / "checkpoints" / "step_000000170.pt").exists()
    with open(split / "metrics.jsonl", "a") as f:  # as if the process died after logging past its checkpoint
        f.write(json.dumps({"step": 175, "train/episode_return": -1.0}) + "\n")

    train(tiny_config(f"resume={split}"), split, overrides=[f"resume={split}"])

    a, b = load_checkpoint(whole / "checkpoints" / "latest.pt"), load_checkpoint(split / "checkpoints" / "latest.pt")
    assert a.step == b.step == 300
    ta, tb = _agent_tensors(a), _agent_tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different
    assert loop_but_its_clock(a) == loop_but_its_clock(b)
    assert _steps(split) == _steps(whole)  # appended in place, the record after the checkpoint dropped


def test_resume_refuses_changes_to_the_experiment_and_allows_harmless_ones():
    saved = OmegaConf.to_container(tiny_config(), resolve=True)
    asked = tiny_config("env=halfcheetah", "schedule.total_steps=500", "logging.mode=offline")
    with pytest.raises(ConfigError, match=r"resume: env would change the experiment .*drop that override"):
        resumed_config(asked, saved, ["env=halfcheetah", "schedule.total_steps=500"], "ckpt.pt")
    resumed = resumed_config(asked, saved, ["schedule.total_steps=500", "logging.mode=offline", "seed=0"], "ckpt.pt")
    assert resumed.schedule.total_steps == 500 and resumed.logging.mode == "offline"
    assert resumed.env.id == "Pendulum-v1"  # the saved experiment, not today's composition
    with pytest.raises(ConfigError, match="agent.hidden_sizes would change"):
        resumed_config(tiny_config("agent.hidden_sizes=[64]"), saved, ["agent.hidden_sizes=[64]"], "c.pt")


def test_resume_of_a_finished_run_says_how_to_extend_it(tmp_path):
    train_tiny(tmp_path)
    with pytest.raises(ConfigError, match="nothing to resume.*raise schedule.total_steps"):
        train(tiny_config(f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])


def test_a_resumed_run_counts_its_training_time_on_from_the_checkpoint(tmp_path):
    # sac-report's wall clock per run and time to a threshold read time/elapsed: a resume must not restart it.
    train_tiny(tmp_path, stop_at=170)
    before = load_checkpoint(tmp_path / "checkpoints" / "latest.pt").loop.elapsed
    assert before > 0
    final = train(tiny_config(f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])
    resumed = [r["time/elapsed"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
               if r["step"] > 170 and "time/elapsed" in r]
    assert resumed and min(resumed) > before and final["time/elapsed"] >= max(resumed)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt").loop.elapsed > before


def test_resume_continues_the_same_wandb_run(tmp_path, capsys):
    offline = ("logging=wandb", "logging.mode=offline")
    train_tiny(tmp_path, *offline, stop_at=120)
    first_id = load_checkpoint(tmp_path / "checkpoints" / "latest.pt").wandb_run_id
    assert first_id
    capsys.readouterr()
    train(tiny_config(*offline, f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # Two offline segments of one W&B run: both record that run's id (wandb sync uploads both into it).
    assert len(runs) == 2 and all((r / f"run-{first_id}.wandb").exists() for r in runs)
    # The summary's sync command names both segments, oldest first.
    sync = next(line for line in capsys.readouterr().out.splitlines() if "wandb sync" in line)
    assert f"wandb sync {runs[0]} {runs[1]}" in sync, sync
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt").wandb_run_id == first_id


# ---- retention and atomicity --------------------------------------------------------------------------

def test_keeps_the_last_k_and_the_best_and_the_buffer_of_the_newest_only(tmp_path):
    train_tiny(tmp_path, "schedule.checkpoint_every=50", "schedule.eval_every=50",
                 "checkpoint.keep_last=2")
    directory = tmp_path / "checkpoints"
    steps = sorted(p.name for p in directory.glob("step_*.pt") if not p.name.endswith(".buffer.pt"))
    assert set(steps) == {"step_000000250.pt", "step_000000300.pt"}
    assert (directory / "best.pt").is_file() and not (directory / "best.pt").is_symlink()
    assert [p.name for p in directory.glob("*.buffer.pt")] == ["step_000000300.buffer.pt"]
    assert os.readlink(directory / "latest.pt") == "step_000000300.pt"


@pytest.mark.parametrize("objective", ["maximize", "minimize"])
def test_best_pt_is_the_agent_of_the_best_evaluation_even_between_checkpoints(tmp_path, objective):
    """Evaluations every 30 steps, checkpoints every 150: best.pt must hold the best evaluation's agent
    (the highest return, or the lowest for a cost), which evaluates to exactly the return recorded for
    it (same deterministic policy, same seeds), even when no step checkpoint fell on that evaluation."""
    from sac_runner.run.builders import load_trained
    from sac_runner.run.evaluation import EVAL_SEED_OFFSET, evaluate

    train_tiny(tmp_path, "schedule.checkpoint_every=150", "schedule.eval_every=30",
                 f"agent.objective={objective}")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval/return_mean"] for r in records if "eval/return_mean" in r}
    pick = max if objective == "maximize" else min
    best_step = pick(evals, key=evals.get)
    if objective == "minimize":  # the lowest return comes before learning starts, between checkpoints
        assert best_step % 150 != 0
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best.best == {"step": best_step, "return": evals[best_step]} and best.step == best_step
    last = records[-1] if "eval/best_step" in records[-1] else [r for r in records if "eval/best_step" in r][-1]
    assert last["eval/best_step"] == best_step and last["eval/best_return_mean"] == evals[best_step]
    trained = load_trained(str(tmp_path / "checkpoints" / "best.pt"), torch.device("cpu"))
    assert trained.best == best.best
    replay = evaluate(trained.agent, trained.env, 2, seed=trained.run.seed + EVAL_SEED_OFFSET)
    assert replay.summary()["eval/return_mean"] == pytest.approx(evals[best_step], rel=1e-6)


def test_checkpoint_holds_everything_a_run_needs(tmp_path):
    train_tiny(tmp_path)
    data = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert {"config", "agent", "loop", "rng", "episode_replay", "obs", "wandb_run_id", "buffer_file"} <= set(data)
    assert {"python", "numpy", "torch", "env_action_space"} <= set(data["rng"])
    assert {"actor", "critic", "target", "log_alpha", "normalizer", "num_updates", "actor_optimizer",
            "critic_optimizer", "alpha_optimizer"} <= set(data["agent"])
    buffer = torch.load(tmp_path / "checkpoints" / data["buffer_file"], weights_only=True)
    assert buffer["size"] == 300 and buffer["obs"].shape[0] == buffer["slots_used"]


def test_save_buffer_false_writes_no_buffer(tmp_path):
    train_tiny(tmp_path, "checkpoint.save_buffer=false")
    assert not list((tmp_path / "checkpoints").glob("*.buffer.pt"))
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt").buffer_file is None


def test_killing_the_writer_mid_checkpoint_leaves_the_previous_one_loadable(tmp_path):
    # A child process writes step 1, then is SIGKILLed in the middle of writing step 2's file.
    script = textwrap.dedent(f"""
        import os, signal, torch
        from pathlib import Path
        import sac_runner.run.checkpoint as ck
        from sac_runner.run.envs import Spaces
        from sac_runner.run.loop_state import LoopState
        from sac_runner.run.run_dir import RunDir
        run_dir = RunDir(Path({str(tmp_path)!r}))
        def checkpoint(step, weights):
            return ck.Checkpoint(config={{}}, spaces=Spaces(3, 1, False), agent={{"weights": weights}},
                                 loop=LoopState(step=step), health=None, episodes={{"episodes": []}},
                                 obs=torch.zeros(1, 3).numpy(), rng={{}}, wandb_run_id=None, step=step)
        ck.save_checkpoint(run_dir, checkpoint(1, torch.ones(1000)))
        real_save = torch.save
        def dying_save(obj, f, *a, **k):
            f.write(b"PK\\x03\\x04 half of a zip archive")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        ck.torch.save = dying_save
        ck.save_checkpoint(run_dir, checkpoint(2, torch.zeros(1000)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    data = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert data.step == 1 and torch.equal(data.agent["weights"], torch.ones(1000))
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
    process = start_cli("sac-train", tmp_path, *TINY, "schedule.total_steps=100000",
                        "schedule.checkpoint_every=100000", f"hydra.run.dir={run_dir}")
    deadline = time.time() + 120
    while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists() and len(_steps(run_dir)) > 3):
        time.sleep(0.5)
    process.send_signal(signal_number)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal_number, err
    assert f"continue with: sac-train resume={run_dir}" in " ".join(out.split())
    assert "Traceback" not in err
    stopped_at = load_checkpoint(run_dir / "checkpoints" / "latest.pt").step
    assert 0 < stopped_at < 100000

    # Resume in place for 50 more steps: same directory, metrics continue without gaps or repeats.
    result = cli("sac-train", tmp_path, f"resume={run_dir}", f"schedule.total_steps={stopped_at + 50}",
                 "logging.progress=false")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").step == stopped_at + 50
    steps = _steps(run_dir)
    assert steps == sorted(steps) and steps[-1] == stopped_at + 50
    assert list((run_dir / ".hydra").glob("resumed_*/config.yaml"))  # the original .hydra/ is kept


def test_a_second_ctrl_c_while_the_checkpoint_is_written_stops_at_once_with_one_line(tmp_path):
    """The second Ctrl-C lands while the stop checkpoint is being written (each save here waits 2 s
    before its file is moved into place): one line, exit 130, no partial file left, latest.pt intact."""
    run_dir = tmp_path / "run"
    process = start_cli("sac-train", tmp_path, *TINY, "schedule.total_steps=100000", "schedule.checkpoint_every=100",
                        f"hydra.run.dir={run_dir}", env=slow_checkpoints_env(tmp_path))
    latest = run_dir / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not latest.exists():
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    time.sleep(1.5)  # past the moment a repeated signal counts as the same request
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert err.strip().startswith("error: interrupted: stopped at once") and len(err.strip().splitlines()) == 1, err
    assert not list(latest.parent.glob("*.tmp"))
    assert load_checkpoint(latest).step >= 100


def test_resume_with_a_changed_env_is_one_clear_line(tmp_path):
    train_tiny(tmp_path, stop_at=120)
    result = cli("sac-train", tmp_path, f"resume={tmp_path}", "env=halfcheetah", timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: resume: env would change the experiment") and \
        len(result.stderr.strip().splitlines()) == 1


# ---- warm start -----------------------------------------------------------------------------------------

def test_warm_start_copies_the_networks_and_starts_fresh_otherwise(tmp_path):
    source = tmp_path / "source"
    train_tiny(source)
    saved = load_checkpoint(source / "checkpoints" / "latest.pt").agent
    run = to_run_config(tiny_config(f"init_from={source}"))
    parts = make_parts(run)
    warm_start(parts.agent, parts.spaces, run.init_from)
    for name, tensor in parts.agent.actor.state_dict().items():
        assert torch.equal(tensor, saved["actor"][name])
    for name, tensor in parts.agent.critic.state_dict().items():
        assert torch.equal(tensor, saved["critic"][name])
    assert parts.agent.num_updates == 0 and len(parts.buffer) == 0
    parts.close()


def test_warm_start_from_other_spaces_is_refused(tmp_path):
    train_tiny(tmp_path)
    run = to_run_config(tiny_config("env=cartpole", f"init_from={tmp_path}"))
    parts = make_parts(run)
    with pytest.raises(CheckpointError, match="observation size 3 and action size 1, but this environment has 4 and 2"):
        warm_start(parts.agent, parts.spaces, run.init_from)
    parts.close()


# ---- a run written before keys moved (sac-runner 0.1, checkpoint version 2) -------------------------------
# tests/data/run_before_issue_14: `sac-train` of sac-runner 0.1 (commit 54c4f0d), its command line in
# .hydra/overrides.yaml: a 200-step tiny Pendulum run with schedule.policy_update_every=2,
# schedule.target_update_every=2 and schedule.policy_update_catch_up=true (keys now in agent).
OLD_RUN = Path(__file__).parent / "data" / "run_before_issue_14"
OLD_RUN_AS_TODAY = ("buffer.capacity=1000", "threads=1", "agent.policy_update_every=2", "agent.target_update_every=2",
                    "agent.policy_update_catch_up=true")


def test_a_checkpoint_written_before_keys_moved_loads_in_todays_layout():
    assert _version_on_disk(resolve_checkpoint_path(OLD_RUN)) == 2
    config = load_checkpoint(OLD_RUN).config
    agent, schedule = config["agent"], config["schedule"]
    assert (agent["policy_update_every"], agent["target_update_every"], agent["policy_update_catch_up"]) == (2, 2, True)
    assert config["nan_guard"] is True and config["init_from"] is None
    assert not {"policy_update_every", "target_update_every", "policy_update_catch_up"} & set(schedule)
    assert not {"nan_guard", "init_from"} & set(agent)
    assert to_run_config(OmegaConf.merge(tiny_config(), config)).agent.policy_update_every == 2


def _version_on_disk(path: Path) -> int:
    return torch.load(path, weights_only=True)["version"]


def old_run_written_here(tmp_path: Path) -> Path:
    """OLD_RUN with the state of its step-200 checkpoint (networks, optimizers, replay buffer, random
    generators, loop) taken from the same 200-step run made here by today's sac-runner, in the layout of
    version 2 (its config as written; one environment's episode and observation kept alone). The committed run was trained on another CPU, whose floating-point rounding differs
    from this one's in the last bit (torch picks its kernels by instruction set), so only a state computed
    on this machine can be compared bit for bit."""
    here = tmp_path / "here"
    train_tiny(here, *OLD_RUN_AS_TODAY, "schedule.total_steps=200")
    old = tmp_path / "old"
    shutil.copytree(OLD_RUN, old, symlinks=True)
    written = old / "checkpoints" / "step_000000200.pt"
    as_written = torch.load(written, weights_only=True)
    state_here = torch.load(here / "checkpoints" / "step_000000200.pt", weights_only=True)
    torch.save({**state_here, "version": as_written["version"], "config": as_written["config"],
                "episode_replay": state_here["episode_replay"]["episodes"][0], "obs": state_here["obs"][0]}, written)
    shutil.copyfile(here / "checkpoints" / "step_000000200.buffer.pt", old / "checkpoints" / "step_000000200.buffer.pt")
    return old


def test_a_run_written_before_keys_moved_resumes_exactly_as_todays_run(tmp_path):
    """Resumed from its step-200 checkpoint (version 2) to step 400, the old run ends bit for bit where
    today's sac-runner ends the same experiment run in one go."""
    old = old_run_written_here(tmp_path)
    assert _version_on_disk(old / "checkpoints" / "step_000000200.pt") == 2
    train(tiny_config(f"resume={old}", "schedule.total_steps=400"), old,
          overrides=[f"resume={old}", "schedule.total_steps=400"])
    whole = train_tiny(tmp_path / "whole", *OLD_RUN_AS_TODAY, "schedule.total_steps=400")
    resumed, today = load_checkpoint(old), load_checkpoint(tmp_path / "whole")
    assert _version_on_disk(resumed.path) == _version_on_disk(today.path) == 4 and resumed.step == today.step == 400
    ta, tb = _agent_tensors(resumed), _agent_tensors(today)
    assert ta.keys() == tb.keys()
    assert not [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert resumed.loop.last_eval == today.loop.last_eval
    assert whole.final["eval/return_mean"] == today.loop.last_eval["eval/return_mean"]
    assert resumed.config["agent"]["policy_update_every"] == 2


def test_the_best_agent_of_a_run_written_before_keys_moved_evaluates():
    from sac_runner.run.builders import load_trained

    trained = load_trained(str(OLD_RUN / "checkpoints" / "best.pt"), torch.device("cpu"))
    assert trained.run.agent.policy_update_catch_up is True and trained.best["step"] == trained.step


@pytest.mark.gpu
@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_resumes_on_the_other_device(tmp_path, first, then):
    """A run checkpointed on the GPU fast path (agent.compile and buffer.device auto: CUDA graphs, the
    buffer's device copy) resumes on the CPU, and the reverse, to its end."""
    assert train_tiny(tmp_path, f"device={first}", stop_at=170).trainer.state.step == 170
    train(tiny_config(f"resume={tmp_path}", f"device={then}"), tmp_path, overrides=[f"resume={tmp_path}", f"device={then}"])
    resumed = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert resumed.step == 300 and resumed.config["device"] == then
    assert all(torch.isfinite(p).all() for p in resumed.agent["actor"].values())
