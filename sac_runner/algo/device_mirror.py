"""buffer.device=cuda: the replay buffer's one-step data kept on the GPU too, and batches gathered there.

The host arrays stay the buffer's record: checkpoints, n-step returns and priorities read them. The
mirror is one (capacity, obs + action + reward + terminated) float32 tensor on the device; the slots
written since the last batch are copied over just before the next batch, in one transfer from pinned
memory. A batch then costs one small transfer of its drawn indices and one gather on the device: no
gather on the host, no copy of batch data, and nothing waits for the GPU.

Image observations keep their own dtype (uint8: a quarter of float32) in a tensor of their own, one
frame per slot as on the host, with the episode-start flags; the stacks are rebuilt on the device
(frame_stacks.py), so a batch of stacked frames never crosses from the host.
"""

from __future__ import annotations

import numpy as np
import torch

from sac_runner.algo.frame_stacks import stack_slots, stacked


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on `device`; to a GPU from pinned memory without waiting (the caching host allocator
    keeps the pinned block until the copy has finished)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class DeviceMirror:
    """`images`: the stored observation's shape and dtype per slot when it is not a float32 vector (kept
    in a tensor of its own); `frame_stack` > 1 with `stream_capacity`: stacks rebuilt from frames."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device,
                 images: tuple[tuple[int, ...], np.dtype] | None = None, frame_stack: int = 1,
                 stream_capacity: int | None = None):
        self.obs_dim = 0 if images is not None else obs_dim  # the observation's columns in `rows`
        self.action_dim, self.device = action_dim, device
        self.rows = torch.zeros((capacity, self.obs_dim + action_dim + 2), dtype=torch.float32, device=device)
        self.images = None
        if images is not None:
            shape, dtype = images
            dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype  # NumPy's dtype named as torch's
            self.images = torch.zeros((capacity, *shape), dtype=dtype, device=device)
        self.frame_stack, self.stream_capacity = frame_stack, stream_capacity
        self.episode_start = torch.zeros(capacity, dtype=torch.bool, device=device) if frame_stack > 1 else None
        self.dirty: list[int] = []  # slots written on the host since the last copy

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.rows, self.images, self.episode_start) if t is not None)

    def mark(self, *slots: int) -> None:
        self.dirty.extend(slots)

    def mark_all(self) -> None:
        self.dirty = list(range(self.rows.shape[0]))

    def copy_written(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, terminated: np.ndarray,
                     episode_start: np.ndarray | None = None) -> None:
        """Copy the slots written since the last call from the host arrays (one transfer each way of indices
        and rows)."""
        if not self.dirty:
            return
        slots = np.unique(np.asarray(self.dirty, dtype=np.int64))
        self.dirty.clear()
        columns = [action[slots].astype(np.float32, copy=False), reward[slots, None],
                   terminated[slots, None].astype(np.float32)]
        on_device = to_device(slots, self.device)
        if self.images is None:
            columns.insert(0, obs[slots])
        else:
            self.images[on_device] = to_device(obs[slots], self.device)
        if self.episode_start is not None:
            self.episode_start[on_device] = to_device(episode_start[slots], self.device)
        self.rows[on_device] = to_device(np.concatenate(columns, axis=1), self.device)

    def gather(self, index: np.ndarray, next_index: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(obs, action, reward, next_obs, terminated) of the transitions starting at `index` whose next
        observation is at `next_index`; a discrete action index comes back as a float."""
        slots = to_device(np.concatenate([index, next_index]), self.device)
        rows = self.rows[slots]
        now, after = rows[:len(index)], rows[len(index):]
        o, a = self.obs_dim, self.obs_dim + self.action_dim
        if self.images is None:
            obs, next_obs = now[:, :o], after[:, :o]
        else:
            observations = self._observations(slots)
            obs, next_obs = observations[:len(index)], observations[len(index):]
        return obs, now[:, o:a], now[:, a], next_obs, now[:, a + 1]

    def _observations(self, slots: torch.Tensor) -> torch.Tensor:
        if self.episode_start is None:
            return self.images[slots]
        return stacked(self.images, stack_slots(slots, self.episode_start, self.stream_capacity, self.frame_stack))
