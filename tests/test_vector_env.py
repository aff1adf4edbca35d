"""env.num_envs > 1: environments stepped together, one replay stream each, the schedule counted in
transitions, and exact resume."""

import numpy as np
import pytest
import torch

from sac_runner.algo.replay_buffer import ReplayBuffer
from sac_runner.algo.sac import SAC
from sac_runner.config import BufferConfig, ConfigError
from sac_runner.run.run_config import to_run_config
from sac_runner.run.checkpoint import load_checkpoint
from sac_runner.run.training import train
from tests.harness import loop_but_its_clock, tiny_config, train_tiny


# ---- the buffer's streams ----------------------------------------------------------------------------

def test_each_stream_keeps_its_own_next_observations_and_episode_ends():
    buffer = ReplayBuffer(BufferConfig(capacity=12), 1, 1, torch.device("cpu"), streams=2)
    for t in range(3):  # stream 0 counts 0, 1, 2, 3 (terminated at 3); stream 1 counts 100, 101, ...
        buffer.add(np.array([t]), np.array([0.0]), 1.0, np.array([t + 1]), t == 2, stream=0)
        buffer.add(np.array([100 + t]), np.array([0.0]), 2.0, np.array([101 + t]), False, stream=1)
    t = buffer.transitions()
    assert t.obs[:, 0].tolist() == [0, 1, 2, 100, 101, 102]
    assert t.next_obs[:, 0].tolist() == [1, 2, 3, 101, 102, 103]  # never another stream's observation
    assert t.terminated.tolist() == [0, 0, 1, 0, 0, 0]
    assert len(buffer) == 6 and buffer.stream_capacity == 6


def test_a_stream_wraps_around_within_its_own_slots():
    buffer = ReplayBuffer(BufferConfig(capacity=8), 1, 1, torch.device("cpu"), streams=2)
    for t in range(10):
        buffer.add(np.array([t]), np.array([0.0]), 0.0, np.array([t + 1]), False, stream=0)
    buffer.add(np.array([50]), np.array([0.0]), 0.0, np.array([51]), False, stream=1)
    t = buffer.transitions()
    assert t.obs[:, 0].tolist() == [7, 8, 9, 50]  # stream 0: 4 slots hold its 3 newest transitions
    assert t.next_obs[:, 0].tolist() == [8, 9, 10, 51]
    sampled = buffer.sample(2000)
    assert set(sampled.obs[:, 0].tolist()) == {7.0, 8.0, 9.0, 50.0}  # uniform over stored transitions only
    assert np.allclose(np.bincount(sampled.obs[:, 0].long().numpy(), minlength=51)[[7, 8, 9, 50]] / 2000, 0.25,
                       atol=0.04)


def test_a_streamed_buffer_saves_and_loads_every_stream():
    def filled():
        buffer = ReplayBuffer(BufferConfig(capacity=40, n_step=2), 1, 1, torch.device("cpu"), streams=4,
                              discounts=np.array([1.0, 0.5, 0.25]))
        for t in range(7):
            for s in range(4):
                buffer.add(np.array([10 * s + t]), np.array([0.0]), 1.0, np.array([10 * s + t + 1]), t == 4, stream=s)
        return buffer

    saved = filled().state_dict()
    loaded = ReplayBuffer(BufferConfig(capacity=40, n_step=2), 1, 1, torch.device("cpu"), streams=4,
                          discounts=np.array([1.0, 0.5, 0.25]))
    loaded.load_state_dict(saved)
    a, b = filled().transitions(), loaded.transitions()
    assert all(torch.equal(x, y) for x, y in zip(a, b) if x is not None)
    assert a.reward.tolist()[:5] == [1.5, 1.5, 1.5, 1.5, 1.0]  # 2-step returns stop at the termination (t = 4)


# ---- the loop ---------------------------------------------------------------------------------------

def test_termination_and_truncation_are_kept_per_environment(tmp_path):
    # Countdown-v0 terminates every 3rd step; CountdownTruncated-v0 is cut by a 4-step time limit.
    parts = train_tiny(tmp_path / "a", "env.id=Countdown-v0", "env.num_envs=3", "schedule.total_steps=30").parts
    t = parts.buffer.transitions()
    assert len(t.obs) == 30 and t.terminated.tolist() == ([0.0, 0.0, 1.0] * 3 + [0.0]) * 3  # 10 per stream
    assert np.all(t.next_obs[t.terminated == 1].numpy() == 0.0)  # the real terminal observation, not a reset's

    parts = train_tiny(tmp_path / "b", "env.id=CountdownTruncated-v0", "env.num_envs=2",
                       "schedule.total_steps=32").parts
    t = parts.buffer.transitions()
    assert not t.terminated.any() and len(t.obs) == 32
    assert t.next_obs[3::4, 0].tolist() == [96.0] * 8  # the real last observation at each truncation


