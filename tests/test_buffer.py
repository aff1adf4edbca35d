"""Replay buffer: wrap-around, exact episode ends, n-step returns and prioritized replay, by hand."""

import numpy as np
import pytest
import torch

from sac_runner.algo.replay_buffer import ReplayBuffer, buffer_bytes, n_step_discounts
from sac_runner.algo.sum_tree import SegmentTree
from sac_runner.config import BufferConfig

CPU = torch.device("cpu")


def _buffer(capacity=10, n_step=1, type="uniform", gamma=0.5, seed=0, obs_dim=1):
    return ReplayBuffer(BufferConfig(capacity=capacity, n_step=n_step, type=type), obs_dim, 1, CPU, seed=seed,
                        discounts=n_step_discounts(gamma, n_step))


def _episode(buffer, start, length, terminated=True, reward=None):
    """Observations start, start+1, ...; reward r_t = t's observation unless given; ends as asked."""
    for t in range(length):
        last = t == length - 1
        obs = start + t
        buffer.add(np.array([obs], np.float32), np.array([-obs], np.float32), float(obs if reward is None else reward),
                   np.array([obs + 1], np.float32), terminated and last, (not terminated) and last)


def test_one_step_transitions_keep_their_own_next_observation_across_episode_ends():
    buffer = _buffer(capacity=20)
    _episode(buffer, 0, 3, terminated=True)     # obs 0,1,2 -> final obs 3
    _episode(buffer, 10, 2, terminated=False)   # obs 10,11 -> final obs 12 (truncated)
    t = buffer.transitions()
    assert t.obs[:, 0].tolist() == [0, 1, 2, 10, 11]
    assert t.next_obs[:, 0].tolist() == [1, 2, 3, 11, 12]  # the real final observations, not the resets
    assert t.terminated.tolist() == [0, 0, 1, 0, 0]        # truncation is not termination
    assert t.action[:, 0].tolist() == [0, -1, -2, -10, -11]


def test_wraps_around_and_overwrites_the_oldest():
    buffer = _buffer(capacity=6)
    _episode(buffer, 0, 4)    # slots 0-3 transitions, slot 4 final obs, head -> 5
    _episode(buffer, 10, 3)   # slots 5, 0, 1 transitions (overwriting 0, 1), slot 2 final obs 13,
    #                           head -> 3: the slot of the next reset observation retires obs 3 at once
    t = buffer.transitions()
    assert t.obs[:, 0].tolist() == [10, 11, 12] and len(buffer) == 3
    assert t.next_obs[:, 0].tolist() == [11, 12, 13]


def test_samples_only_stored_transitions_aligned():
    buffer = _buffer(capacity=50, seed=3)
    for start in (0, 10, 20):
        _episode(buffer, start, 4)
    batch = buffer.sample(256)
    assert set(batch.obs[:, 0].tolist()) <= {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}
    assert torch.equal(batch.next_obs, batch.obs + 1) and torch.equal(batch.action, -batch.obs)
    assert torch.equal(batch.terminated, (batch.obs[:, 0] % 10 == 3).float())


def test_uniform_sampling_is_uniform_over_transitions():
    buffer = _buffer(capacity=8, seed=0)
    _episode(buffer, 0, 3)  # 3 transitions, 1 final slot, head
    _episode(buffer, 5, 2)  # 2 more
    counts = np.bincount(buffer.sample(50_000).obs[:, 0].long().numpy(), minlength=7)
    assert np.allclose(counts[[0, 1, 2, 5, 6]] / 50_000, 0.2, atol=0.01) and counts[[3, 4]].sum() == 0


def test_bytes_per_transition_counts_one_observation():
    buffer = ReplayBuffer(BufferConfig(capacity=4), 17, 6, CPU)
    assert buffer.bytes_per_transition == 17 * 4 + 6 * 4 + 4 + 3  # vs 2 * 17 * 4 + ... with next_obs stored
    assert buffer.obs.nbytes + buffer.action.nbytes + buffer.reward.nbytes + 3 * 4 == 4 * buffer.bytes_per_transition


