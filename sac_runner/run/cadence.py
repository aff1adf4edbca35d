"""When the training loop does what: small predicates over environment steps, and its throughput clock."""

from __future__ import annotations

import time

from sac_runner.config import RunConfig


class Cadence:
    """When the loop does what, in environment steps (schedule.*, or its epochs)."""

    def __init__(self, run: RunConfig):
        self.schedule, self.lr_decay_ref = run.schedule, run.agent.lr_decay_ref
        self.total_steps = run.schedule.steps

    def acts_randomly(self, step: int) -> bool:
        return step <= self.schedule.start_steps

    def updates(self, step: int) -> bool:
        return step >= self.schedule.update_after and step % self.schedule.update_every == 0

    def logs(self, step: int) -> bool:
        return step % self.schedule.log_every == 0

    def evaluates(self, step: int) -> bool:
        return step % self.schedule.eval_interval == 0 or self.is_last(step)

    def checkpoints(self, step: int) -> bool:
        return step % self.schedule.checkpoint_interval == 0 or self.is_last(step)

    def is_last(self, step: int) -> bool:
        return step == self.total_steps

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
    """Environment steps per second since the last log line, and time since the start."""

    def __init__(self) -> None:
        self.started = self.window_start = time.perf_counter()
        self.window_steps = 0

    def tick(self) -> None:
        self.window_steps += 1

    def window(self) -> tuple[float, float]:
        """(steps/s in the window now closed, seconds since the start)."""
        now = time.perf_counter()
        sps = self.window_steps / (now - self.window_start)
        self.window_start, self.window_steps = now, 0
        return sps, now - self.started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