def test_total_steps_counts_transitions_and_the_update_to_data_ratio_holds(tmp_path, monkeypatch):
    updates = []
    original = SAC.update
    monkeypatch.setattr(SAC, "update", lambda self, batch: updates.append(1) or original(self, batch))
    run = train_tiny(tmp_path / "a", "env.num_envs=4", "schedule.total_steps=100", "schedule.update_after=60",
                     "schedule.update_every=10", "schedule.gradient_steps=3")
    assert len(updates) == 3 * 5  # at 60, 70, 80, 90, 100 transitions: as with one environment
    assert run.trainer.state.step == 100 and len(run.parts.buffer) == 100
    updates.clear()
    train_tiny(tmp_path / "b", "env.num_envs=4", "schedule.total_steps=100", "schedule.update_after=1")
    assert len(updates) == 100  # one gradient step per transition: 4 per vector step


def test_warm_up_acts_randomly_then_acts_in_one_batch(tmp_path, monkeypatch):
    batches = []
    original = SAC.act
    monkeypatch.setattr(SAC, "act", lambda self, obs, deterministic=False: (
        None if deterministic else batches.append(np.shape(obs))) or original(self, obs, deterministic))
    train_tiny(tmp_path, "env.num_envs=4", "schedule.total_steps=120", "schedule.start_steps=100",
               "schedule.eval_every=1000")
    assert batches == [(4, 3)] * 5  # transitions 101-120: five vector steps of 4


def test_episode_metrics_evaluation_and_normalization_with_several_environments(tmp_path):
    run = train_tiny(tmp_path, "env.num_envs=2", "schedule.total_steps=800", "env.normalize_obs=true")
    episodes = [r for r in run.records if "train/episode_return" in r]
    assert [r["train/episode"] for r in episodes] == [1, 2, 3, 4] and {r["train/episode_length"] for r in episodes} == {200}
    assert [r["step"] for r in run.records if "eval/return_mean" in r] == [150, 300, 450, 600, 750, 800]
    # every stored observation went into the statistics: 800 transitions plus the 2 + 4 reset observations
    assert run.parts.agent.normalizer.count.item() == 800 + 2 + 4


def test_an_environment_that_raises_rebuilds_them_all(tmp_path, monkeypatch):
    """Each new Drift instance raises at its 30th step, twice in all: at transitions 60 and 120 (2 x 30)."""
    from tests.toy_envs import Drift

    monkeypatch.setattr(Drift, "raised", 0)
    run = train_tiny(tmp_path, "env.id=Drift-v0", "env.num_envs=2", "+env.kwargs.raise_at=30",
                     "+env.kwargs.raise_times=2", "schedule.total_steps=150", "schedule.eval_episodes=1")
    failures = [r for r in run.records if "train/env_failures" in r]
    assert [(r["step"], r["train/env_failures"]) for r in failures] == [(60, 1), (120, 2)]
    assert run.trainer.state.step == 150 and run.trainer.state.episode >= 4  # 2 x 2 broken episodes, then 50-step ones
    assert run.parts.buffer.episode_end.sum() >= 4


def test_resume_with_four_environments_is_bitwise_identical(tmp_path):
    variant = ("env.num_envs=4", "buffer=prioritized", "buffer.n_step=3", "env.normalize_obs=true")
    whole = train_tiny(tmp_path / "whole", *variant)
    stopped = train_tiny(tmp_path / "split", *variant, stop_at=170).trainer
    assert stopped.state.step == 172  # mid-episode in every environment
    split = tmp_path / "split"
    train(tiny_config(*variant, f"resume={split}"), split, overrides=[f"resume={split}"])
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(split)
    assert a.step == b.step == whole.trainer.state.step == 300
    for name, tensor in a.agent["actor"].items():
        assert torch.equal(tensor, b.agent["actor"][name]), name
    for name, tensor in a.agent["critic"].items():
        assert torch.equal(tensor, b.agent["critic"][name]), name
    assert loop_but_its_clock(a) == loop_but_its_clock(b)


def test_async_environments_train_and_resume_with_new_episodes(tmp_path, caplog):
    variant = ("env.num_envs=2", "env.vectorization=async")
    run = train_tiny(tmp_path, *variant, stop_at=160)
    assert run.trainer.state.step == 160
    with caplog.at_level("WARNING"):
        final = train(tiny_config(*variant, f"resume={tmp_path}"), tmp_path, overrides=[f"resume={tmp_path}"])
    assert np.isfinite(final["eval/return_mean"]) and load_checkpoint(tmp_path).step == 300
    assert any("starts new episodes" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("override, message", [
    ("env.num_envs=0", "env.num_envs must be at least 1"),
    ("env.vectorization=threads", "env.vectorization must be sync or async"),
    ("env.num_envs=600", r"buffer.capacity \(1000\) is too small for env.num_envs=600"),
])
def test_bad_vector_settings_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message):
        to_run_config(tiny_config("buffer.capacity=1000", "schedule.batch_size=32", override))
