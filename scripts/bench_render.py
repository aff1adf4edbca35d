"""Milliseconds per frame MuJoCo renders at 84x84 on this machine, per OpenGL backend and setting.

    python scripts/bench_render.py [--frames 100] [--repeats 3] [--env HalfCheetah-v5] [--size 84]
                                   [--case NAME ...]

Each case runs in a fresh process, since MUJOCO_GL and Mesa's variables (LP_NUM_THREADS,
GALLIUM_DRIVER) are read when the libraries load: the environment is built with
render_mode="rgb_array" and width = height = --size, renders one warm-up frame (context creation and
Mesa's shader compilation), then takes --frames steps of seeded random actions, each followed by
env.render(); only the render calls are timed. With workers, an AsyncVectorEnv of that many processes
renders (vector render calls), and ms/frame is the wall time per frame of all workers together.
Cases alternate over --repeats rounds (drift in the machine's speed hits them all); the table gives
the median. "same frame" says whether the last frame is the default case's, byte for byte (a
setting that changes the picture is not a free speed-up). A backend that cannot start is listed as
unavailable, with its reason.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

# name -> (MUJOCO_GL, extra environment variables, model options, vector workers)
CASES = {
    "egl": ("egl", {}, {}, 0),
    "egl LP_NUM_THREADS=0": ("egl", {"LP_NUM_THREADS": "0"}, {}, 0),
    "egl LP_NUM_THREADS=1": ("egl", {"LP_NUM_THREADS": "1"}, {}, 0),
    "egl softpipe": ("egl", {"GALLIUM_DRIVER": "softpipe"}, {}, 0),
    "egl offscreen buffer = frame": ("egl", {}, {"fit_buffer": True}, 0),
    "egl offsamples=0": ("egl", {}, {"offsamples": 0}, 0),
    "egl shadowsize=2048": ("egl", {}, {"shadowsize": 2048}, 0),
    "egl shadowsize=1024": ("egl", {}, {"shadowsize": 1024}, 0),
    "egl no shadows": ("egl", {}, {"shadows": False}, 0),
    "egl no reflections": ("egl", {}, {"reflections": False}, 0),
    "egl, 2 AsyncVectorEnv workers": ("egl", {}, {}, 2),
    "egl, 2 AsyncVectorEnv workers, LP_NUM_THREADS=1": ("egl", {"LP_NUM_THREADS": "1"}, {}, 2),
    "osmesa": ("osmesa", {}, {}, 0),
    "osmesa LP_NUM_THREADS=0": ("osmesa", {"LP_NUM_THREADS": "0"}, {}, 0),
    "osmesa offscreen buffer = frame": ("osmesa", {}, {"fit_buffer": True}, 0),
}


def apply_options(env, options: dict, size: int) -> None:
    """Model settings, before the first frame creates the rendering context (which reads them)."""
    model = env.unwrapped.model
    if options.get("fit_buffer"):  # gymnasium keeps the model's 640x480 buffer when frames are smaller
        model.vis.global_.offwidth, model.vis.global_.offheight = size, size
    if "offsamples" in options:
        model.vis.quality.offsamples = options["offsamples"]
    if "shadowsize" in options:
        model.vis.quality.shadowsize = options["shadowsize"]
    if options.get("shadows") is False:
        model.light_castshadow[:] = 0
    if options.get("reflections") is False:
        model.mat_reflectance[:] = 0


def make(env_id: str, size: int, options: dict):
    import gymnasium as gym
    env = gym.make(env_id, render_mode="rgb_array", width=size, height=size)
    apply_options(env, options, size)
    return env


def gl_renderer(env) -> str:
    """GL_RENDERER of the context the environment rendered with (e.g. 'llvmpipe (LLVM 15.0.7, 256 bits)')."""
    try:
        from OpenGL import GL
        env.unwrapped.mujoco_renderer.viewer.make_context_current()
        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as error:  # the name is a label in the table; the timing does not depend on it
        return f"? ({type(error).__name__})"


def measure_single(env_id: str, size: int, frames: int, options: dict) -> dict:
    env = make(env_id, size, options)
    env.reset(seed=0)
    env.action_space.seed(0)
    frame = env.render()  # warm-up: the GL context, the MuJoCo context and Mesa's shaders
    render_s = step_s = 0.0
    for _ in range(frames):
        started = time.perf_counter()
        env.step(env.action_space.sample())
        stepped = time.perf_counter()
        frame = env.render()
        render_s += time.perf_counter() - stepped
        step_s += stepped - started
    result = {"ms_frame": 1000 * render_s / frames, "ms_step": 1000 * step_s / frames,
              "renderer": gl_renderer(env), "shape": list(frame.shape), "sha1": hashlib.sha1(frame.tobytes()).hexdigest()}
    env.close()
    return result


def measure_workers(env_id: str, size: int, frames: int, options: dict, workers: int) -> dict:
    from gymnasium.vector import AsyncVectorEnv
    envs = AsyncVectorEnv([lambda: make(env_id, size, options)] * workers)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    envs.render()  # warm-up, in every worker
    calls = max(1, frames // workers)
    started = time.perf_counter()
    for _ in range(calls):
        envs.step(envs.action_space.sample())
        shown = envs.render()
    elapsed = time.perf_counter() - started
    envs.close()
    return {"ms_frame": 1000 * elapsed / (calls * workers), "ms_step": float("nan"), "renderer": "(in workers)",
            "shape": list(shown[0].shape), "sha1": "-"}


def child(spec: dict) -> None:
    workers = spec["workers"]
    if workers:
        result = measure_workers(spec["env"], spec["size"], spec["frames"], spec["options"], workers)
    else:
        result = measure_single(spec["env"], spec["size"], spec["frames"], spec["options"])
    print(json.dumps(result))


@dataclass
class Outcome:
    ms: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    renderer: str = ""
    sha1: str = ""
    unavailable: str = ""


def run_case(name: str, args: argparse.Namespace) -> dict | str:
    """One fresh process measuring case `name`: its result, or why it could not run (one line)."""
    backend, variables, options, workers = CASES[name]
    spec = {"env": args.env, "size": args.size, "frames": args.frames, "options": options, "workers": workers}
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env.update({"MUJOCO_GL": backend, **variables})
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True,
                              text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return "no result within 600 s"
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit code {done.returncode}")[:140]
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {usable} usable cores, Python {platform.python_version()}"


def table(outcomes: dict[str, Outcome]) -> list[str]:
    reference = next((o.sha1 for o in outcomes.values() if o.sha1 not in ("", "-")), "")  # the first case measured
    rows = ["| backend and setting | renderer | ms/frame (median) | frames/s | same frame | physics step ms |",
            "| --- | --- | ---: | ---: | --- | ---: |"]
    for name, outcome in outcomes.items():
        if outcome.unavailable:
            rows.append(f"| {name} | unavailable: {outcome.unavailable} | | | | |")
            continue
        ms = statistics.median(outcome.ms)
        same = "-" if outcome.sha1 == "-" else ("yes" if outcome.sha1 == reference else "no")
        step = statistics.median(outcome.step_ms)
        rows.append(f"| {name} | {outcome.renderer} | {ms:.1f} | {1000 / ms:.1f} | {same} | "
                    f"{'' if step != step else f'{step:.2f}'} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these cases (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    names = args.case or list(CASES)
    print(f"command: python {' '.join(sys.argv)}\nmachine: {machine()}\n"
          f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
          f"{args.env}, {args.size}x{args.size} rgb_array, {args.frames} frames per case, median of {args.repeats}",
          flush=True)
    outcomes = {name: Outcome() for name in names}
    for round_ in range(args.repeats):
        for name in names:
            if outcomes[name].unavailable:
                continue
            result = run_case(name, args)
            if isinstance(result, str):
                outcomes[name].unavailable = result
                print(f"round {round_ + 1}: {name}: unavailable ({result})", flush=True)
                continue
            outcome = outcomes[name]
            outcome.ms.append(result["ms_frame"])
            outcome.step_ms.append(result["ms_step"])
            outcome.renderer, outcome.sha1 = result["renderer"], result["sha1"]
            print(f"round {round_ + 1}: {name}: {result['ms_frame']:.1f} ms/frame", flush=True)
    print("\n" + "\n".join(table(outcomes)))


if __name__ == "__main__":
    main()
