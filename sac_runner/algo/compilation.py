"""How the update's pieces and the policy run: agent.compile.

    off         eager PyTorch: the reference every other mode is tested against.
    compile     torch.compile (TorchInductor) of a functional update: each optimizer step a function of
                tensors (functional_step.py: torch.func gradients, Adam in place), so that a piece of
                the update is one program with no backward pass between graphs. The first calls
                compile (tens of seconds cold, a few with Inductor's on-disk cache; in the log and
                time/compile_s); the result is the same math within float rounding.
    cudagraphs  compiled, then captured as CUDA graphs and replayed: one launch replaces the hundreds
                of kernel launches of a gradient step, which bound a small network's update on a GPU.
                Needs a CUDA device.
    auto        the fastest mode that a probe in a child process runs without error, else off
                (run/compile_probe.py chooses before the agent is built): on a CUDA device cudagraphs,
                then compile; on the CPU compile where it was measured to win (MLP agents with enough
                gradient steps ahead to win back the compile time, not DroQ), else off. An agent built
                directly with auto is off on the CPU (it does not know the run's length).

Compiled kernels are kept in Inductor's on-disk cache: TORCHINDUCTOR_CACHE_DIR if set, else the
user's cache directory (~/.cache/sac-runner/torchinductor, not /tmp, so that the runs of a sweep on a
cluster's shared home and a resumed run on another node find them).

A CUDA graph replays fixed memory: its inputs are copied into tensors captured once, its outputs are
the same tensors every replay (read them before the next call), and the optimizers it steps must keep
their state and learning rate in device tensors (`adam(..., graph_safe=True)`). Replacing a module's
or optimizer's tensors (loading a checkpoint) makes the captured graphs stale: call `reset()`.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils import _pytree as pytree

from sac_runner.config import COMPILE_MODES
from sac_runner.errors import RunFailure

log = logging.getLogger(__name__)


class _HideProfilerNotes(logging.Filter):
    """TorchDynamo warns, once per process, that it skips the profiler marks inside optimizer.step; a
    note about its internals, not about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be ignored" not in record.getMessage()


for _name in ("torch._dynamo.variables.ctx_manager", "torch._dynamo.variables.torch"):
    logging.getLogger(_name).addFilter(_HideProfilerNotes())

WARMUP_CALLS = 3  # eager-compiled calls on a side stream before capture (optimizer state, cuBLAS workspaces)


class CaptureFailed(RunFailure):
    """CUDA refused to capture a piece as a graph. The process cannot go on with CUDA graphs or without
    them: a failed capture leaves PyTorch's CUDA random number generator in capture mode."""


def resolve_compile_mode(mode: str, device: torch.device) -> str:
    """auto -> cudagraphs on CUDA, off elsewhere (a run chooses before: run/compile_probe.py); cudagraphs
    anywhere but CUDA is a config error upstream."""
    if mode == "auto":
        return "cudagraphs" if device.type == "cuda" else "off"
    return mode


