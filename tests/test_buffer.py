import numpy as np
import pytest
import torch

from sac_runner.buffer import ReplayBuffer


def _fill(buffer, values):
    for v in values:
        buffer.add(np.full(2, v), np.full(1, -v), float(v), np.full(2, v + 0.5), v % 2 == 0)


def test_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(3, obs_dim=2, action_dim=1, device=torch.device("cpu"))
    _fill(buffer, [1, 2, 3, 4, 5])
    assert len(buffer) == 3 and buffer.position == 2
    # Slots 0 and 1 were overwritten by 4 and 5; slot 2 still holds 3.
    assert buffer.reward.tolist() == [4.0, 5.0, 3.0]
    assert buffer.obs[:, 0].tolist() == [4.0, 5.0, 3.0]
    assert buffer.next_obs[:, 0].tolist() == [4.5, 5.5, 3.5]
    assert buffer.action[:, 0].tolist() == [-4.0, -5.0, -3.0]
    assert buffer.terminated.tolist() == [1.0, 0.0, 0.0]


def test_samples_only_stored_transitions_and_keeps_them_aligned():
    buffer = ReplayBuffer(10, obs_dim=2, action_dim=1, device=torch.device("cpu"), seed=3)
    _fill(buffer, [1, 2, 3, 4])
    batch = buffer.sample(64)
    assert set(batch.reward.tolist()) <= {1.0, 2.0, 3.0, 4.0}
    assert torch.equal(batch.obs[:, 0], batch.reward)
    assert torch.equal(batch.next_obs[:, 0], batch.reward + 0.5)
    assert torch.equal(batch.action[:, 0], -batch.reward)
    assert torch.equal(batch.terminated, (batch.reward % 2 == 0).float())
    assert batch.obs.dtype == torch.float32


def test_sampling_is_uniform_over_a_full_buffer():
    buffer = ReplayBuffer(4, obs_dim=1, action_dim=1, device=torch.device("cpu"), seed=0)
    for v in range(6):  # wraps: holds 4, 5, 2, 3
        buffer.add(np.zeros(1), np.zeros(1), float(v), np.zeros(1), False)
    counts = np.bincount(buffer.sample(40_000).reward.long().numpy(), minlength=6)
    assert counts[0] == counts[1] == 0
    assert np.allclose(counts[2:] / 40_000, 0.25, atol=0.01)


def test_same_seed_same_batches():
    a = ReplayBuffer(10, 2, 1, torch.device("cpu"), seed=7)
    b = ReplayBuffer(10, 2, 1, torch.device("cpu"), seed=7)
    for buf in (a, b):
        _fill(buf, range(10))
    assert torch.equal(a.sample(16).reward, b.sample(16).reward)


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(4, 1, 1, torch.device("cpu")).sample(2)
