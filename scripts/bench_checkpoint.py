"""Time writing and reading a checkpoint whose replay buffer holds 1M HalfCheetah-v5 transitions.

    python scripts/bench_checkpoint.py [--transitions 1000000] [--dir /tmp/sac-bench-ckpt]

The buffer is filled with random data of HalfCheetah's shapes (17-D observations, 6-D actions,
1000-step episodes) and saved the way sac-train saves it: tensors sharing the arrays' memory,
written by torch.save (no pickle of the data), fsynced and renamed into place.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sac_runner.algo.replay_buffer import ReplayBuffer
from sac_runner.config import BufferConfig
from sac_runner.run.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sac_runner.run.envs import Spaces
from sac_runner.run.loop_state import LoopState
from sac_runner.run.run_dir import RunDir


def filled_buffer(transitions: int, obs_dim: int = 17, action_dim: int = 6, episode: int = 1000) -> ReplayBuffer:
    buffer = ReplayBuffer(BufferConfig(capacity=transitions), obs_dim, action_dim, torch.device("cpu"))
    rng = np.random.default_rng(0)
    buffer.obs[:] = rng.standard_normal(buffer.obs.shape, dtype=np.float32)
    buffer.action[:] = rng.uniform(-1, 1, buffer.action.shape).astype(np.float32)
    buffer.reward[:] = rng.standard_normal(transitions, dtype=np.float32)
    buffer.episode_end[episode - 1::episode + 1] = True
    buffer.starts_transition[:] = True
    buffer.starts_transition[episode::episode + 1] = False  # the final-observation slot of each episode
    buffer.size = int(buffer.starts_transition.sum())
    buffer.slots_used[:], buffer.head[:] = transitions, 0  # one stream, every slot written
    return buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    run_dir = args.dir or Path(tempfile.mkdtemp(prefix="sac-bench-ckpt-"))
    buffer = filled_buffer(args.transitions)

    def checkpoint(step: int) -> Checkpoint:  # an agent of about the default run's size
        return Checkpoint(config={}, spaces=Spaces(17, 6, False), agent={"weights": torch.zeros(200_000)},
                          loop=LoopState(step=step), health=None, episodes={"episodes": []},
                          obs=np.zeros((1, 17), np.float32), rng={}, wandb_run_id=None, step=step)

    writes, reads = [], []
    for step in (1, 2, 3):
        start = time.perf_counter()
        path = save_checkpoint(RunDir(run_dir), checkpoint(step), buffer.state_dict(), keep_last=1)
        writes.append(time.perf_counter() - start)
        start = time.perf_counter()
        state = load_checkpoint(path).load_buffer()
        reads.append(time.perf_counter() - start)
        assert state["size"] == buffer.size
    size = RunDir.buffer_file_of(path).stat().st_size / 2**20
    print(f"buffer: {buffer.size:,} transitions, {buffer.bytes_per_transition} B each, file {size:.0f} MiB")
    print(f"write (torch.save + fsync + rename), median of 3: {np.median(writes):.2f} s "
          f"({size / np.median(writes):.0f} MiB/s)")
    print(f"read (torch.load weights_only), median of 3:     {np.median(reads):.2f} s")
    if args.dir is None:
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    main()