def keep_compiled_kernels() -> str:
    """Point Inductor's on-disk cache at the user's cache directory unless TORCHINDUCTOR_CACHE_DIR names
    another (set before compiling, so the probe's process and Inductor's compile workers inherit it).
    Importing torch._inductor sets the variable to PyTorch's default under /tmp itself: that value
    counts as unset."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        return chosen
    ours = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sac-runner" / "torchinductor"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(ours)
    return str(ours)


def start_compiling_afresh() -> None:
    """TorchDynamo keeps compiled code per Python function and guards it on the objects it read (this
    agent's optimizers), so each new agent adds an entry; past its recompile_limit (8) agents in one
    process (a sweep's jobs, a test session) it would silently run eagerly. A new compiled agent
    therefore clears that cache: agents built before it recompile if they are used again."""
    torch._dynamo.reset()


class Accelerated:
    """`fn` run as agent.compile says, remembering the time its first calls spent compiling (and capturing)."""

    def __init__(self, fn: Callable, mode: str, name: str, device: torch.device):
        self.mode, self.name = mode, name
        self.compile_seconds = 0.0  # the first calls of each input signature: compiling (and capturing)
        self._settled: set[tuple] = set()
        if mode not in ("off", "compile", "cudagraphs"):
            raise ValueError(f"unknown compile mode {mode!r}; one of {COMPILE_MODES}")
        # On a CPU the noise comes from PyTorch's generator, as in eager mode (fallback_random): Inductor's
        # own generated randn kernel made the compiled update 7-12% slower there (docs/benchmarks.md), and
        # compiled and eager runs then draw the same numbers. On a GPU Inductor's generator is fused and fast.
        options = {"fallback_random": True} if torch.device(device).type == "cpu" else None
        self._fn = fn if mode == "off" else torch.compile(fn, options=options)
        self._graphs = CudaGraphs(self._fn, name) if mode == "cudagraphs" else None

    def __call__(self, *args) -> Any:
        if self.mode == "off":
            return self._fn(*args)
        key = _signature(args)  # once per call: the graphs are looked up by it too
        if key in self._settled:
            return self._run(key, args)
        start = time.perf_counter()
        out = self._run(key, args)
        self.compile_seconds += time.perf_counter() - start
        if self._graphs is None or self._graphs.captured(key):
            self._settled.add(key)
            log.info("agent.compile=%s: %s ready for inputs %s (%.1f s compiling so far)", self.mode, self.name,
                     _describe(key), self.compile_seconds)
        return out

    def _run(self, key: tuple, args: tuple) -> Any:
        return self._fn(*args) if self._graphs is None else self._graphs.run(key, args)

    def reset(self) -> None:
        """Forget captured CUDA graphs (after tensors they read were replaced); compiled code is kept."""
        if self._graphs is not None:
            self._graphs.reset()
            self._settled.clear()


class CudaGraphs:
    """Replays `fn` as a CUDA graph, one per input signature (shapes, dtypes, which arguments are None
    and the non-tensor arguments). The first WARMUP_CALLS calls of a signature run normally on a side
    stream; the next one captures on that same stream; later ones copy their inputs in and replay.

    One stream for warm-ups and capture: autograd's gradient-accumulation node of a parameter can
    outlive a call and keeps the stream it first ran on; had the warm-up run on another stream than
    the capture, the captured backward would wait on that uncaptured stream and CUDA would refuse the
    capture (seen on an H200 with torch 2.11). Where PyTorch offers it, such a stale stream is also
    redirected to the capturing one during the capture (`set_override_stale_capture_stream`)."""

    def __init__(self, fn: Callable, name: str = "function"):
        self.fn, self.name = fn, name
        self.graphs: dict[tuple, _CapturedCall] = {}
        self.warmups: dict[tuple, int] = {}

    def captured(self, key: tuple) -> bool:
        return key in self.graphs

    def reset(self) -> None:
        self.graphs.clear()
        self.warmups.clear()

    def run(self, key: tuple, args: tuple) -> Any:
        """Call `fn(*args)`, `key` being the arguments' signature (`_signature(args)`)."""
        if key in self.graphs:
            return self.graphs[key].replay(args)
        done = self.warmups.get(key, 0)
        if done < WARMUP_CALLS:
            self.warmups[key] = done + 1
            side = self.stream
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # contiguous, as the captured inputs will be: compiled for those
                out = self.fn(*(_contiguous_copy(a) for a in args))
            torch.cuda.current_stream().wait_stream(side)
            return out
        try:
            with _stale_streams_follow_the_capture():
                self.graphs[key] = captured = _CapturedCall(self.fn, args, self.stream)
        except RuntimeError as error:  # torch.AcceleratorError is one
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CaptureFailed(f"agent.compile=cudagraphs: CUDA refused to capture the {self.name} as a graph "
                                f"({reason}); a failed capture leaves this process's CUDA random number generator "
                                "unusable, so the run stops; run it with agent.compile=compile (compiled, no CUDA "
                                "graphs) or agent.compile=off") from error
        return captured.replay(args)

    @cached_property
    def stream(self) -> torch.cuda.Stream:
        """The side stream of the warm-ups and the capture, made at the first call (on a CUDA machine only)."""
        return torch.cuda.Stream()


@contextmanager
def _stale_streams_follow_the_capture():
    """During a capture, autograd redirects a node's stale non-capturing stream to the capturing one
    (PyTorch 2.13 has the switch; without it, nothing changes)."""
    switch = getattr(torch.autograd.graph, "set_override_stale_capture_stream", None)
    if switch is None:
        yield
        return
    before = bool(getattr(torch._C, "_override_stale_capture_stream", lambda: False)())
    switch(True)
    try:
        yield
    finally:
        switch(before)


class _CapturedCall:
    def __init__(self, fn: Callable, args: tuple, stream: torch.cuda.Stream):
        self.inputs = [_contiguous_copy(a) for a in args]
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):
            out = fn(*self.inputs)
        self.outputs, self.spec = pytree.tree_flatten(out)

    def replay(self, args: tuple) -> Any:
        for static, value in zip(self.inputs, args):
            if isinstance(static, torch.Tensor):
                static.copy_(value, non_blocking=True)
        self.graph.replay()
        return pytree.tree_unflatten(self.outputs, self.spec)  # new containers, the same static tensors


def _describe(key: tuple) -> str:
    return ", ".join("x".join(map(str, k[0])) or "scalar" if isinstance(k, tuple) else str(k) for k in key)


def _contiguous_copy(value: Any) -> Any:
    return value.clone(memory_format=torch.contiguous_format) if isinstance(value, torch.Tensor) else value


def _signature(args: tuple) -> tuple:
    return tuple((tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else a for a in args)