def test_n_step_return_by_hand_inside_an_episode():
    buffer = _buffer(capacity=30, n_step=3, gamma=0.5)
    _episode(buffer, 0, 6, terminated=True)  # rewards 0..5, terminal after obs 5
    t = buffer.transitions()
    # From obs 1: 1 + 0.5*2 + 0.25*3 = 2.75, bootstrap from obs 4 with 0.5^3.
    assert t.reward[1].item() == pytest.approx(2.75) and t.next_obs[1, 0].item() == 4
    assert t.discount[1].item() == pytest.approx(0.125) and t.terminated[1].item() == 0


def test_n_step_stops_at_a_termination_without_bootstrap():
    buffer = _buffer(capacity=30, n_step=3, gamma=0.5)
    _episode(buffer, 0, 6, terminated=True)
    t = buffer.transitions()
    # From obs 4: 4 + 0.5*5 = 6.5, then the episode terminated: terminated=1 (no bootstrap).
    assert t.reward[4].item() == pytest.approx(6.5) and t.terminated[4].item() == 1
    assert t.next_obs[4, 0].item() == 6 and t.discount[4].item() == pytest.approx(0.25)


def test_n_step_stops_at_a_truncation_and_bootstraps_from_the_final_observation():
    buffer = _buffer(capacity=30, n_step=3, gamma=0.5)
    _episode(buffer, 0, 5, terminated=False)  # truncated after obs 4 -> final obs 5
    _episode(buffer, 100, 3, terminated=True, reward=100.0)
    t = buffer.transitions()
    assert t.reward[3].item() == pytest.approx(3 + 0.5 * 4) and t.terminated[3].item() == 0
    assert t.next_obs[3, 0].item() == 5 and t.discount[3].item() == pytest.approx(0.25)


def test_n_step_uses_what_exists_at_the_newest_end():
    buffer = _buffer(capacity=30, n_step=3, gamma=0.5)
    _episode(buffer, 0, 5, terminated=True)
    buffer.add(np.array([50.0], np.float32), np.array([0.0], np.float32), 1.0, np.array([51.0], np.float32), False)
    t = buffer.transitions()  # the last transition (obs 50) has only one step so far
    assert t.reward[-1].item() == 1.0 and t.next_obs[-1, 0].item() == 51 and t.discount[-1].item() == 0.5


def test_segment_tree_prefix_search_and_minimum():
    tree = SegmentTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 3.0, 2.0, 4.0]), np.array([1.0, np.inf, 3.0, 2.0, 4.0]))
    assert tree.total == 10 and tree.min[1] == 1.0
    assert tree.find_prefix(np.array([0.0, 0.99, 1.0, 3.99, 4.0, 5.99, 6.0, 9.99])).tolist() == [0, 0, 2, 2, 3, 3, 4, 4]


def test_prioritized_sampling_follows_priorities_and_weights_correct_for_it():
    # alpha = 1: P(i) proportional to |td| + eps; beta = 1: full importance-sampling correction.
    cfg = BufferConfig(capacity=16, type="prioritized", alpha=1.0, beta=1.0)
    buffer = ReplayBuffer(cfg, 1, 1, CPU, seed=0)
    _episode(buffer, 0, 4)  # 4 transitions, equal (maximal) priorities
    batch = buffer.sample(4)  # stratified over equal priorities: each transition once
    assert sorted(batch.obs[:, 0].tolist()) == [0, 1, 2, 3]
    buffer.update_priorities(batch.obs[:, 0] + 1.0)  # priorities 1, 2, 3, 4
    batch = buffer.sample(40_000)
    freq = np.bincount(batch.obs[:, 0].long().numpy(), minlength=4) / 40_000
    assert np.allclose(freq, np.array([1, 2, 3, 4]) / 10, atol=0.01)
    # w_i = (N P(i))^-1 / max_j w_j = p_min / p_i
    assert torch.allclose(batch.weights, 1.0 / (batch.obs[:, 0] + 1), atol=1e-4)


