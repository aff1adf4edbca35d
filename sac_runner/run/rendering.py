"""The OpenGL backend MuJoCo renders frames with (videos) on a machine without a display.

gymnasium's MuJoCo environments render offscreen with the backend `MUJOCO_GL` names (glfw, egl or
osmesa), read when the first frame is rendered. glfw needs a display. Left unset, gymnasium tries the
three in turn in the same process, and that fallback cannot work: importing `mujoco.egl` fixes
PyOpenGL's platform to EGL, so OSMesa fails after EGL has, and the error that reaches the user is a bare
"No OpenGL backend could be imported", at the first video (possibly hours into a run).

So, without a display and without `MUJOCO_GL`, each backend is tried in a child process of its own
(one that crashes or hangs takes only itself down) by rendering one small frame, EGL first, then
OSMesa, and the first that renders is written to `MUJOCO_GL` before this process renders anything
(child processes, such as vector environment workers, inherit it). A `MUJOCO_GL` the user set is kept
and checked the same way. No backend, or the user's one failing, is an `EnvError`: one line naming what
to install, exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping

import gymnasium as gym

from sac_runner.errors import EnvError

HEADLESS_BACKENDS = ("egl", "osmesa")  # in the order they are tried: EGL is a GPU's when there is one
# No Mesa variable (LP_NUM_THREADS, GALLIUM_DRIVER) is set: none rendered faster than Mesa's defaults
# (docs/benchmarks.md#rendering).
GYMNASIUM_BACKENDS = ("glfw", "egl", "osmesa")  # what gymnasium's MuJoCo renderer accepts in MUJOCO_GL
INSTALL = {"egl": "apt-get install libegl1", "osmesa": "apt-get install libosmesa6"}
NEEDS = {"egl": f"install EGL ({INSTALL['egl']})", "osmesa": f"install OSMesa ({INSTALL['osmesa']})",
         "glfw": "glfw opens a window and needs a display (DISPLAY or WAYLAND_DISPLAY)"}
# A probe takes about 1 s on the 2-core development machine (Python, mujoco and Mesa's software EGL
# starting); a backend still silent after this long is taken as hung.
PROBE_TIMEOUT_S = 30
# Set beside MUJOCO_GL once that backend has rendered: this process and its children skip the probe.
CHECKED = "SAC_RUNNER_MUJOCO_GL_CHECKED"

# One 8x8 frame of a box, through gymnasium's own offscreen renderer (MUJOCO_GL is set for the child).
# The reason of a failure is the child's last line on stdout: what it prints on stderr ends with the
# noise of objects torn down half-built.
PROBE = """
try:
    import mujoco
    from gymnasium.envs.mujoco.mujoco_rendering import OffScreenViewer
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><visual><global offwidth="8" offheight="8"/></visual><worldbody><light pos="0 0 3"/>'
        '<geom type="box" size="1 1 1"/></worldbody></mujoco>')
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    viewer = OffScreenViewer(model, data, 8, 8)
    frame = viewer.render("rgb_array")
    viewer.free()
    assert frame.shape == (8, 8, 3) and frame.any(), f"an empty frame {frame.shape}"
except Exception as error:
    print(" ".join(f"{type(error).__name__}: {error}".split()))
    raise SystemExit(1)
"""

Probe = Callable[[str], "str | None"]  # a backend -> None when it renders, else why it does not


def probe_in_child(backend: str) -> str | None:
    """Render one frame with `backend` in a child process; None if it worked, else the reason, one line."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, "MUJOCO_GL": backend},
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"no frame within {PROBE_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"crashed (signal {-done.returncode})"
    lines = [line.strip() for line in (done.stdout or done.stderr).splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit code {done.returncode}")[:160]


def has_display(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def choose_backend(environ: Mapping[str, str], probe: Probe) -> str | None:
    """The MUJOCO_GL to render with: the user's, checked; else without a display the first headless
    backend that renders; None with a display (gymnasium's own choice, glfw, stands). EnvError if none."""
    wanted = environ.get("MUJOCO_GL")
    if wanted is not None:
        if wanted not in GYMNASIUM_BACKENDS:
            raise EnvError(f"MUJOCO_GL={wanted} is not a backend gymnasium renders MuJoCo with; set it to "
                           f"{', '.join(GYMNASIUM_BACKENDS)}, or unset it to let sac-runner pick one")
        why = probe(wanted)
        if why is not None:
            raise EnvError(f"MUJOCO_GL={wanted} cannot render MuJoCo frames ({why}); {NEEDS[wanted]}, or unset "
                           "MUJOCO_GL to let sac-runner pick a backend")
        return wanted
    if has_display(environ):
        return None
    reasons = {}
    for backend in HEADLESS_BACKENDS:
        reasons[backend] = probe(backend)
        if reasons[backend] is None:
            return backend
    tried = "; ".join(f"{backend}: {why}" for backend, why in reasons.items())
    raise EnvError(f"no OpenGL backend can render MuJoCo frames without a display ({tried}); install one: "
                   f"{INSTALL['egl']} (EGL) or {INSTALL['osmesa']} (OSMesa), or set MUJOCO_GL")


def prepare_rendering(env: gym.Env) -> None:
    """Before `env` (or one of its kind) renders its first frame: what its renderer needs, or EnvError."""
    # rgb_array frames need no window: SDL's dummy driver (pygame's classic control) asks for no
    # display and prints no "error: XDG_RUNTIME_DIR ..." on a headless machine.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if renders_with_mujoco(env):
        ensure_offscreen_rendering()


def ensure_offscreen_rendering(probe: Probe = probe_in_child) -> None:
    """Make MuJoCo frames renderable in this process before the first one is: MUJOCO_GL chosen or checked
    once (the result is kept in the environment, for this process and its children), or EnvError."""
    if os.environ.get(CHECKED) and os.environ.get("MUJOCO_GL") == os.environ[CHECKED]:
        return
    backend = choose_backend(os.environ, probe)
    if backend is not None:
        os.environ["MUJOCO_GL"] = os.environ[CHECKED] = backend


def renders_with_mujoco(env: gym.Env) -> bool:
    """gymnasium's MuJoCo environments (and those built on its MujocoEnv) render through OpenGL."""
    return hasattr(env.unwrapped, "mujoco_renderer")
