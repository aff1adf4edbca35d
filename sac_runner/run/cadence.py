"""When the training loop does what: small predicates over environment steps, and its throughput clock."""

from __future__ import annotations

import time

from sac_runner.config import RunConfig


def crossed(interval: int, before: int, step: int) -> bool:
    """A multiple of `interval` in (before, step]: with one environment (step = before + 1), `step` is
    one; a vector step of num_envs transitions may cross it anywhere."""
    return before // interval < step // interval


class Cadence:
    """When the loop does what, counted in environment transitions (schedule.*, or its epochs). The
    loop advances from `before` to `step` transitions at a time: 1, or env.num_envs."""

    def __init__(self, run: RunConfig):
        self.schedule, self.lr_decay_ref = run.schedule, run.agent.lr_decay_ref
        self.total_steps = run.schedule.steps
        # Environment steps per transition (env.action_repeat): the schedule counts environment steps
        # (frames, as the pixel papers do), the update-to-data ratio counts transitions (agent steps).
        self.repeat = run.env.env_steps_per_agent_step

    def acts_randomly(self, step: int) -> bool:
        return step <= self.schedule.start_steps

    def update_events(self, before: int, step: int) -> int:
        """Updates due in environment steps (before, step]: the multiples of update_every transitions from
        update_after environment steps on (each is schedule.gradient_steps gradient steps), so the
        update-to-data ratio holds for any num_envs and action repeat."""
        k = self.repeat
        before, step = before // k, step // k  # in transitions
        first = max(before + 1, -(-self.schedule.update_after // k))
        every = self.schedule.update_every
        return max(0, step // every - (first - 1) // every) if first <= step else 0

    def logs(self, before: int, step: int) -> bool:
        return crossed(self.schedule.log_every, before, step)

    def evaluates(self, before: int, step: int) -> bool:
        return crossed(self.schedule.eval_interval, before, step) or self.is_last(step)

    def checkpoints(self, before: int, step: int) -> bool:
        return crossed(self.schedule.checkpoint_interval, before, step) or self.is_last(step)

    def refreshes_progress(self, before: int, step: int) -> bool:
        return crossed(100, before, step)

    def is_last(self, step: int) -> bool:
        """The run ends at total_steps (with num_envs environments: the first multiple of num_envs at or
        after it)."""
        return step >= self.total_steps

    def fraction_done(self, step: int) -> float:
        """Training done before `step` (prioritized replay's beta annealing)."""
        return (step - 1) / self.total_steps

    def lr_progress(self, step: int) -> float:
        """Training done before `step` in steps, or in whole epochs (agent.lr_decay_ref=epoch)."""
        s = self.schedule
        if self.lr_decay_ref == "epoch":
            return ((step - 1) // s.steps_per_epoch) / s.num_epochs
        return (step - 1) / s.steps


class Throughput:
    """Environment steps per second since the last log line, and the run's training time: this process's
    plus `before`, the seconds its earlier segments trained (a resumed run)."""

    def __init__(self, before: float = 0.0) -> None:
        self.started = self.window_start = time.perf_counter()
        self.before = before
        self.window_steps = 0

    def tick(self, transitions: int = 1) -> None:
        self.window_steps += transitions

    def window(self) -> tuple[float, float]:
        """(steps/s in the window now closed, the run's training seconds)."""
        now = time.perf_counter()
        sps = self.window_steps / (now - self.window_start)
        self.window_start, self.window_steps = now, 0
        return sps, self.before + now - self.started

    def elapsed(self) -> float:
        """The run's training seconds, earlier segments included."""
        return self.before + self.segment()

    def segment(self) -> float:
        """Seconds this process has trained."""
        return time.perf_counter() - self.started
