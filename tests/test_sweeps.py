"""Sweeps through Hydra's multirun: W&B grouping, failed jobs, the joblib launcher's threads,
Optuna search, and a Slurm-style requeue through submitit's local executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.run_dir import RunDir
from sac_runner.run.sweep import job_dirs, overrides_of
from tests.harness import REPO, TINY, cli, cli_env, metric_records, slow_checkpoints_env, start_cli
from tests.wandb_records import run_record

WANDB = ("logging=wandb", "logging.mode=offline")


def sweep(sweep_dir: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return cli("sac-train", sweep_dir.parent, "-m", *TINY, f"hydra.sweep.dir={sweep_dir}", *overrides, timeout=timeout)


def metric_steps(job_dir: Path) -> list[int]:
    return [record["step"] for record in metric_records(job_dir)]


def failure_file(job_dir: Path) -> Path:
    return RunDir(job_dir).failure


def test_a_2x2_multirun_makes_four_jobs_in_one_wandb_group(tmp_path):
    sweep_dir = tmp_path / "lr_sweep"
    result = sweep(sweep_dir, "seed=0,1", "agent.actor_lr=1e-4,3e-4", *WANDB, "logging.tags=[tiny]")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(sweep_dir)
    assert len(jobs) == 4
    combos = {(o["seed"], o["agent.actor_lr"]) for o in (dict(x.split("=", 1) for x in overrides_of(j)) for j in jobs)}
    assert combos == {(s, lr) for s in ("0", "1") for lr in ("0.0001", "0.0003")}
    assert "4 of 4 jobs finished" in result.stdout
    names = set()
    for job in jobs:
        assert metric_steps(job)[-1] == 300
        run_files = list(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(run_files) == 1  # its own W&B run
        run = run_record(run_files[0])
        assert run.run_group == "lr_sweep" and run.job_type == "train" and list(run.tags) == ["tiny"]
        names.add(run.display_name)
    assert len(names) == 4 and any("seed=1" in n and "agent.actor_lr=0.0003" in n for n in names)
    assert not any("logging." in n for n in names)  # names carry what the jobs differ in, not logging

    # sac-report on the sweep: two configurations (the learning rates), two seeds each.
    reported = cli("sac-report", tmp_path, str(sweep_dir))
    assert reported.returncode == 0, reported.stderr
    table = (sweep_dir / "report" / "results.md").read_text()
    for lr in ("0.0001", "0.0003"):
        assert f"| Pendulum-v1 | agent.actor_lr={lr} | 2 |" in table
    assert "Common to every run: `schedule=smoke agent.hidden_sizes=[16]`." in table
    assert (sweep_dir / "report" / "learning_curves.png").stat().st_size > 10_000
    assert (sweep_dir / "report" / "learning_curves.svg").exists()

    # Their text records kept apart (scripts/keep_run_records.py) give sac-report the same table.
    kept = tmp_path / "kept" / "lr_sweep"
    copied = subprocess.run([sys.executable, str(REPO / "scripts" / "keep_run_records.py"), str(sweep_dir), str(kept)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=cli_env())
    assert copied.returncode == 0 and f"kept the records of 4 runs in {kept}" in copied.stdout, copied.stderr
    records = {".hydra/config.yaml", ".hydra/overrides.yaml", "metrics.jsonl", "alerts.jsonl", "train.log"}
    for job in jobs:  # each job's records, and nothing else (no checkpoints, no W&B files)
        copied_files = {p.relative_to(kept / job.name).as_posix() for p in (kept / job.name).rglob("*") if p.is_file()}
        assert copied_files == {name for name in records if (job / name).exists()} and "train.log" in copied_files
    assert cli("sac-report", tmp_path, str(kept), "--out", str(tmp_path / "again")).returncode == 0
    rows = lambda path: [line for line in path.read_text().splitlines() if line.startswith("|")]  # noqa: E731
    assert rows(tmp_path / "again" / "results.md") == rows(sweep_dir / "report" / "results.md")


def test_a_failed_job_is_reported_with_its_overrides_and_the_others_finish(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = sweep(sweep_dir, "env.id=Pendulum-v1,NoSuchEnv-v0")
    assert result.returncode == 1
    good, bad = job_dirs(sweep_dir)
    assert metric_steps(good)[-1] == 300 and not failure_file(good).exists()
    failure = failure_file(bad).read_text()
    overrides, error = failure.splitlines()[:2]
    assert overrides == "overrides: schedule=smoke agent.hidden_sizes=[16] env.id=NoSuchEnv-v0"
    assert error == "error: unknown environment id 'NoSuchEnv-v0'; use a registered Gymnasium id (env.id=...)"
    assert "1 of 2 jobs finished, 1 failed:" in result.stdout
    assert ("job 1 (schedule=smoke agent.hidden_sizes=[16] env.id=NoSuchEnv-v0): unknown environment id "
            "'NoSuchEnv-v0'") in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_sweep_stopped_with_ctrl_c_continues_with_its_own_command(tmp_path):
    """Ctrl-C stops the running job after a checkpoint and says how to go on; the sweep's command run
    again resumes that job and starts the next; run once more, it trains nothing: finished jobs are not
    trained again nor marked failed, and their metrics stay as they were."""
    sweep_dir = tmp_path / "sweep"
    stopped = start_cli("sac-train", tmp_path, "-m", *TINY, f"hydra.sweep.dir={sweep_dir}", "seed=0,1",
                        "schedule.total_steps=100000", "schedule.checkpoint_every=100000")
    first = sweep_dir / "0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(metric_records(first)) < 4:
        time.sleep(0.2)
    stopped.send_signal(signal.SIGINT)
    out, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "continue the sweep with the same sac-train -m command" in " ".join(out.split())
    stopped_at = load_checkpoint(first / "checkpoints" / "latest.pt").step
    assert not (sweep_dir / "1").exists()  # the second job never started

    total = f"schedule.total_steps={stopped_at + 150}"
    again = sweep(sweep_dir, "seed=0,1", total)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "2 of 2 jobs finished" in again.stdout
    assert f"resumed {first} at step {stopped_at}" in (first / "train.log").read_text()
    assert all(metric_steps(job)[-1] == stopped_at + 150 for job in job_dirs(sweep_dir))
    before = {job: RunDir(job).metrics.read_text() for job in job_dirs(sweep_dir)}

    once_more = sweep(sweep_dir, "seed=0,1", total)
    assert once_more.returncode == 0, once_more.stdout[-2000:] + once_more.stderr[-2000:]
    assert "2 of 2 jobs finished" in once_more.stdout
    for job, metrics in before.items():
        assert not failure_file(job).exists()
        assert RunDir(job).metrics.read_text() == metrics  # nothing trained, nothing logged twice
        assert f"finished before, at step {stopped_at + 150}" in (job / "train.log").read_text()


@pytest.mark.parametrize("signalled", ["process group", "launcher alone"])
def test_ctrl_c_on_a_joblib_sweep_keeps_every_running_jobs_checkpoint(tmp_path, signalled):
    """Ctrl-C (SIGINT to the process group) or SIGINT to the launcher alone (`pkill -INT -f sac-train`),
    while two jobs run side by side and a third waits: both running jobs save their stop checkpoint
    although each file takes 2 s (the launcher used to kill its workers at once), the third job does not
    start, and the sweep ends with one line saying how it continues; that command finishes all three."""
    env = slow_checkpoints_env(tmp_path)
    sweep_dir = tmp_path / "sweep"
    command = ("-m", *TINY, f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               "seed=0,1,2", "schedule.checkpoint_every=100000")
    running = start_cli("sac-train", tmp_path, *command, "schedule.total_steps=100000", env=env,
                        start_new_session=True)
    jobs = [sweep_dir / "0", sweep_dir / "1"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and min(len(metric_records(job)) for job in jobs) < 3:
        time.sleep(0.2)
    reached = [metric_steps(job)[-1] for job in jobs]
    if signalled == "process group":
        os.killpg(running.pid, signal.SIGINT)
    else:
        running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=120)
    assert running.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert (f"sweep {sweep_dir} stopped by SIGINT: its running jobs saved their checkpoints; continue it with the "
            "same sac-train -m command") in " ".join(out.split())
    stopped_at = [load_checkpoint(job / "checkpoints" / "latest.pt").step for job in jobs]
    assert all(stop >= step for stop, step in zip(stopped_at, reached)), (stopped_at, reached)
    assert not (sweep_dir / "2").exists()  # queued when the signal came: not started
    assert not list(sweep_dir.rglob("*.tmp"))
    if signalled == "launcher alone":
        return  # what follows does not depend on how the signal came

    total = max(stopped_at) + 100
    again = cli("sac-train", tmp_path, *command, f"schedule.total_steps={total}")  # saves at full speed
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "3 of 3 jobs finished" in again.stdout
    for job, stop in zip(jobs, stopped_at):
        assert f"resumed {job} at step {stop}" in (job / "train.log").read_text()
    assert all(metric_steps(job)[-1] == total for job in job_dirs(sweep_dir))


def loky_workers(launcher_pid: int) -> list[int]:
    """The processes running a joblib launcher's jobs (its children started by loky's popen)."""
    children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    return [int(pid) for pid in children
            if "popen_loky" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


def test_jobs_stopped_behind_the_launchers_back_are_counted_as_stopped_not_finished(tmp_path):
    """SIGINT sent to a joblib sweep's workers alone (the launcher does not see it): the running jobs
    stop after their checkpoints and the queued one does not start, as with Ctrl-C; the launcher's
    summary says which jobs stopped where and exits 1, instead of counting them as finished."""
    sweep_dir = tmp_path / "sweep"
    command = ("-m", *TINY, f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               "seed=0,1,2", "schedule.checkpoint_every=100000", "schedule.total_steps=100000")
    running = start_cli("sac-train", tmp_path, *command, start_new_session=True)
    jobs = [sweep_dir / "0", sweep_dir / "1"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and min(len(metric_records(job)) for job in jobs) < 3:
        time.sleep(0.2)
    workers = loky_workers(running.pid)
    assert len(workers) == 2, workers
    for pid in workers:
        os.kill(pid, signal.SIGINT)
    out, err = running.communicate(timeout=120)
    assert running.returncode == 1, err[-3000:]
    out = " ".join(out.split())
    assert (f"sweep {sweep_dir}: 0 of 2 jobs finished, 2 stopped before their last step (the same sac-train -m "
            "command continues them)") in out, out[-3000:]
    stopped_at = [load_checkpoint(job / "checkpoints" / "latest.pt").step for job in jobs]
    for job, step in zip(jobs, stopped_at):
        assert (f"job {job.name} (schedule=smoke agent.hidden_sizes=[16] seed={job.name} schedule.checkpoint_every="
                f"100000 schedule.total_steps=100000): stopped at step {step} of 100000 "
                f"[{job / 'checkpoints' / 'latest.pt'}]") in out, out[-3000:]
    assert not (sweep_dir / "2").exists()

    total = max(stopped_at) + 100  # as the summary says, the same command continues them
    again = cli("sac-train", tmp_path, *command[:-1], f"schedule.total_steps={total}")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "3 of 3 jobs finished" in again.stdout and "stopped before" not in again.stdout
    assert all(metric_steps(job)[-1] == total for job in job_dirs(sweep_dir))


def test_joblib_runs_jobs_side_by_side_with_the_cores_shared(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = sweep(sweep_dir, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = job_dirs(sweep_dir)
    assert len(jobs) == 2
    cores = len(__import__("os").sched_getaffinity(0))
    expected = max(1, cores // 2)
    for job in jobs:
        assert metric_steps(job)[-1] == 300
        log_text = (job / "train.log").read_text()
        assert f"] - {expected} torch thread" in log_text, log_text


def test_a_three_trial_optuna_search_reports_its_best_parameters(tmp_path):
    sweep_dir = tmp_path / "search"
    result = sweep(sweep_dir, "hparams_search=sac_optuna", "hydra.sweeper.n_trials=3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(job_dirs(sweep_dir)) == 3
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    searched = set(OmegaConf.load(Path("conf/hparams_search/sac_optuna.yaml")).hydra.sweeper.params)
    # agent.hidden_sizes, set on the command line (TINY), is fixed rather than searched.
    assert set(best.best_params) == searched - {"agent.hidden_sizes"}
    assert all("agent.hidden_sizes=[16]" in overrides_of(job) for job in job_dirs(sweep_dir))
    # The best value is the best trial's best evaluation return (sweep_objective=best).
    trial_best = []
    for job in job_dirs(sweep_dir):
        evals = metric_records(job)
        trial_best.append(max(r["eval/return_mean"] for r in evals if "eval/return_mean" in r))
    assert best.best_value == pytest.approx(max(trial_best), rel=1e-6)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def submitit_task(sweep_pid: int) -> int | None:
    """The process running the job itself (submitit's `_submit`), below the local executor's controller."""
    for pid in descendants(sweep_pid):
        try:
            if b"submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except FileNotFoundError:
            continue
    return None


@pytest.mark.slow
def test_a_preempted_submitit_job_checkpoints_requeues_and_resumes(tmp_path):
    """Slurm warns a job with SIGUSR2 before preempting it or reaching its time limit (submitit's
    --signal). The job checkpoints, submitit requeues it (its local executor restarts it, as Slurm
    would), and the requeued job resumes from the checkpoint in the same job directory."""
    sweep_dir = tmp_path / "sweep"
    sweep_process = start_cli("sac-train", tmp_path, "-m", *TINY, f"hydra.sweep.dir={sweep_dir}",
                              "hydra/launcher=submitit_local", "schedule.total_steps=3000",
                              "schedule.checkpoint_every=100000", "schedule.eval_every=1000", "threads=1")
    metrics = sweep_dir / "0" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sweep_process.poll() is None:
        if metrics.exists() and any(json.loads(line)["step"] >= 1000 for line in metrics.read_text().splitlines()):
            break
        time.sleep(0.2)
    task = submitit_task(sweep_process.pid)
    assert task is not None, "the submitit job is not running"
    os.kill(task, signal.SIGUSR2)  # what Slurm sends (submitit's --signal=USR2@<signal_delay_s>)
    stdout, stderr = sweep_process.communicate(timeout=300)
    assert sweep_process.returncode == 0, stderr[-3000:]

    (job,) = job_dirs(sweep_dir)
    log_text = (job / "train.log").read_text()
    assert "SIGUSR2 received: saving a checkpoint" in log_text
    assert "(the job was requeued, or the sweep started again): resuming it" in log_text
    submitit_log = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("*/*_log.*"))
    assert "Requeued job" in submitit_log
    resumed_at = [int(line.split(" at step ")[1].split()[0]) for line in log_text.splitlines() if "resumed " in line]
    assert len(resumed_at) == 1 and 1000 <= resumed_at[0] < 3000
    # The periodic records (every log_every = 50 steps) are complete: none missing, none twice.
    assert [r["step"] for r in metric_records(job) if "time/sps" in r] == list(range(50, 3001, 50))


def test_ray_runs_each_job_as_a_task_of_a_local_ray_instance(tmp_path):
    """hydra/launcher=ray_cluster on a Ray instance started for the sweep: both jobs finish, each with
    the one CPU Ray gave its task as its torch threads."""
    sweep_dir = tmp_path / "sweep"
    result = sweep(sweep_dir, "seed=0,1", "hydra/launcher=ray_cluster",
                   "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false",
                   timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(sweep_dir)
    assert len(jobs) == 2 and "2 of 2 jobs finished" in result.stdout
    for job in jobs:
        assert metric_steps(job)[-1] == 300
        assert "] - 1 torch thread: " in (job / "train.log").read_text()
