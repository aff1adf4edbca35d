"""Stop a run cleanly on a signal: checkpoint first, then exit (or hand over to a job scheduler).

A sweep on a parallel launcher (joblib) runs its jobs in worker processes; Ctrl-C reaches the launcher
and every worker. `LauncherWaitsForJobs` keeps the launcher waiting while each running job saves its
checkpoint (joblib would otherwise kill the workers at once), and a worker that was told to stop
starts none of the jobs still queued for it (`stop_received`)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A signal repeated within this many seconds is the same request delivered twice (Ctrl-C reaches a
# sweep's worker from the terminal and again from its launcher), not a second request to stop at once.
SAME_REQUEST_S = 1.0

_received: int | None = None  # the first stop signal this process received


def stop_received() -> int | None:
    """The stop signal this process received (a sweep's worker then starts no further job), or None."""
    return _received


def _record(number: int) -> None:
    global _received
    if _received is None:
        _received = number


def record_stop_signals() -> None:
    """In a sweep's worker process, between its jobs: a stop signal is recorded, not raised (an idle
    worker raising KeyboardInterrupt would break the pool), and the jobs queued after it do not start."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in STOP_SIGNALS:
        signal.signal(number, lambda number, frame: _record(number))


class StopOnSignals:
    """SIGINT (Ctrl-C) and SIGTERM (a cluster preempting the job) ask the loop to checkpoint and stop.
    A second signal stops at once (the same signal again within SAME_REQUEST_S is the first one's copy).

    SIGUSR1/SIGUSR2 are taken over only where a job scheduler's handler is installed (submitit's, which
    requeues a Slurm job before its time limit or on preemption): the loop checkpoints and stops first,
    then `hand_over` calls that handler, and the requeued job resumes from the checkpoint."""

    SCHEDULER_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._received_at = 0.0
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
            if number == self.signal_number and time.monotonic() - self._received_at < SAME_REQUEST_S:
                return
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signal_number, self._received_at = number, time.monotonic()
        _record(number)
        log.warning("%s received: saving a checkpoint after this step", signal.Signals(number).name)

    @property
    def scheduler_takes_over(self) -> bool:
        return self.signal_number in self._scheduler_handlers

    def __enter__(self) -> "StopOnSignals":
        if _received is not None:  # arrived while a sweep's job was being set up: stop at the first step
            self.signal_number, self._received_at = _received, time.monotonic()
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
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


class LauncherWaitsForJobs:
    """The launcher process of a parallel sweep, from the first SIGINT or SIGTERM on: passes the signal on
    to its workers (Ctrl-C has reached them already; a signal sent to the launcher alone has not) and
    waits while their running jobs save their checkpoints and stop. A second signal stops at once."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str | None:
        return None if self.signal_number is None else signal.Signals(self.signal_number).name

    def _handle(self, number, frame) -> None:
        if self.signal_number is not None:
            self.restore()
            raise KeyboardInterrupt
        self.signal_number = number
        log.warning("%s received: the running jobs save their checkpoints and stop, the jobs not started yet do "
                    "not start; waiting for them (a second %s stops at once)", self.signal_name, self.signal_name)
        for worker in multiprocessing.active_children():
            try:
                os.kill(worker.pid, number)
            except (ProcessLookupError, TypeError):  # ended meanwhile, or not started (no pid)
                pass

    def install(self) -> "LauncherWaitsForJobs":
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