def test_new_transitions_get_the_maximum_priority_and_beta_anneals_to_one():
    buffer = _buffer(capacity=16, type="prioritized")
    _episode(buffer, 0, 2)
    buffer.sample(2)
    buffer.update_priorities(torch.tensor([5.0, 0.5]))
    _episode(buffer, 10, 1)
    leaf = buffer.tree.sum[buffer.tree.leaves:]
    assert leaf[3] == pytest.approx(leaf.max())  # slot 3: the new transition
    buffer.set_progress(0.5)
    assert buffer.beta == pytest.approx(0.4 + 0.6 * 0.5)
    buffer.set_progress(1.0)
    assert buffer.beta == 1.0


def test_overwritten_transitions_leave_the_priority_tree():
    buffer = _buffer(capacity=4, type="prioritized")
    _episode(buffer, 0, 6, terminated=False)
    # Slots 0, 1 hold obs 4, 5; obs 2 and 3 were overwritten by the final observation and the head.
    assert np.count_nonzero(buffer.tree.sum[buffer.tree.leaves:]) == len(buffer) == 2


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(RuntimeError, match="empty"):
        _buffer().sample(2)


def test_buffer_bytes_counts_what_the_arrays_hold():
    """The memory check before allocating counts what the buffer's arrays really take."""
    for kind, action_dim, dtype in (("uniform", 6, np.float32), ("prioritized", 1, np.int64)):
        cfg = BufferConfig(type=kind, capacity=1000)
        buffer = ReplayBuffer(cfg, 17, action_dim, CPU, action_dtype=dtype)
        arrays = (buffer.obs, buffer.action, buffer.reward, buffer.terminated, buffer.episode_end,
                  buffer.starts_transition)
        tree = buffer.tree.sum.nbytes + buffer.tree.min.nbytes if buffer.tree is not None else 0
        assert buffer_bytes(cfg, 17, action_dim, dtype) == sum(a.nbytes for a in arrays) + tree
        assert buffer.bytes_per_transition == sum(a.nbytes for a in arrays) // 1000


def test_n_step_discounts_are_the_powers_of_gamma_and_n_step_needs_them():
    assert n_step_discounts(0.5, 3).tolist() == [1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match="n_step=3 needs discounts"):
        ReplayBuffer(BufferConfig(capacity=8, n_step=3), 1, 1, CPU)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_batches_from_the_device_copy_equal_the_host_gather(device, kind):
    """buffer.device=cuda's copy (tried on the CPU too): the same draws give the same transitions while
    the buffer fills, wraps around, ends episodes on several streams, and after a checkpoint reload."""
    def buffer(mirror: bool, seed: int = 4) -> ReplayBuffer:
        return ReplayBuffer(BufferConfig(capacity=24, type=kind), 2, 3, torch.device(device), seed=seed, streams=2,
                            mirror_on_device=mirror)

    def assert_same(batch, expected):
        for name, value in expected._asdict().items():
            if value is None:
                assert getattr(batch, name) is None, name
            else:
                torch.testing.assert_close(getattr(batch, name), value, rtol=0, atol=0, msg=name)
        assert batch.obs.device.type == device

    host, mirrored = buffer(False), buffer(True)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(2, 2))
    for t in range(40):
        for stream in (0, 1):
            action, next_obs, done = rng.uniform(-1, 1, 3), rng.normal(size=2), t % 7 == 6
            for b in (host, mirrored):
                b.add(obs[stream], action, float(t), next_obs, terminated=done, stream=stream)
            obs[stream] = rng.normal(size=2) if done else next_obs  # a reset observation after an episode end
        assert_same(mirrored.sample(8), host.sample(8))
        if kind == "prioritized":
            td_error = torch.rand(8, device=device)
            host.update_priorities(td_error)
            mirrored.update_priorities(td_error)

    reloaded = buffer(True, seed=9)
    reloaded.load_state_dict(mirrored.state_dict())
    assert_same(reloaded.sample(16), host.sample(16))
