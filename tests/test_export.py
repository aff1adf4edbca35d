"""Exported policies run without sac-runner and act like the agent; evaluation videos are written."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sac_runner.config import EvalConfig, ExportConfig
from sac_runner.run.evaluation import evaluate_checkpoint
from sac_runner.run.export import export_checkpoint
from sac_runner.run.builders import load_trained
from tests.harness import train_tiny

RUNNERS = {
    "torchscript": """
        import torch
        policy = torch.jit.load(path)
        actions = policy(torch.as_tensor(obs)).numpy()
    """,
    "onnx": """
        import onnxruntime
        session = onnxruntime.InferenceSession(path)
        actions = session.run(None, {"obs": obs})[0]
    """,
}


def _run_standalone(fmt: str, path, obs: np.ndarray) -> np.ndarray:
    """Load and run the exported file in a fresh interpreter that never imports sac_runner."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        path = {str(path)!r}
        obs = np.asarray(json.loads(sys.stdin.read()), dtype=np.float32)
    """) + textwrap.dedent(RUNNERS[fmt]) + textwrap.dedent("""
        assert not any(name.startswith("sac_runner") for name in sys.modules), "sac_runner was imported"
        print(json.dumps(np.asarray(actions).tolist()))
    """)
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(obs.tolist()), capture_output=True,
                            text=True, cwd="/", timeout=120)
    assert result.returncode == 0, result.stderr
    return np.asarray(json.loads(result.stdout.strip().splitlines()[-1]))


ACTORS = {"plain": (), "batch_renorm": ("agent.actor_norm=batch_renorm", "agent.batch_renorm_warmup=20"),
          "simba": ("agent.actor_architecture=simba", "agent.actor_hidden_sizes=[32,32]")}


@pytest.mark.parametrize("fmt, actor", [("torchscript", "plain"), ("onnx", "plain"), ("onnx", "batch_renorm"),
                                        ("torchscript", "simba")])
def test_exported_continuous_policy_matches_the_agent_in_env_units(tmp_path, fmt, actor):
    # Normalized observations, Pendulum's torque bound of 2, (CrossQ's actor) Batch Renormalization's
    # running statistics and SimBa's blocks: all must be inside the exported file.
    train_tiny(tmp_path / "run", "env.normalize_obs=true", *ACTORS[actor])
    path, _ = export_checkpoint(ExportConfig(checkpoint=str(tmp_path / "run"), format=fmt), tmp_path / "export")
    trained = load_trained(str(tmp_path / "run"), torch.device("cpu"))
    assert trained.agent.normalizer.count > 0
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32) * 3
    expected = 2.0 * trained.agent.act(obs, deterministic=True)  # [-1, 1] -> [-2, 2]
    actions = _run_standalone(fmt, path, obs)
    assert actions.shape == (16, 1)
    np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)


def test_onnx_export_is_one_self_contained_file(tmp_path):
    train_tiny(tmp_path / "run")
    path, _ = export_checkpoint(ExportConfig(checkpoint=str(tmp_path / "run"), format="onnx"), tmp_path / "export")
    assert [p.name for p in path.parent.iterdir()] == ["policy.onnx"]  # no policy.onnx.data beside it
    elsewhere = tmp_path / "another_machine" / "copied.onnx"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    obs = np.zeros((2, 3), dtype=np.float32)
    assert _run_standalone("onnx", elsewhere, obs).shape == (2, 1)


@pytest.mark.parametrize("fmt, name", [("torchscript", "policy.pt"), ("onnx", "policy.onnx")])
def test_export_output_may_be_an_existing_directory(tmp_path, fmt, name):
    train_tiny(tmp_path / "run")
    target = tmp_path / "ship"
    target.mkdir()
    path, _ = export_checkpoint(ExportConfig(checkpoint=str(tmp_path / "run"), format=fmt, output=str(target)),
                             tmp_path / "export")
    assert path == target / name and path.is_file()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_discrete_policy_returns_the_envs_action(tmp_path, fmt):
    # BestArm's actions are Discrete(3, start=1): the file returns 1, 2 or 3, as env.step takes them.
    train_tiny(tmp_path / "run", "env.id=BestArm-v0")
    path, _ = export_checkpoint(ExportConfig(checkpoint=str(tmp_path / "run"), format=fmt), tmp_path / "export")
    trained = load_trained(str(tmp_path / "run"), torch.device("cpu"))
    obs = np.random.default_rng(0).choice([-1.0, 1.0], size=(8, 1)).astype(np.float32)
    actions = _run_standalone(fmt, path, obs)
    np.testing.assert_array_equal(actions, trained.agent.act(obs, deterministic=True) + 1)


@pytest.mark.parametrize("env", ["Pendulum-v1", "HalfCheetah-v5"], ids=["pygame", "mujoco_offscreen"])
def test_eval_video_writes_one_mp4_per_episode(tmp_path, env):
    train_tiny(tmp_path / "run", f"env.id={env}", "env.max_episode_steps=30")
    report = evaluate_checkpoint(EvalConfig(checkpoint=str(tmp_path / "run"), episodes=2, device="cpu", video=True),
                                 tmp_path / "eval").report
    videos = sorted((tmp_path / "eval" / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 1000 for v in videos)
    assert report["videos"] == [str(v) for v in videos]


def test_training_records_a_video_every_k_evaluations(tmp_path):
    # The smoke schedule evaluates at steps 150 and 300: with K = 2 only the second is recorded.
    train_tiny(tmp_path, "logging.video_every_evals=2", "env.max_episode_steps=30")
    assert [v.name for v in (tmp_path / "videos").glob("*.mp4")] == ["step_000000300-episode-0.mp4"]


def test_eval_with_logging_puts_results_and_videos_in_a_wandb_run(tmp_path):
    from sac_runner.config import LoggingConfig

    train_tiny(tmp_path / "run", "env.max_episode_steps=30")
    evaluate_checkpoint(EvalConfig(checkpoint=str(tmp_path / "run"), episodes=2, device="cpu", video=True,
                                   logging=LoggingConfig(mode="offline", progress=False)), tmp_path / "eval")
    (offline,) = (tmp_path / "eval" / "wandb").glob("offline-run-*")
    assert len(list(offline.glob("files/media/videos/**/*.mp4"))) == 2
    records = [json.loads(line) for line in (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 300 and "eval/return_mean" in records[0]
