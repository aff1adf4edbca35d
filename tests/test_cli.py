"""The installed console scripts, run as a user runs them, from a directory outside the repo."""

import json
import os
import re
import pytest
import torch

from tests.harness import TINY, cli


def run(cmd, cwd, *args, timeout=300, **environ):
    """As a user runs a command: their own environment (no PYTHONPATH, no W&B variables)."""
    return cli(cmd, cwd, *args, timeout=timeout, env={**os.environ, **environ})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny sac-train run with W&B offline (the default logging), shared by the tests below."""
    cwd = tmp_path_factory.mktemp("user")
    proc = run("sac-train", cwd, *TINY, "logging=wandb", "seed=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = [p for p in (cwd / "outputs" / "runs").iterdir() if p.name != "latest"]
    assert (cwd / "outputs" / "runs" / "latest").resolve() == run_dir.resolve()
    return cwd, run_dir, proc


def test_train_writes_config_metrics_checkpoints_and_wandb_under_its_run_dir(trained):
    _, run_dir, proc = trained
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert (run_dir / "checkpoints" / "latest.pt").exists()
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert list(offline_run.glob("*.wandb")), "the offline W&B run has no data file"
    assert "sac-train summary" in proc.stdout and "wandb sync" in proc.stdout


def test_a_mujoco_run_prints_only_sac_runners_own_lines(tmp_path):
    """No MuJoCo deprecation warning per environment built, no MUJOCO_LOG.TXT in the working directory."""
    proc = run("sac-train", tmp_path, *TINY, "env=halfcheetah")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "" and "WARNING" not in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


def test_a_real_mujoco_warning_still_shows(caplog):
    from sac_runner.run.envs import _mujoco_warning

    _mujoco_warning("compiler attribute 'settotalmass' is deprecated and will be removed")
    _mujoco_warning("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
    assert [r.getMessage() for r in caplog.records] == ["MuJoCo: Nan, Inf or huge value in QACC at DOF 0. "
                                                        "The simulation is unstable."]


def test_onnx_export_prints_only_its_table(trained, tmp_path):
    """No 'torchvision is not installed. Skipping torchvision::nms' from torch's ONNX exporter."""
    _, run_dir, _ = trained
    proc = run("sac-export", tmp_path, f"checkpoint={run_dir}", "format=onnx", f"output={tmp_path / 'p.onnx'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "" and "torchvision" not in proc.stdout, proc.stdout + proc.stderr
    assert "sac-export" in proc.stdout and (tmp_path / "p.onnx").is_file()


def test_video_evaluation_prints_no_sdl_error(trained, tmp_path):
    _, run_dir, _ = trained
    proc = run("sac-eval", tmp_path, f"checkpoint={run_dir}", "episodes=1", "video=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr


def test_latest_names_the_newest_run_for_eval_and_resume(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run("sac-eval", empty, "checkpoint=latest")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: latest: outputs/runs/latest does not exist (no run was started from this directory); give a run "
        "directory or .pt file instead")
    assert not (empty / "outputs").exists()
    for seed in (0, 1):  # the second run takes the link over
        assert run("sac-train", tmp_path, *TINY, "schedule.total_steps=100", f"seed={seed}").returncode == 0
    link = tmp_path / "outputs" / "runs" / "latest"
    assert link.is_symlink() and os.readlink(link).endswith("_seed1") and not os.path.isabs(os.readlink(link))
    proc = run("sac-eval", tmp_path, "checkpoint=latest", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (results,) = (tmp_path / "outputs" / "eval").glob("*/eval_results.json")
    assert json.loads(results.read_text())["checkpoint"] == str(link.resolve() / "checkpoints" / "step_000000100.pt")
    proc = run("sac-train", tmp_path, "resume=latest", "schedule.total_steps=150", "logging.progress=false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = (link.resolve() / "metrics.jsonl").read_text().splitlines()
    assert json.loads(records[-1])["step"] == 150
    assert sorted(p.name for p in link.parent.iterdir()) == sorted([os.readlink(link), "latest", *(
        p.name for p in link.parent.iterdir() if p.name.endswith("_seed0"))])


def test_long_paths_are_never_wrapped_outside_a_terminal(trained):
    _, run_dir, proc = trained
    checkpoint = str(run_dir / "checkpoints" / "latest.pt")
    assert len(checkpoint) > 80  # rich wraps at 80 columns when it does not write to a terminal
    assert checkpoint in proc.stdout and f"run directory: {run_dir} (cpu)" in proc.stdout, proc.stdout


def test_first_log_line_says_how_many_threads_and_why_then_the_compile_mode(trained):
    _, _, proc = trained
    first, second = proc.stdout.splitlines()[:2]
    assert re.search(r"\b\d+ torch threads?: \d+ usable cores?", first), proc.stdout[:500]
    assert "agent.compile=auto: off (eager PyTorch): 201 gradient steps do not win back" in second, proc.stdout[:500]


def test_threads_auto_shares_the_cores_with_another_run_on_the_machine(tmp_path):
    """A second sac-runner run (here: this test process, registered by hand) takes its share of the cores."""
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / str(os.getpid())).write_text(json.dumps({"pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0))}))
    proc = run("sac-train", tmp_path, *TINY, "schedule.total_steps=100", f"hydra.run.dir={tmp_path / 'run'}",
               SAC_RUNNER_RUN_REGISTRY=str(registry))
    assert proc.returncode == 0, proc.stderr[-3000:]
    cores = len(os.sched_getaffinity(0))
    first = proc.stdout.splitlines()[0]
    assert f"{max(1, cores // 2)} torch thread" in first and "1 other sac-runner run on these cores" in first, first
    assert [p.name for p in registry.iterdir()] == [str(os.getpid())]  # the run left the registry when it ended


def test_metrics_file_has_expected_keys(trained):
    _, run_dir, _ = trained
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"step", "train/episode_return", "train/critic_loss", "train/alpha", "time/sps",
            "eval/return_mean", "eval/return_std"} <= keys
    assert max(r["step"] for r in records) == 300


def test_checkpoint_holds_the_resolved_config_and_loads_weights_only(trained):
    _, run_dir, _ = trained
    data = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert data["config"]["seed"] == 3 and data["config"]["env"]["id"] == "Pendulum-v1"
    assert data["config"]["schedule"]["total_steps"] == 300


def test_eval_runs_on_the_checkpoint_and_writes_json(trained):
    cwd, run_dir, _ = trained
    proc = run("sac-eval", cwd, f"checkpoint={run_dir / 'checkpoints' / 'latest.pt'}", "episodes=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (cwd / "outputs" / "eval").glob("*/eval_results.json")
    report = json.loads(results.read_text())
    assert report["episodes"] == 3 and len(report["returns"]) == 3 and report["step"] == 300
    assert report["lengths"] == [200, 200, 200]
    assert "return mean" in proc.stdout


def test_eval_reports_what_the_environment_says_at_the_end_of_its_episodes(tmp_path):
    # Goal-v0 (tests/toy_envs.py): episode seeds 4, 5, 6 succeed, fail, succeed; distances 4, 0, 1.
    assert cli("sac-train", tmp_path, *TINY, "env.id=tests.toy_envs:Goal-v0", "schedule.total_steps=100",
               "hydra.run.dir=run").returncode == 0
    proc = cli("sac-eval", tmp_path, f"checkpoint={tmp_path / 'run'}", "episodes=3", "seed=4", "hydra.run.dir=ev")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ev" / "eval_results.json").read_text())
    assert report["is_success_mean"] == pytest.approx(2 / 3) and report["distance_mean"] == pytest.approx(5 / 3)
    assert report["episode_records"] == [{"return": 1.0, "length": 2, "info": {"is_success": 1.0, "distance": 4.0}},
                                         {"return": 1.5, "length": 3, "info": {"is_success": 0.0, "distance": 0.0}},
                                         {"return": 0.5, "length": 1, "info": {"is_success": 1.0, "distance": 1.0}}]
    assert report["returns"] == [1.0, 1.5, 0.5] and report["lengths"] == [2, 3, 1] and report["return_mean"] == 1.0
    (header,) = [line for line in proc.stdout.splitlines() if line.startswith("┃")]
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "return mean", "return std", "return min", "return max", "length mean", "is success mean", "distance mean"]
    assert [cell.strip() for cell in row.strip("│").split("│")] == ["1.0", "0.408", "0.5", "1.5", "2.0", "0.667", "1.7"]


def test_eval_accepts_a_run_directory(trained):
    cwd, run_dir, _ = trained
    proc = run("sac-eval", cwd, f"checkpoint={run_dir}", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("make_path, message", [
    (lambda d: d / "missing.pt", "checkpoint not found"),
    (lambda d: d, "no checkpoint in directory"),
    (lambda d: (d / "garbage.pt").write_bytes(b"not a checkpoint") and d / "garbage.pt", "not a sac-runner checkpoint"),
])
def test_eval_bad_checkpoint_is_one_clear_line(tmp_path, make_path, message):
    path = make_path(tmp_path)
    proc = run("sac-eval", tmp_path, f"checkpoint={path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_eval_truncated_checkpoint_is_one_clear_line(trained, tmp_path):
    _, run_dir, _ = trained
    data = (run_dir / "checkpoints" / "latest.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    proc = run("sac-eval", tmp_path, f"checkpoint={tmp_path / 'cut.pt'}")
    assert proc.returncode == 2 and "truncated" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("change, message", [
    (lambda c: c["config"]["env"].update(id="NoSuchEnv-v0"), "unknown environment id 'NoSuchEnv-v0'"),
    (lambda c: c.update(version=99), "has checkpoint version 99, this sac-runner reads versions 2 and 3"),
    (lambda c: c.update(format="someone-else"), "is not a sac-runner checkpoint"),
])
def test_eval_on_an_unusable_checkpoint_is_one_clear_line(trained, tmp_path, change, message):
    _, run_dir, _ = trained
    checkpoint = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, tmp_path / "changed.pt")
    proc = run("sac-eval", tmp_path, f"checkpoint={tmp_path / 'changed.pt'}")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_export_and_eval_video_from_the_command_line(trained):
    cwd, run_dir, _ = trained
    proc = run("sac-export", cwd, f"checkpoint={run_dir}", "format=torchscript", f"output={cwd / 'policy.pt'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.jit.load(str(cwd / "policy.pt"))(torch.zeros(1, 3)).shape == (1, 1)
    proc = run("sac-eval", cwd, f"checkpoint={run_dir}", "episodes=1", "video=true", f"hydra.run.dir={cwd / 'ev'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((cwd / "ev" / "videos").glob("*.mp4"))) == 1


def test_invalid_config_value_is_one_clear_line(tmp_path):
    proc = run("sac-train", tmp_path, "agent.gamma=1.5")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: agent.gamma must be in (0, 1], got 1.5; set agent.gamma=0.99 or another value in (0, 1]"
    assert not (tmp_path / "outputs" / "runs").exists() or not list((tmp_path / "outputs" / "runs").glob("*/checkpoints"))


def test_unknown_env_id_suggests_close_ids(tmp_path):
    proc = run("sac-train", tmp_path, "env.id=HalfCheeta-v5", "logging=disabled")
    assert proc.returncode == 2
    assert "unknown environment id 'HalfCheeta-v5'" in proc.stderr and "HalfCheetah-v5" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_the_groups(tmp_path):
    proc = run("sac-train", tmp_path, "--help")
    assert proc.returncode == 0
    for group in ("env", "agent", "buffer", "schedule", "logging"):
        assert f"{group}:" in proc.stdout
    assert "halfcheetah" in proc.stdout


def test_cfg_job_prints_the_composed_config(tmp_path):
    proc = run("sac-train", tmp_path, "--cfg", "job", "env=hopper", "agent.alpha=0.1")
    assert proc.returncode == 0
    assert "id: Hopper-v5" in proc.stdout and "alpha: 0.1" in proc.stdout
