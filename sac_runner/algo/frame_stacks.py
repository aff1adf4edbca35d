"""Stacked image observations rebuilt from one stored frame per slot (the replay buffer's frame layout).

An image observation is frame_stack = k frames of C channels, oldest first, concatenated along the
channels: (k * C, H, W), as gymnasium's FrameStackObservation(padding_type="reset") followed by a
reshape makes it. The buffer stores each slot's newest frame only, (C, H, W), and flags the slot holding
an episode's first (reset) observation. The observation at slot j is then the frames at slots
j-k+1 .. j of its stream, where a position before the episode's first slot repeats that slot's frame:
FrameStackObservation's "reset" padding, which repeats the reset frame.

The arithmetic runs on NumPy arrays on the host and on torch tensors on the buffer's device copy.
"""

from __future__ import annotations

import numpy as np
import torch


def stack_slots(slot, episode_start, stream_capacity: int, frame_stack: int):
    """The slots of the frames stacked at each of `slot` (B,): (B, k), oldest first. `episode_start`
    flags the slots holding an episode's first observation; `slot` and it are both arrays or both tensors."""
    xp = torch if isinstance(slot, torch.Tensor) else np
    local = slot % stream_capacity
    first = slot - local  # the first slot of each one's stream
    newest_first = [slot]
    for _ in range(frame_stack - 1):
        # One slot back within the stream, or, from the episode's first slot, that slot again.
        local = xp.where(episode_start[first + local], local, (local - 1) % stream_capacity)
        newest_first.append(first + local)
    return xp.stack(newest_first[::-1], 1)


def stacked(frames, slots):
    """The observations made of frames[slots] for (B, k) slots: (B, k * C, H, W)."""
    batch, k = slots.shape
    return frames[slots.reshape(-1)].reshape(batch, k * frames.shape[1], *frames.shape[2:])
