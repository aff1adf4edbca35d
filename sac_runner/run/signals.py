"""Stop a run cleanly on a signal: checkpoint first, then exit (or hand over to a job scheduler)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)


class StopOnSignals:
    """SIGINT (Ctrl-C) and SIGTERM (a cluster preempting the job) ask the loop to checkpoint and stop.
    A second signal stops at once.

    SIGUSR1/SIGUSR2 are taken over only where a job scheduler's handler is installed (submitit's, which
    requeues a Slurm job before its time limit or on preemption): the loop checkpoints and stops first,
    then `hand_over` calls that handler, and the requeued job resumes from the checkpoint."""

    SCHEDULER_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._scheduler_handlers: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def signal_name(self) -> str | None:
        return None if self.signal_number is None else signal.Signals(self.signal_number).name

    def _handle(self, number, frame) -> None:
        if self.requested:
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signal_number = number
        log.warning("%s received: saving a checkpoint after this step", signal.Signals(number).name)

    @property
    def scheduler_takes_over(self) -> bool:
        return self.signal_number in self._scheduler_handlers

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
            for number in self.SCHEDULER_SIGNALS:
                if callable(handler := signal.getsignal(number)):
                    self._scheduler_handlers[number] = handler
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def hand_over(self) -> None:
        """Call the scheduler's handler for the signal that stopped the loop (submitit requeues and exits)."""
        if self.scheduler_takes_over:
            self._scheduler_handlers[self.signal_number](self.signal_number, None)

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
