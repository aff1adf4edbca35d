"""Replay of stacked image frames, each frame stored once: checked against a naive buffer that keeps every
transition's full stacked obs and next_obs, through random episodes on several streams that wrap around
many times, with one-step and n-step returns, uniform and prioritized replay, the device copy and
checkpoints."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sac_runner.algo.replay_buffer import ReplayBuffer, buffer_bytes, n_step_discounts
from sac_runner.config import BufferConfig

CPU = torch.device("cpu")
GAMMA = 0.5  # with integer rewards, n-step returns are exact in float32
ACTION_DIM = 2


def frame_buffer(capacity, frame_stack, channels, n_step=1, kind="uniform", streams=1, seed=0, device=CPU,
                 mirror=False, size=(2, 2)) -> ReplayBuffer:
    return ReplayBuffer(BufferConfig(capacity=capacity, n_step=n_step, type=kind), None, ACTION_DIM, device,
                        seed=seed, discounts=n_step_discounts(GAMMA, n_step), streams=streams,
                        mirror_on_device=mirror, obs_shape=(frame_stack * channels, *size), frame_stack=frame_stack,
                        obs_dtype=np.uint8)


class Camera:
    """One environment's stacked observations, as gymnasium's FrameStackObservation(padding_type="reset")
    and a reshape (k, C, H, W) -> (k * C, H, W) make them: random frames, oldest first."""

    def __init__(self, rng, frame_stack, channels, size=(2, 2)):
        self.rng, self.shape, self.frames = rng, (channels, *size), []
        self.frame_stack = frame_stack

    def reset(self) -> np.ndarray:
        self.frames = [self._frame()] * self.frame_stack  # the reset frame repeated
        return np.concatenate(self.frames)

    def step(self) -> np.ndarray:
        self.frames = self.frames[1:] + [self._frame()]
        return np.concatenate(self.frames)

    def _frame(self) -> np.ndarray:
        return self.rng.integers(0, 256, self.shape, dtype=np.uint8)


@dataclass
class Record:
    stream: int
    position: int   # the stream's count of slots claimed before it: its slot is position % stream capacity
    first: int      # the position of its episode's first observation
    index: int      # its place in the stream's list of transitions
    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    ended: bool


class NaiveReplay:
    """Every transition with its full stacked obs and next_obs. It follows the frame buffer's slot layout
    only to name transitions by slot (one slot per add, one more after an episode's end, a stream's slots
    in turn) and keeps a transition while every frame of its stack lies in its stream's newest c slots."""

    def __init__(self, stream_capacity, streams, frame_stack, n_step):
        self.c, self.k, self.n = stream_capacity, frame_stack, n_step
        self.head = [0] * streams      # the position of each stream's newest observation
        self.first = [0] * streams
        self.at_reset = [True] * streams
        self.records: list[list[Record]] = [[] for _ in range(streams)]

    def add(self, stream, obs, action, reward, next_obs, terminated, truncated):
        if self.at_reset[stream]:
            self.first[stream] = self.head[stream]
        ended = terminated or truncated
        records = self.records[stream]
        records.append(Record(stream, self.head[stream], self.first[stream], len(records), obs.copy(), action.copy(),
                              reward, next_obs.copy(), terminated, ended))
        self.head[stream] += 2 if ended else 1
        self.at_reset[stream] = ended

    def end_episode(self, stream):
        self.at_reset[stream] = True
        last = self.records[stream][-1] if self.records[stream] else None
        if last is not None and not last.ended and self.kept(last):
            last.ended = True
            self.head[stream] += 1

    def kept(self, record: Record) -> bool:
        oldest_frame = max(record.first, record.position - self.k + 1)
        return oldest_frame > self.head[record.stream] - self.c

    def slot(self, record: Record) -> int:
        return record.stream * self.c + record.position % self.c

    def stored(self) -> list[Record]:
        """The transitions a buffer can sample, each stream oldest first."""
        return [r for records in self.records for r in records if self.kept(r)]

    def batch(self, records: list[Record]) -> dict:
        rows = [self._transition(r) for r in records]
        batch = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
        if self.n == 1:
            batch["discount"] = None
        return batch

    def _transition(self, record: Record) -> dict:
        steps = [record]
        following = self.records[record.stream]
        while len(steps) < self.n and not steps[-1].ended and steps[-1].index + 1 < len(following):
            steps.append(following[steps[-1].index + 1])
        return dict(obs=record.obs, action=record.action,
                    reward=np.float32(sum(GAMMA ** j * s.reward for j, s in enumerate(steps))),
                    next_obs=steps[-1].next_obs, terminated=np.float32(steps[-1].terminated),
                    discount=np.float32(GAMMA ** len(steps)))


