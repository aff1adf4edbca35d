"""Preallocated circular replay buffer: uniform or proportional prioritized sampling, n-step returns.

Memory: each observation is stored once. Slot i holds (obs_i, action_i, reward_i, terminated_i,
episode_end_i), and the next observation of transition i is obs_{i+1}. When an episode ends (by
termination or truncation), the following slot holds its real final observation and is marked
as not starting a transition; the reset observation goes in the slot after. So a transition costs
obs + action + reward + 3 flag bytes, instead of two observations, at the price of one extra slot
per episode.

Image observations (frame_stack = k > 1): an observation is k frames of C channels, oldest first,
(k * C, H, W) uint8, as FrameStackObservation(padding_type="reset") makes it. Each slot stores only its
newest frame, (C, H, W), and a flag `episode_start` marks the slot of an episode's first (reset)
observation; a batch rebuilds each stack from the frames at slots j-k+1 .. j of its stream, repeating
the episode's first frame before it (frame_stacks.py). A frame is stored once, not 2k times.
Wrap-around: a transition is kept only while every frame of its stack is. Overwriting a slot retires
the transition there and those at the next k-1 slots whose stacks reach back to it (those before the
next episode start); `size` counts what can be sampled.

n-step returns (n_step > 1): transition i yields
    R = sum_{k<m} gamma^k r_{i+k},  next_obs = obs_{i+m},  terminated = terminated_{i+m-1},  discount = gamma^m
with m = n, or fewer where the episode ends (terminated: no bootstrap; truncated: bootstrap from the
final observation) or where the newest data ends. The powers gamma^0 .. gamma^n come from
`n_step_discounts`, computed once from agent.gamma when the run is built; the agent bootstraps
with the batch's `discount` in place of its gamma.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from sac_runner.algo.device_mirror import DeviceMirror, to_device
from sac_runner.algo.frame_stacks import stack_slots, stacked
from sac_runner.algo.sum_tree import SegmentTree
from sac_runner.config import BufferConfig


class Batch(NamedTuple):
    obs: torch.Tensor         # (B, obs_dim), or (B, k * C, H, W) uint8 stacked frames
    action: torch.Tensor      # (B, action_dim), in [-1, 1] (or a one-hot-free index for discrete actions)
    reward: torch.Tensor      # (B,) the environment's signal (summed and discounted over n steps)
    next_obs: torch.Tensor    # (B, obs_dim) or (B, k * C, H, W): the observation n steps later
    terminated: torch.Tensor  # (B,) 1.0 where the episode ended in a terminal state (no bootstrap)
    discount: torch.Tensor | None = None  # (B,) gamma^k for a k-step return; None means gamma (1-step)
    weights: torch.Tensor | None = None   # (B,) importance-sampling weights (prioritized replay)


def n_step_discounts(gamma: float, n_step: int) -> np.ndarray:
    """gamma^0, gamma^1, .. gamma^n: the weights of an n-step return and its bootstrap discounts."""
    return gamma ** np.arange(n_step + 1)


def slot_bytes(obs_dim: int, action_dim: int, action_dtype: np.dtype = np.float32,
               frame_shape: tuple[int, ...] | None = None, obs_dtype: np.dtype = np.float32) -> int:
    """Bytes stored per slot: one observation of obs_dim values (or, with `frame_shape`, one frame of
    stacked observations and its episode-start flag), one action, the float32 reward and three flags."""
    observation = int(np.prod(frame_shape)) if frame_shape is not None else obs_dim
    flags = 4 if frame_shape is not None else 3
    return np.dtype(obs_dtype).itemsize * observation + np.dtype(action_dtype).itemsize * action_dim + 4 + flags


def buffer_bytes(cfg: BufferConfig, obs_dim: int, action_dim: int, action_dtype: np.dtype = np.float32,
                 frame_shape: tuple[int, ...] | None = None, obs_dtype: np.dtype = np.float32) -> int:
    """Bytes a full buffer holds: its slots, plus the sum and min trees of prioritized replay."""
    tree = 2 * 2 * 8 * (1 << max(1, (cfg.capacity - 1).bit_length())) if cfg.type == "prioritized" else 0
    return cfg.capacity * slot_bytes(obs_dim, action_dim, action_dtype, frame_shape, obs_dtype) + tree


class ReplayBuffer:
    """Fixed number of slots; once full, the oldest slots are overwritten. Observations are float32
    vectors of obs_dim, or of `obs_shape` and `obs_dtype` (obs_dim None), stacked frame_stack frames deep
    along the first axis for images."""

    def __init__(self, cfg: BufferConfig, obs_dim: int | None, action_dim: int, device: torch.device,
                 seed: int = 0, action_dtype: np.dtype = np.float32, discounts: np.ndarray | None = None,
                 streams: int = 1, mirror_on_device: bool = False, obs_shape: tuple[int, ...] | None = None,
                 frame_stack: int = 1, obs_dtype: np.dtype = np.float32):
        self.cfg = cfg
        self.capacity = cfg.capacity
        # One stream of slots per environment (vectorized envs): a stream's next observation is its
        # next slot, as above. Stream s owns slots s * stream_capacity .. (s + 1) * stream_capacity - 1.
        if streams < 1 or cfg.capacity < 2 * streams:
            raise ValueError(f"a buffer of {cfg.capacity} slots cannot hold {streams} streams of 2 slots or more")
        self.streams = streams
        self.stream_capacity = cfg.capacity // streams
        self.n_step = cfg.n_step
        if self.n_step > 1 and (discounts is None or len(discounts) != self.n_step + 1):
            raise ValueError(f"n_step={self.n_step} needs discounts=n_step_discounts(gamma, {self.n_step})")
        self.discounts = discounts
        self.device = device
        self.prioritized = cfg.type == "prioritized"
        self.obs_shape = tuple(obs_shape) if obs_shape is not None else (obs_dim,)
        if None in self.obs_shape or (obs_dim is not None and self.obs_shape != (obs_dim,)):
            raise ValueError(f"obs_dim={obs_dim}, obs_shape={obs_shape}: give one of them (or both alike)")
        self.frame_stack = frame_stack
        if frame_stack > 1 and (self.obs_shape[0] % frame_stack or self.stream_capacity <= frame_stack):
            raise ValueError(f"frame_stack={frame_stack} needs observations of a multiple of {frame_stack} channels "
                             f"(got {self.obs_shape}) and more than {frame_stack} slots per stream")
        # Per slot: the observation, or for stacked frames its newest frame (C, H, W) only.
        slot_shape = (self.obs_shape[0] // frame_stack, *self.obs_shape[1:])
        c = self.stream_capacity * streams
        self.obs = np.zeros((c, *slot_shape), dtype=obs_dtype)
        self.action = np.zeros((c, action_dim), dtype=action_dtype)
        self.reward = np.zeros(c, dtype=np.float32)
        self.terminated = np.zeros(c, dtype=np.bool_)
        self.episode_end = np.zeros(c, dtype=np.bool_)  # terminated or truncated
        self.starts_transition = np.zeros(c, dtype=np.bool_)
        # Stacked frames: the slots holding an episode's first observation, where a stack stops reaching back.
        self.episode_start = np.zeros(c, dtype=np.bool_) if frame_stack > 1 else None
        self.at_reset = np.ones(streams, dtype=np.bool_)  # per stream: the next add is an episode's first
        # Per stream: the slot holding its newest observation (no action yet), and how many of its slots
        # have been written (uniform draws stay below it).
        self.head = np.arange(streams, dtype=np.int64) * self.stream_capacity
        self.slots_used = np.ones(streams, dtype=np.int64)
        self.size = 0  # number of transitions stored
        self.rng = np.random.default_rng(seed)
        self.beta = cfg.beta
        self.max_priority = 1.0
        self.tree = SegmentTree(c) if self.prioritized else None
        self._last_indices: np.ndarray | None = None
        self._staging: dict[int, tuple[list[np.ndarray], Batch]] = {}  # batch size -> reused batch memory
        # buffer.device=cuda: one-step batches gathered from a copy on the device (device_mirror.py).
        vector = self.episode_start is None and self.obs.ndim == 2 and self.obs.dtype == np.float32
        images = None if vector else (slot_shape, self.obs.dtype)  # kept apart from the float32 rows
        self.mirror = DeviceMirror(c, self.obs.shape[1], action_dim, device, images, frame_stack,
                                   self.stream_capacity) if mirror_on_device else None

    def __len__(self) -> int:
        return self.size

    def describe(self) -> str:
        """Its size in one line, for the run's log: slots, bytes per transition, and what a slot holds."""
        per_slot = self.bytes_per_transition
        total = per_slot * self.obs.shape[0] / 2**30
        holds = (f"one {'x'.join(map(str, self.obs.shape[1:]))} {self.obs.dtype} frame of a {self.frame_stack}-frame stack"
                 if self.frame_stack > 1 else f"one {self.obs.dtype} observation of {int(np.prod(self.obs.shape[1:]))}")
        return f"{self.capacity:_} transitions x {per_slot:_} bytes = {total:.2f} GiB (each: {holds}, action, reward)"

    @property
    def bytes_per_transition(self) -> int:
        if self.episode_start is not None:
            return slot_bytes(0, self.action.shape[1], self.action.dtype, self.obs.shape[1:], self.obs.dtype)
        return slot_bytes(int(np.prod(self.obs.shape[1:])), self.action.shape[1], self.action.dtype,
                          obs_dtype=self.obs.dtype)

    def _overwrite(self, slot: int) -> None:
        """Slot `slot` is about to hold new data: the transition there is gone, and with stacked frames so
        are those at the next k-1 slots whose stacks reach back to it (up to the next episode start)."""
        self._retire(slot)
        for _ in range(self.frame_stack - 1):
            slot = self._next_slot(slot)
            if self.episode_start[slot]:
                break
            self._retire(slot)

    def _retire(self, slot: int) -> None:
        if self.starts_transition[slot]:
            self.size -= 1
            self.starts_transition[slot] = False
            if self.tree is not None:
                self.tree.set(np.array([slot]), 0.0, np.inf)

    def _next_slot(self, slot):
        """The slot after `slot` in its stream (wrapping around within the stream); arrays or ints."""
        local = slot % self.stream_capacity
        return slot - local + (local + 1) % self.stream_capacity

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool, truncated: bool = False, stream: int = 0) -> None:
        i = int(self.head[stream])
        self.obs[i] = self._newest(obs)  # already there (it was the previous next_obs), except after a reset
        if self.episode_start is not None:
            self.episode_start[i] = self.at_reset[stream]
        self.at_reset[stream] = terminated or truncated
        self.action[i] = action
        self.reward[i] = reward
        self.terminated[i] = terminated
        self.episode_end[i] = terminated or truncated
        self.starts_transition[i] = True
        self.size += 1
        if self.tree is not None:
            self.tree.set(np.array([i]), self.max_priority ** self.cfg.alpha, self.max_priority ** self.cfg.alpha)
        j = self._next_slot(i)
        self._overwrite(j)
        self.obs[j] = self._newest(next_obs)
        if self.episode_start is not None:
            self.episode_start[j] = False
        if self.mirror is not None:
            self.mirror.mark(i, j)
        self.head[stream] = j
        if terminated or truncated:
            # Slot j keeps the final observation; the reset observation goes in the slot after.
            self.head[stream] = self._next_slot(j)
            self._overwrite(int(self.head[stream]))
        self.slots_used[stream] = min(self.stream_capacity,
                                      self.slots_used[stream] + (2 if terminated or truncated else 1))

    def _newest(self, obs: np.ndarray) -> np.ndarray:
        """What a slot stores of an observation: all of it, or the newest of its stacked frames."""
        return obs if self.episode_start is None else obs[-self.obs.shape[1]:]

    def end_episode(self, stream: int = 0) -> None:
        """Cut the current episode as a time limit would (its environment broke): the last transition
        keeps its next observation, n-step returns stop there, the next reset goes in the slot after."""
        self.at_reset[stream] = True
        head = int(self.head[stream])
        local = head % self.stream_capacity
        last = head - local + (local - 1) % self.stream_capacity
        if self.size == 0 or not self.starts_transition[last] or self.episode_end[last]:
            return  # no transition of this episode is stored
        self.episode_end[last] = True
        self.head[stream] = self._next_slot(head)
        self._overwrite(int(self.head[stream]))
        self.slots_used[stream] = min(self.stream_capacity, self.slots_used[stream] + 1)

    # ---- sampling --------------------------------------------------------------------------------
    def set_progress(self, progress: float) -> None:
        """Anneal the importance-sampling exponent from beta to 1 over training (Schaul et al., 2016)."""
        self.beta = self.cfg.beta + (1.0 - self.cfg.beta) * min(max(progress, 0.0), 1.0)

    def _sample_indices(self, batch_size: int) -> np.ndarray:
        if self.tree is not None:  # stratified: one draw in each of batch_size equal slices of the mass
            edges = np.arange(batch_size) * (self.tree.total / batch_size)
            mass = edges + self.rng.random(batch_size) * (self.tree.total / batch_size)
            return self.tree.find_prefix(np.minimum(mass, np.nextafter(self.tree.total, 0)))
        return self._uniform_indices(batch_size)

    def _uniform_indices(self, batch_size: int) -> np.ndarray:
        """Uniform over transitions: draw slots, redraw the few that start no transition."""
        index, ok = self._draw_slots(batch_size)
        while not ok.all():
            index[~ok], ok[~ok] = self._draw_slots(int((~ok).sum()))
        return index

    def inspection_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Transitions drawn uniformly with `rng`, for measurements: the buffer's own random stream (what
        training samples next) and the last sampled indices (the priorities' update) stay as they were."""
        own, self.rng = self.rng, rng
        try:
            return self.gather(self._uniform_indices(batch_size))
        finally:
            self.rng = own

    def _draw_slots(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n slots drawn uniformly from the first slots_used.max() of every stream, and whether each
        starts a stored transition (with one stream: a draw below slots_used)."""
        if self.streams == 1:  # the same draws, without the stream arithmetic (~10 us per batch)
            slot = self.rng.integers(0, int(self.slots_used[0]), n)
            return slot, self.starts_transition[slot]
        most = int(self.slots_used.max())
        stream, local = np.divmod(self.rng.integers(0, self.streams * most, n), most)
        slot = stream * self.stream_capacity + local
        return slot, (local < self.slots_used[stream]) & self.starts_transition[slot]

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        index = self._sample_indices(batch_size)
        self._last_indices = index
        if self.n_step > 1:
            batch = self.gather(index)
        elif self.mirror is not None:
            self.mirror.copy_written(self.obs, self.action, self.reward, self.terminated, self.episode_start)
            batch = Batch(*self.mirror.gather(index, self._next_slot(index)))
        else:
            batch = self._gather_into_staging(index)
        if self.tree is not None:
            probability = self.tree.sum[index + self.tree.leaves] / self.tree.total
            min_probability = self.tree.min[1] / self.tree.total
            # w_i = (N P(i))^-beta / max_j w_j, and max_j w_j belongs to the smallest priority.
            weights = (probability / min_probability) ** (-self.beta)
            batch = batch._replace(weights=self._to_device(weights.astype(np.float32)))
        return batch

    def update_priorities(self, td_error: torch.Tensor) -> None:
        """Priorities of the last sampled transitions: (|TD error| + eps)^alpha."""
        if self.tree is None or self._last_indices is None:
            return
        priority = td_error.detach().cpu().numpy().astype(np.float64) + self.cfg.priority_eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        index, keep = np.unique(self._last_indices, return_index=True)
        still_stored = self.starts_transition[index]  # a slot may have been overwritten since
        scaled = priority[keep][still_stored] ** self.cfg.alpha
        self.tree.set(index[still_stored], scaled, scaled)

    def gather(self, index: np.ndarray) -> Batch:
        """The transitions starting at these slots, with n-step returns where n_step > 1."""
        if self.n_step == 1:
            next_index = self._next_slot(index)
            return Batch(*(self._to_device(a) for a in (
                self._observations(index), self.action[index], self.reward[index], self._observations(next_index),
                self.terminated[index].astype(np.float32))))
        c, k = self.stream_capacity, np.arange(self.n_step)
        local = index % c                                              # within the stream
        window = (index - local)[:, None] + (local[:, None] + k[None, :]) % c    # (B, n) slots i .. i+n-1
        head = self.head[index // c] % c                               # the stream's newest observation
        available = (head[:, None] - local[:, None]) % c > k[None, :]  # stays before it
        ended_before = np.cumsum(self.episode_end[window], axis=1) - self.episode_end[window] > 0
        alive = available & ~ended_before                              # step k belongs to the return
        m = alive.sum(axis=1)                                          # steps in the return, >= 1
        reward = (self.reward[window] * alive * self.discounts[k][None, :]).sum(axis=1)
        last = window[np.arange(len(index)), m - 1]
        return Batch(*(self._to_device(a) for a in (
            self._observations(index), self.action[index], reward.astype(np.float32),
            self._observations(self._next_slot(last)),
            self.terminated[last].astype(np.float32), self.discounts[m].astype(np.float32))))

    def _gather_into_staging(self, index: np.ndarray) -> Batch:
        """One-step transitions gathered straight into memory allocated once per batch size (no
        allocation per update). The returned tensors are overwritten by the next `sample`."""
        if len(index) not in self._staging:
            host = [np.empty((len(index), *shape), dtype=dtype) for shape, dtype in (
                (self.obs_shape, self.obs.dtype), (self.action.shape[1:], self.action.dtype), ((), np.float32),
                (self.obs_shape, self.obs.dtype), ((), np.float32))]
            tensors = [torch.from_numpy(h) for h in host]
            if self.device.type != "cpu":  # device tensors, refilled from the host staging
                tensors = [t.to(self.device) for t in tensors]
            self._staging[len(index)] = (host, Batch(*tensors))
        host, batch = self._staging[len(index)]
        obs, action, reward, next_obs, terminated = host
        self._observations(index, out=obs)
        np.take(self.action, index, axis=0, out=action)
        np.take(self.reward, index, out=reward)
        self._observations(self._next_slot(index), out=next_obs)
        np.copyto(terminated, self.terminated[index])
        if self.device.type != "cpu":  # a blocking copy: the host staging is refilled right after
            for device_tensor, staged in zip(batch, host):
                device_tensor.copy_(torch.from_numpy(staged))
        return batch

    def _observations(self, slot: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The observations at these slots: stored whole, or stacked from their frames (frame_stacks.py)."""
        if self.episode_start is None:
            return np.take(self.obs, slot, axis=0, out=out) if out is not None else self.obs[slot]
        slots = stack_slots(slot, self.episode_start, self.stream_capacity, self.frame_stack)
        if out is None:
            return stacked(self.obs, slots)
        # mode="clip" (the slots are valid): the default "raise" fills `out` through a temporary copy,
        # which makes a batch of frames 3x slower.
        return np.take(self.obs, slots.reshape(-1), axis=0, out=out.reshape(-1, *self.obs.shape[1:]), mode="clip")

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return to_device(array, self.device)

    # ---- checkpointing: the used slots as tensors sharing the arrays' memory ------------------------
    ARRAYS = ("obs", "action", "reward", "terminated", "episode_end", "starts_transition")

    @property
    def _arrays(self) -> tuple[str, ...]:
        """The arrays a checkpoint holds: stacked frames add their episode-start flags."""
        return self.ARRAYS + (("episode_start",) if self.episode_start is not None else ())

    def _written(self) -> list[slice]:
        """Each stream's slots written so far (slots beyond were never written)."""
        c = self.stream_capacity
        return [slice(s * c, s * c + int(used)) for s, used in enumerate(self.slots_used)]

    def state_dict(self) -> dict:
        written = self._written()
        if self.streams == 1:  # the layout of one-stream buffers since version 2
            state = {name: torch.from_numpy(getattr(self, name)[written[0]]) for name in self._arrays}
            head, slots_used = int(self.head[0]), int(self.slots_used[0])
        else:
            state = {name: torch.from_numpy(np.concatenate([getattr(self, name)[w] for w in written]))
                     for name in self._arrays}
            head, slots_used = self.head.tolist(), self.slots_used.tolist()
        state.update(capacity=self.capacity, streams=self.streams, head=head, size=self.size,
                     slots_used=slots_used, rng=self.rng.bit_generator.state, beta=self.beta,
                     max_priority=self.max_priority)
        if self.episode_start is not None:
            state.update(at_reset=self.at_reset.tolist())
        if self.tree is not None:
            state.update(tree_sum=torch.from_numpy(self.tree.sum), tree_min=torch.from_numpy(self.tree.min))
        return state

    def load_state_dict(self, state: dict) -> None:
        streams = state.get("streams", 1)
        if state["capacity"] != self.capacity or streams != self.streams or state["obs"].shape[1:] != self.obs.shape[1:] \
                or state["action"].shape[1:] != self.action.shape[1:]:
            raise ValueError(f"saved buffer (capacity {state['capacity']}, {streams} streams, observation "
                             f"{tuple(state['obs'].shape[1:])}, action {tuple(state['action'].shape[1:])}) does not "
                             f"fit this one (capacity {self.capacity}, {self.streams} streams, {self.obs.shape[1:]}, "
                             f"{self.action.shape[1:]})")
        self.head = np.atleast_1d(np.asarray(state["head"], dtype=np.int64)).copy()
        self.slots_used = np.atleast_1d(np.asarray(state["slots_used"], dtype=np.int64)).copy()
        start = 0
        for written in self._written():
            n = written.stop - written.start
            for name in self._arrays:
                getattr(self, name)[written] = state[name][start:start + n].numpy()
            start += n
        self.size = state["size"]
        self.rng.bit_generator.state = state["rng"]
        self.beta, self.max_priority = state["beta"], state["max_priority"]
        if self.episode_start is not None:
            self.at_reset[:] = state["at_reset"]
        if self.tree is not None:
            self.tree.sum[:] = state["tree_sum"].numpy()
            self.tree.min[:] = state["tree_min"].numpy()
        if self.mirror is not None:
            self.mirror.mark_all()

    def transitions(self) -> Batch:
        """Every stored transition, each stream oldest first (for inspection and tests; not for training)."""
        c = self.stream_capacity
        order = np.concatenate([s * c + (np.arange(c) + int(self.head[s]) % c + 1) % c for s in range(self.streams)])
        return self.gather(order[self.starts_transition[order]])
