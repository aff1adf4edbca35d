"""Memory and sampling time of the replay buffer for stacked image frames (each frame stored once).

    python scripts/bench_frame_buffer.py [--capacity 20000] [--calls 300] [--batch-size 512]

Memory: bytes per transition for DMC from pixels (84x84 RGB, 3 frames, cheetah's 6 actions) and Atari
(84x84 grey, 4 frames, a discrete action), against Stable-Baselines3's ReplayBuffer for the same
observation space: it stores obs and next_obs as full stacks (optimize_memory_usage=True keeps one,
but SB3 refuses it together with its default handle_timeout_termination=True). SB3's figure is
measured on its own arrays when it is installed (the bench extra), else computed as its source does.

Time: the median of `--calls` sample(batch_size) calls on the DMC case (uniform, one-step, on the
CPU: the stacks gathered into reused memory), against the same gather from arrays of full stacks
(obs and next_obs stored per transition, np.take into reused memory).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sac_runner.algo.replay_buffer import ReplayBuffer
from sac_runner.config import BufferConfig

CASES = {  # name: frame (C, H, W), frame_stack, action columns, action dtype
    "DMC pixels 84x84x3, 3 frames": ((3, 84, 84), 3, 6, np.float32),
    "Atari 84x84, 4 frames": ((1, 84, 84), 4, 1, np.int64),
}


def frame_buffer(capacity: int, frame, frame_stack: int, action_dim: int, action_dtype, seed: int = 0) -> ReplayBuffer:
    return ReplayBuffer(BufferConfig(capacity=capacity), None, action_dim, torch.device("cpu"), seed=seed,
                        obs_shape=(frame_stack * frame[0], *frame[1:]), frame_stack=frame_stack, obs_dtype=np.uint8,
                        action_dtype=action_dtype)


def sb3_bytes_per_transition(frame, frame_stack: int, action_dim: int, discrete: bool) -> tuple[int, int, str]:
    """SB3's ReplayBuffer per transition, by default and with optimize_memory_usage=True."""
    shape = (frame_stack * frame[0], *frame[1:])
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import ReplayBuffer as SB3Buffer
    except ImportError:  # as its source allocates: obs, next_obs, actions, rewards, dones, timeouts
        stack = int(np.prod(shape))
        rest = (8 if discrete else 4 * action_dim) + 3 * 4
        return 2 * stack + rest, stack + rest, "computed"
    observation = spaces.Box(0, 255, shape, np.uint8)
    action = spaces.Discrete(18) if discrete else spaces.Box(-1, 1, (action_dim,), np.float32)
    measured = []
    for optimize in (False, True):
        buffer = SB3Buffer(16, observation, action, "cpu", optimize_memory_usage=optimize,
                           handle_timeout_termination=not optimize)
        arrays = [buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
        arrays += [] if optimize else [buffer.next_observations]
        measured.append(sum(a.nbytes for a in arrays) // 16)
    return measured[0], measured[1], "measured"


def memory() -> None:
    print("bytes per transition (one slot; an episode's end takes one more slot)")
    for name, (frame, k, action_dim, action_dtype) in CASES.items():
        ours = frame_buffer(8, frame, k, action_dim, action_dtype).bytes_per_transition
        one_frame = int(np.prod(frame))
        floor = one_frame + action_dim * np.dtype(action_dtype).itemsize + 4
        sb3, sb3_optimized, how = sb3_bytes_per_transition(frame, k, action_dim, action_dtype == np.int64)
        print(f"  {name}: sac-runner {ours:,} B ({ours / floor:.3f}x one frame {one_frame:,} B + action + "
              f"reward); SB3 {sb3:,} B ({sb3 / ours:.1f}x), SB3 optimize_memory_usage {sb3_optimized:,} B "
              f"({sb3_optimized / ours:.1f}x) [{how}]")


def timing(capacity: int, calls: int, batch_size: int) -> None:
    frame, k, action_dim, action_dtype = CASES["DMC pixels 84x84x3, 3 frames"]
    rng = np.random.default_rng(0)
    buffer = frame_buffer(capacity, frame, k, action_dim, action_dtype)
    stack = lambda frames: np.concatenate(frames)  # noqa: E731
    episode = 250  # 1000 DMC steps at action repeat 4
    for _ in range(capacity // (episode + 1) + 1):  # every slot written
        frames = [rng.integers(0, 256, frame, dtype=np.uint8)] * k
        for t in range(episode):
            obs, frames = stack(frames), frames[1:] + [rng.integers(0, 256, frame, dtype=np.uint8)]
            buffer.add(obs, rng.uniform(-1, 1, action_dim), 0.0, stack(frames), False, t == episode - 1)

    # Full stacks per transition, as SB3 stores them, gathered the same way into reused memory.
    shape = (capacity, k * frame[0], *frame[1:])
    obs, next_obs = np.full(shape, 7, np.uint8), np.full(shape, 9, np.uint8)  # written: no lazy zero pages
    action, reward, done = np.zeros((capacity, action_dim), np.float32), np.zeros(capacity, np.float32), \
        np.zeros(capacity, np.float32)
    out = [np.empty((batch_size, *a.shape[1:]), a.dtype) for a in (obs, action, reward, next_obs, done)]

    def naive() -> None:
        index = rng.integers(0, capacity, batch_size)
        for array, into in zip((obs, action, reward, next_obs, done), out):
            np.take(array, index, axis=0, out=into, mode="clip")
        [torch.from_numpy(a) for a in out]

    def median_ms(sample) -> float:
        for _ in range(5):
            sample()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            sample()
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))

    batch = buffer.sample(batch_size)
    assert batch.obs.shape == (batch_size, k * frame[0], *frame[1:]) and batch.obs.dtype == torch.uint8
    ours, theirs = median_ms(lambda: buffer.sample(batch_size)), median_ms(naive)
    print(f"sample({batch_size}), DMC pixels, {capacity:,} transitions, median of {calls} calls on this CPU: "
          f"frame buffer {ours:.2f} ms, full stacks {theirs:.2f} ms ({ours / theirs:.2f}x); "
          f"the batch's obs and next_obs are {2 * batch.obs.numel() / 2 ** 20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(1)
    memory()
    timing(args.capacity, args.calls, args.batch_size)


if __name__ == "__main__":
    main()