def assert_batch(batch, expected: dict):
    for name, value in expected.items():
        got = getattr(batch, name)
        if value is None:
            assert got is None, name
        else:
            np.testing.assert_array_equal(got.cpu().numpy(), value, err_msg=name)
    assert batch.obs.dtype == batch.next_obs.dtype == torch.uint8


def assert_sampled_are_stored(batch, reference: NaiveReplay):
    """Each sampled row is a stored transition (known by its action, unique here) and equals it."""
    stored = {r.action.tobytes(): r for r in reference.stored()}
    actions = batch.action.cpu().numpy()
    missing = [a for a in actions if a.tobytes() not in stored]
    assert not missing, f"{len(missing)} sampled transitions are not stored (overwritten history?)"
    expected = reference.batch([stored[a.tobytes()] for a in actions])
    assert_batch(batch, expected)


class Driver:
    """Random episodes on every stream, in turn as a vector env steps them: lengths 1 to 13, ended by
    termination or truncation, and now and then cut by end_episode (an environment that broke). Each
    transition goes to the buffers and to the naive reference."""

    def __init__(self, reference: NaiveReplay, seed: int, frame_stack: int, channels: int):
        self.reference, self.rng = reference, np.random.default_rng(seed)
        streams = len(reference.records)
        self.cameras = [Camera(self.rng, frame_stack, channels) for _ in range(streams)]
        self.obs, self.left, self.terminates = [None] * streams, [0] * streams, [False] * streams

    def run(self, buffers, steps, on_step=lambda t: None):
        rng = self.rng
        for t in range(steps):
            for s, camera in enumerate(self.cameras):
                if self.left[s] == 0:
                    self.obs[s], self.left[s] = camera.reset(), int(rng.choice([1, 1, 2, 3, 5, 8, 13]))
                    self.terminates[s] = rng.random() < 0.5
                action = rng.normal(size=ACTION_DIM).astype(np.float32)
                reward, next_obs = float(rng.integers(-4, 5)), camera.step()
                self.left[s] -= 1
                ends = self.left[s] == 0
                terminated, truncated = ends and self.terminates[s], ends and not self.terminates[s]
                for b in buffers:
                    b.add(self.obs[s], action, reward, next_obs, terminated, truncated, stream=s)
                self.reference.add(s, self.obs[s], action, reward, next_obs, terminated, truncated)
                self.obs[s] = next_obs
                if rng.random() < 0.04:
                    for b in buffers:
                        b.end_episode(s)
                    self.reference.end_episode(s)
                    self.left[s] = 0
            on_step(t)


@pytest.mark.parametrize("frame_stack,channels", [(3, 3), (4, 1)])  # DMC (RGB, 3 deep), Atari (grey, 4 deep)
@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_batches_equal_a_buffer_of_full_stacks(frame_stack, channels, n_step, kind):
    """The same slots give the same transitions as the naive buffer, at every step while the streams wrap
    around many times; len, transitions() and the sampled transitions follow the rule that a transition
    stays only while every frame of its stack does; sampled batches never hold overwritten history."""
    streams, stream_capacity = 3, 16
    buffer = frame_buffer(streams * stream_capacity, frame_stack, channels, n_step, kind, streams, seed=1)
    reference = NaiveReplay(stream_capacity, streams, frame_stack, n_step)
    assert buffer.obs.shape == (streams * stream_capacity, channels, 2, 2)  # one frame per slot

    def check(t):
        stored = reference.stored()
        assert len(buffer) == len(stored)
        assert_batch(buffer.gather(np.array([reference.slot(r) for r in stored])), reference.batch(stored))
        assert_batch(buffer.transitions(), reference.batch(stored))
        batch = buffer.sample(32)
        assert_sampled_are_stored(batch, reference)
        assert_sampled_are_stored(buffer.inspection_batch(16, np.random.default_rng(t)), reference)
        if kind == "prioritized":
            buffer.update_priorities(torch.rand(32) * 4)
            # The priority mass lies on the stored transitions only (the same slot per transition).
            leaves = np.flatnonzero(buffer.tree.sum[buffer.tree.leaves:])
            assert sorted(leaves.tolist()) == sorted(reference.slot(r) for r in stored)

    Driver(reference, 0, frame_stack, channels).run([buffer], 120, check)
    assert min(reference.head) > 5 * stream_capacity  # wrapped around several times
    for _ in range(20):
        assert_sampled_are_stored(buffer.sample(256), reference)


