"""buffer.device=cuda: the replay buffer's one-step data kept on the GPU too, and batches gathered there.

The host arrays stay the buffer's record: checkpoints, n-step returns and priorities read them. The
mirror is one (capacity, obs + action + reward + terminated) float32 tensor on the device; the slots
written since the last batch are copied over just before the next batch, in one transfer from pinned
memory. A batch then costs one small transfer of its drawn indices and one gather on the device: no
gather on the host, no copy of batch data, and nothing waits for the GPU.
"""

from __future__ import annotations

import numpy as np
import torch


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on `device`; to a GPU from pinned memory without waiting (the caching host allocator
    keeps the pinned block until the copy has finished)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class DeviceMirror:
    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device):
        self.obs_dim, self.action_dim, self.device = obs_dim, action_dim, device
        self.rows = torch.zeros((capacity, obs_dim + action_dim + 2), dtype=torch.float32, device=device)
        self.dirty: list[int] = []  # slots written on the host since the last copy

    @property
    def bytes(self) -> int:
        return self.rows.numel() * self.rows.element_size()

    def mark(self, *slots: int) -> None:
        self.dirty.extend(slots)

    def mark_all(self) -> None:
        self.dirty = list(range(self.rows.shape[0]))

    def copy_written(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, terminated: np.ndarray) -> None:
        """Copy the slots written since the last call from the host arrays (one transfer each way of indices
        and rows)."""
        if not self.dirty:
            return
        slots = np.unique(np.asarray(self.dirty, dtype=np.int64))
        self.dirty.clear()
        host = np.concatenate([obs[slots], action[slots].astype(np.float32, copy=False),
                               reward[slots, None], terminated[slots, None].astype(np.float32)], axis=1)
        self.rows[to_device(slots, self.device)] = to_device(host, self.device)

    def gather(self, index: np.ndarray, next_index: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(obs, action, reward, next_obs, terminated) of the transitions starting at `index` whose next
        observation is at `next_index`; a discrete action index comes back as a float."""
        rows = self.rows[to_device(np.concatenate([index, next_index]), self.device)]
        now, after = rows[:len(index)], rows[len(index):]
        o, a = self.obs_dim, self.obs_dim + self.action_dim
        return now[:, :o], now[:, o:a], now[:, a], after[:, :o], now[:, a + 1]
