"""Runs from pixels end to end: the frame pipeline, a tiny run that trains, resumes bit for bit and exports
a policy taking uint8 frames, DMC from pixels, and the one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sac_runner.config import EnvConfig, dmc_id
from sac_runner.errors import EnvError
from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.envs import env_spaces, make_env
from sac_runner.run.training import train
from tests import toy_envs  # noqa: F401  (registers Blob-v0)
from tests.harness import QUIET, cli, loop_but_its_clock, refusal_line, tiny_config, train_tiny

# A tiny pixel run: the Blob's 64x64 frames, two stacked, a narrow DrQ encoder and networks.
PIXELS = ("env.id=tests.toy_envs:Blob-v0", "env.pixels=true", "env.image_size=64", "env.frame_stack=2", "agent=drq",
          "agent.hidden_sizes=[16]", "agent.feature_dim=8", "schedule.batch_size=8", "buffer.capacity=1000")
SMALL = ("schedule=smoke", *QUIET, "schedule.start_steps=60", "schedule.update_after=60")


def blob(**overrides) -> EnvConfig:
    return EnvConfig(**{"id": "Blob-v0", "pixels": True, "image_size": 64, **overrides})


def test_a_pixel_observation_is_a_uint8_stack_of_frames_channels_first_newest_last():
    env = make_env(blob(frame_stack=3), seed=0)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (9, 64, 64) and obs.dtype == np.uint8
    first = env.unwrapped.render().transpose(2, 0, 1)
    assert all(np.array_equal(obs[i:i + 3], first) for i in (0, 3, 6))  # the reset frame fills the stack
    obs, *_ = env.step(np.ones(2, np.float32))
    assert np.array_equal(obs[6:], env.unwrapped.render().transpose(2, 0, 1))  # newest last
    assert np.array_equal(obs[:3], first) and not np.array_equal(obs[6:], first)
    assert env_spaces(env, 3).image_shape == (9, 64, 64)


def test_action_repeat_steps_the_task_k_times_and_sums_the_rewards():
    once, twice = make_env(blob(frame_stack=1), seed=0), make_env(blob(frame_stack=1, action_repeat=2), seed=0)
    once.reset(seed=4)
    twice.reset(seed=4)
    push = np.array([0.5, -0.5], np.float32)
    expected = once.step(push)[1] + once.step(push)[1]
    _, reward, *_ = twice.step(push)
    assert reward == pytest.approx(expected)
    assert np.array_equal(twice.unwrapped.position, once.unwrapped.position)


def test_a_pixel_run_trains_with_frames_stored_once_and_counts_environment_steps(tmp_path):
    tiny = train_tiny(tmp_path, *SMALL, *PIXELS, "env.action_repeat=2")
    buffer = tiny.parts.buffer
    assert buffer.obs.dtype == np.uint8 and buffer.obs.shape[1:] == (3, 64, 64)  # one frame per slot
    assert buffer.bytes_per_transition < 1.1 * (3 * 64 * 64 + 4 * 2 + 4)
    assert tiny.trainer.state.step == 300 and len(buffer) == 150  # 300 environment steps, 2 per transition
    logged = [r for r in tiny.records if "time/agent_steps" in r]
    assert logged and all(r["time/agent_steps"] * 2 == r["step"] for r in logged)
    assert tiny.parts.agent.num_updates == 150 - 30 + 1  # transitions 30 .. 150 (environment steps 60 .. 300)
    assert np.isfinite(tiny.final["eval/return_mean"])


def test_a_pixel_run_resumes_bit_for_bit(tmp_path):
    # One thread throughout: a convolution's weight gradient sums its batch in an order that depends on
    # the thread count (an MLP's at these sizes does not), and the resumed run sets its own (threads=).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole, split = tmp_path / "whole", tmp_path / "split"
        train_tiny(whole, *SMALL, *PIXELS, "threads=1")
        train_tiny(split, *SMALL, *PIXELS, "threads=1", stop_at=170)  # the checkpoint keeps threads=1 for the resume
        train(tiny_config(*SMALL, *PIXELS, "threads=1", f"resume={split}"), split, overrides=[f"resume={split}"])
    finally:
        torch.set_num_threads(threads)
    a, b = load_checkpoint(whole / "checkpoints" / "latest.pt"), load_checkpoint(split / "checkpoints" / "latest.pt")
    assert a.step == b.step == 300
    for network in ("actor", "critic", "target"):
        for key, value in a.agent[network].items():
            assert torch.equal(value, b.agent[network][key]), f"{network}.{key}"
    assert loop_but_its_clock(a) == loop_but_its_clock(b)


@pytest.fixture(scope="module")
def trained_pixel_run(tmp_path_factory):
    """One tiny pixel run, shared by the export tests: its directory and what it trained."""
    run_dir = tmp_path_factory.mktemp("pixel_run")
    return run_dir, train_tiny(run_dir, *SMALL, *PIXELS)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_exported_pixel_policy_takes_uint8_frames_and_matches_the_agent(tmp_path, fmt, trained_pixel_run):
    run_dir, tiny = trained_pixel_run
    out = tmp_path / ("policy.pt" if fmt == "torchscript" else "policy.onnx")
    proc = cli("sac-export", tmp_path, f"checkpoint={run_dir}", f"format={fmt}", f"output={out}")
    assert proc.returncode == 0, proc.stderr
    frames = np.random.default_rng(0).integers(0, 256, (4, 6, 64, 64), dtype=np.uint8)
    expected = tiny.parts.agent.act(frames, deterministic=True)  # in [-1, 1]; the Blob's bounds are [-1, 1] too
    if fmt == "torchscript":
        got = torch.jit.load(str(out))(torch.from_numpy(frames)).numpy()
    else:
        import onnxruntime
        got = onnxruntime.InferenceSession(str(out)).run(None, {"obs": frames})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_dmc_from_pixels_renders_84px_frames_after_the_tasks_action_repeat():
    pytest.importorskip("dm_control")
    env = make_env(EnvConfig(id=dmc_id("cartpole-swingup"), task="cartpole-swingup", pixels=True), seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (9, 84, 84) and obs.dtype == np.uint8 and obs.std() > 0
        physics = env.unwrapped._env.physics
        before = physics.data.time
        env.step(np.zeros(1, np.float32))
        assert physics.data.time - before == pytest.approx(8 * 0.01)  # cartpole: 8 control steps of 10 ms
    finally:
        env.close()


def test_pixels_for_a_task_that_cannot_render_is_refused():
    with pytest.raises(EnvError, match="cannot render rgb_array.*env.pixels=false"):
        make_env(EnvConfig(id="Countdown-v0", pixels=True))


BLOB = "env.id=tests.toy_envs:Blob-v0"  # named as a user would, the repository on PYTHONPATH


@pytest.mark.parametrize("args, expected", [
    (("agent=drq",), "agent.augmentation=shift shifts images, but Pendulum-v1 observes states; set env.pixels=true"),
    ((BLOB, "env.pixels=true", "env.frame_stack=0"), "env.frame_stack must be at least 1, got 0"),
    ((BLOB, "env.pixels=true", "env.image_size=32"), "env.image_size must be in 64 .. 128"),
    ((BLOB, "env.pixels=true", "env.image_size=64", "env.normalize_obs=true"), "env.normalize_obs=true does not apply"),
    (("env.id=tests.toy_envs:Countdown-v0", "env.pixels=true"), "cannot render rgb_array"),
])
def test_bad_pixel_input_is_one_line(tmp_path, args, expected):
    proc = cli("sac-train", tmp_path, *args, "schedule=smoke", *QUIET)
    assert proc.returncode == 2
    assert expected in refusal_line(proc)
    assert not (tmp_path / "outputs").exists()  # nothing left behind


def test_a_pixel_runs_video_shows_the_frames_the_agent_sees():
    env = make_env(blob(frame_stack=2), render_mode="rgb_array", seed=0)
    obs, _ = env.reset(seed=1)
    obs, *_ = env.step(np.ones(2, np.float32))
    frame = env.render()
    assert frame.shape == (4 * 64, 2 * 4 * 64, 3)  # the two stacked frames, 4x, oldest first
    newest = obs[3:].transpose(1, 2, 0)
    assert np.array_equal(frame[::4, 256::4], newest) and np.array_equal(frame[::4, :256:4], obs[:3].transpose(1, 2, 0))


def test_a_dmc_pixel_video_puts_the_view_beside_the_agents_frames():
    pytest.importorskip("dm_control")
    env = make_env(EnvConfig(id=dmc_id("cartpole-swingup"), task="cartpole-swingup", pixels=True),
                   render_mode="rgb_array", seed=0)
    try:
        obs, _ = env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (336, 4 * 336, 3)  # the 336x336 view, then 3 frames of 84 scaled 4x
        assert np.array_equal(frame[::4, -336::4], obs[6:].transpose(1, 2, 0))
    finally:
        env.close()


def test_env_camera_picks_the_dmc_camera_the_frames_come_from():
    pytest.importorskip("dm_control")
    frames = {}
    for camera in (None, 1):
        env = make_env(EnvConfig(id=dmc_id("cartpole-swingup"), task="cartpole-swingup", pixels=True, camera=camera))
        try:
            frames[camera] = env.reset(seed=0)[0]
            assert env.unwrapped.render_kwargs["camera_id"] == (0 if camera is None else 1)
        finally:
            env.close()
    assert not np.array_equal(frames[None], frames[1])