def test_an_episode_start_repeats_the_reset_frame():
    buffer = frame_buffer(20, frame_stack=3, channels=1, size=(1, 1))
    f = lambda *values: np.array(values, np.uint8).reshape(-1, 1, 1)  # noqa: E731  stacked frames of one pixel
    buffer.add(f(10, 10, 10), np.zeros(2), 0.0, f(10, 10, 11), False)
    buffer.add(f(10, 10, 11), np.zeros(2), 0.0, f(10, 11, 12), True)   # terminated: the final frame 12
    buffer.add(f(20, 20, 20), np.zeros(2), 0.0, f(20, 20, 21), False, True)  # a one-step episode
    t = buffer.transitions()
    assert t.obs[:, :, 0, 0].tolist() == [[10, 10, 10], [10, 10, 11], [20, 20, 20]]
    assert t.next_obs[:, :, 0, 0].tolist() == [[10, 10, 11], [10, 11, 12], [20, 20, 21]]


def test_a_transition_leaves_with_the_oldest_frame_of_its_stack():
    """A stream of c slots keeps c - k transitions of a long episode (c - 1 without stacked frames): the
    oldest ones lost a frame of their stack. An episode start shields the transitions after it."""
    buffer = frame_buffer(8, frame_stack=3, channels=1, size=(1, 1))
    f = lambda t: np.array([max(t - 2, 0), max(t - 1, 0), t], np.uint8).reshape(3, 1, 1)  # noqa: E731
    newest_frames = lambda: buffer.transitions().obs[:, -1, 0, 0].tolist()  # noqa: E731
    for t in range(20):
        buffer.add(f(t), np.zeros(2), 0.0, f(t + 1), False)
    assert len(buffer) == 8 - 3 and newest_frames() == [15, 16, 17, 18, 19]
    buffer.add(f(20), np.zeros(2), 0.0, f(21), True)  # frame 21 and the slot kept for the reset claim
    assert newest_frames() == [17, 18, 19, 20]        # two more slots: 15 and 16 lost their oldest frames
    for t in range(7):                                  # a new episode: frames 0 (the reset), 1, .. 6
        buffer.add(f(t), np.zeros(2), 0.0, f(t + 1), False)
    assert newest_frames() == [0, 1, 2, 3, 4, 5, 6]   # c - 1: none of their stacks reaches before frame 0
    assert buffer.transitions().obs[0, :, 0, 0].tolist() == [0, 0, 0]
    buffer.add(f(7), np.zeros(2), 0.0, f(8), False)   # the reset frame's slot is claimed: 0, 1 and 2 go
    assert newest_frames() == [3, 4, 5, 6, 7]


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_a_reloaded_buffer_samples_the_same_batches(n_step, kind):
    """state_dict through torch.save and load(weights_only=True), mid-episode and after wrap-around: the
    reloaded buffer (another seed) then samples the same batches as the original as both go on."""
    original = frame_buffer(2 * 16, 3, 3, n_step, kind, streams=2, seed=1)
    reloaded = frame_buffer(2 * 16, 3, 3, n_step, kind, streams=2, seed=7)
    reference = NaiveReplay(16, 2, 3, n_step)
    driver = Driver(reference, 2, 3, 3)
    driver.run([original], 60)
    saved = io.BytesIO()
    torch.save(original.state_dict(), saved)
    saved.seek(0)
    reloaded.load_state_dict(torch.load(saved, weights_only=True))

    def same_batches(t):
        a, b = original.sample(16), reloaded.sample(16)
        for x, y in zip(a, b):
            assert (x is None and y is None) or torch.equal(x, y)
        if kind == "prioritized":
            td_error = torch.rand(16)
            original.update_priorities(td_error)
            reloaded.update_priorities(td_error)

    driver.run([original, reloaded], 30, same_batches)
    assert_sampled_are_stored(reloaded.sample(64), reference)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_stacks_rebuilt_on_the_device_equal_the_host_ones(device, kind):
    """The device copy (tried on the CPU too) keeps one uint8 frame per slot and rebuilds the stacks
    there: the same draws give the same batches as the host gather, also after a checkpoint reload."""
    def buffer(mirror, seed=4):
        return frame_buffer(2 * 16, 3, 3, 1, kind, streams=2, seed=seed, device=torch.device(device), mirror=mirror)

    host, mirrored = buffer(False), buffer(True)
    assert mirrored.mirror.images.dtype == torch.uint8 and mirrored.mirror.images.shape == (32, 3, 2, 2)
    reference = NaiveReplay(16, 2, 3, 1)

    def same_batches(t):
        a, b = host.sample(8), mirrored.sample(8)
        assert b.obs.device.type == device and b.obs.shape == (8, 9, 2, 2)
        for x, y in zip(a, b):
            assert (x is None and y is None) or torch.equal(x, y)
        if kind == "prioritized":
            td_error = torch.rand(8, device=device)
            host.update_priorities(td_error)
            mirrored.update_priorities(td_error)

    Driver(reference, 5, 3, 3).run([host, mirrored], 60, same_batches)
    batch = mirrored.sample(64)
    assert_sampled_are_stored(batch, reference)
    assert torch.equal(batch.obs, host.sample(64).obs)
    reloaded = buffer(True, seed=9)
    reloaded.load_state_dict(mirrored.state_dict())
    assert torch.equal(reloaded.sample(16).obs, host.sample(16).obs)


@pytest.mark.parametrize("frame, frame_stack, action_dim, action_dtype", [
    ((3, 84, 84), 3, 6, np.float32),  # DMC from pixels (cheetah's 6 actions)
    ((1, 84, 84), 4, 1, np.int64),    # Atari: a discrete action stored as its index
])
def test_a_transition_costs_one_frame(frame, frame_stack, action_dim, action_dtype):
    cfg = BufferConfig(capacity=64, type="prioritized")
    buffer = ReplayBuffer(cfg, None, action_dim, CPU, obs_shape=(frame_stack * frame[0], *frame[1:]),
                          frame_stack=frame_stack, obs_dtype=np.uint8, action_dtype=action_dtype)
    one_frame, action = int(np.prod(frame)), action_dim * np.dtype(action_dtype).itemsize
    assert buffer.bytes_per_transition == one_frame + action + 4 + 4  # reward and four flags
    assert buffer.bytes_per_transition <= 1.1 * (one_frame + action + 4)
    arrays = (buffer.obs, buffer.action, buffer.reward, buffer.terminated, buffer.episode_end,
              buffer.starts_transition, buffer.episode_start)
    assert buffer.bytes_per_transition == sum(a.nbytes for a in arrays) // 64
    tree = buffer.tree.sum.nbytes + buffer.tree.min.nbytes
    assert buffer_bytes(cfg, 0, action_dim, action_dtype, frame, np.uint8) == sum(a.nbytes for a in arrays) + tree


STATE_KEYS = {"obs", "action", "reward", "terminated", "episode_end", "starts_transition", "capacity", "streams",
              "head", "size", "slots_used", "rng", "beta", "max_priority"}


@pytest.mark.parametrize("kind", ["uniform", "prioritized"])
def test_a_state_buffer_saves_what_it_saved_before(kind):
    """Vector observations: the checkpoint keys and arrays of before (old checkpoints load); frame buffers
    add their episode-start flags and which streams are at a reset."""
    state = ReplayBuffer(BufferConfig(capacity=8, type=kind), 3, 1, CPU)
    state.add(np.ones(3), np.zeros(1), 1.0, np.ones(3), False)
    trees = {"tree_sum", "tree_min"} if kind == "prioritized" else set()
    saved = state.state_dict()
    assert set(saved) == STATE_KEYS | trees and saved["obs"].dtype == torch.float32
    assert saved["obs"].shape == (2, 3) and state.bytes_per_transition == 3 * 4 + 4 + 4 + 3
    frames = frame_buffer(8, 3, 1, kind=kind)
    assert set(frames.state_dict()) == STATE_KEYS | trees | {"episode_start", "at_reset"}
