"""Headless MuJoCo rendering: the backend picker (with a fake probe), the probe's child process, the
one-line refusal through sac-train, and one real 84x84 frame."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sac_runner.config import EnvConfig
from sac_runner.errors import EnvError
from sac_runner.run import rendering
from sac_runner.run.envs import make_env
from sac_runner.run.rendering import CHECKED, choose_backend, ensure_offscreen_rendering, probe_in_child
from tests.harness import TINY, cli, cli_env


class FakeProbe:
    """Stands in for the child-process probe: `failures` maps a backend to why it cannot render."""

    def __init__(self, **failures: str):
        self.failures, self.tried = failures, []

    def __call__(self, backend: str) -> str | None:
        self.tried.append(backend)
        return self.failures.get(backend)


def test_egl_is_tried_first_and_kept_when_it_renders():
    probe = FakeProbe()
    assert choose_backend({}, probe) == "egl" and probe.tried == ["egl"]


def test_osmesa_is_chosen_when_egl_cannot_render():
    probe = FakeProbe(egl="Cannot initialize a EGL device display")
    assert choose_backend({}, probe) == "osmesa" and probe.tried == ["egl", "osmesa"]


def test_no_backend_is_one_line_naming_both_packages_and_why():
    probe = FakeProbe(egl="no EGL device", osmesa="libOSMesa not found")
    with pytest.raises(EnvError) as refused:
        choose_backend({}, probe)
    message = str(refused.value)
    assert "\n" not in message and "apt-get install libegl1" in message and "apt-get install libosmesa6" in message
    assert "egl: no EGL device" in message and "osmesa: libOSMesa not found" in message


def test_a_users_mujoco_gl_is_checked_and_never_replaced():
    probe = FakeProbe()
    assert choose_backend({"MUJOCO_GL": "osmesa"}, probe) == "osmesa" and probe.tried == ["osmesa"]
    probe = FakeProbe(osmesa="libOSMesa not found")
    with pytest.raises(EnvError, match=r"^MUJOCO_GL=osmesa cannot render .*libOSMesa not found.*libosmesa6"):
        choose_backend({"MUJOCO_GL": "osmesa"}, probe)
    assert probe.tried == ["osmesa"]  # EGL, which would work, is not tried in its place


def test_a_mujoco_gl_gymnasium_cannot_render_with_is_refused_without_a_probe():
    probe = FakeProbe()
    with pytest.raises(EnvError, match=r"^MUJOCO_GL=glx is not a backend gymnasium renders MuJoCo with"):
        choose_backend({"MUJOCO_GL": "glx"}, probe)
    assert probe.tried == []


@pytest.mark.parametrize("display", [{"DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}])
def test_with_a_display_gymnasium_keeps_its_own_choice(display):
    probe = FakeProbe()
    assert choose_backend(display, probe) is None and probe.tried == []


@pytest.fixture
def headless(monkeypatch):
    """No display and no MUJOCO_GL; what the code under test sets is undone afterwards."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", CHECKED):
        monkeypatch.delenv(name, raising=False)


def test_the_choice_is_made_once_and_left_for_child_processes(headless):
    probe = FakeProbe(egl="no EGL device")
    ensure_offscreen_rendering(probe)
    ensure_offscreen_rendering(probe)
    assert os.environ["MUJOCO_GL"] == os.environ[CHECKED] == "osmesa" and probe.tried == ["egl", "osmesa"]
    os.environ["MUJOCO_GL"] = "egl"  # set anew (by the user, in this process): checked anew
    with pytest.raises(EnvError, match="MUJOCO_GL=egl"):
        ensure_offscreen_rendering(probe)


def test_the_probe_reports_a_crash_a_hang_and_an_error_in_one_line(monkeypatch):
    monkeypatch.setattr(rendering, "PROBE", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert probe_in_child("egl") == "crashed (signal 9)"
    monkeypatch.setattr(rendering, "PROBE", "import time; time.sleep(30)")
    monkeypatch.setattr(rendering, "PROBE_TIMEOUT_S", 1)
    assert probe_in_child("egl") == "no frame within 1 s"
    monkeypatch.undo()
    assert probe_in_child("bogus") == "RuntimeError: invalid value for environment variable MUJOCO_GL: bogus"


def test_an_84x84_frame_renders_without_a_display():
    cfg = EnvConfig(id="HalfCheetah-v5", kwargs={"width": 84, "height": 84})
    try:
        env = make_env(cfg, render_mode="rgb_array")
    except EnvError as error:
        pytest.skip(f"no OpenGL backend renders on this machine: {error}")
    try:
        env.reset(seed=0)
        frame = env.render()
    finally:
        env.close()
    assert frame.shape == (84, 84, 3) and frame.dtype == np.uint8 and frame.std() > 10  # a picture, not a blank


@pytest.mark.parametrize("environ, named", [
    ({}, ["apt-get install libegl1", "apt-get install libosmesa6"]),
    ({"MUJOCO_GL": "osmesa"}, ["MUJOCO_GL=osmesa", "apt-get install libosmesa6"]),
])
def test_sac_train_with_videos_and_no_backend_is_refused_in_one_line(tmp_path, environ, named):
    """mujoco's EGL and OSMesa modules both refuse another PYOPENGL_PLATFORM: no backend can render."""
    env = {**cli_env(PYOPENGL_PLATFORM="glx", **environ)}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", *(() if environ else ("MUJOCO_GL",)), CHECKED):
        env.pop(name, None)
    proc = cli("sac-train", tmp_path, *TINY, "env.id=HalfCheetah-v5", "logging.video_every_evals=1",
               "hydra.run.dir=run", env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert all(text in lines[0] for text in named), lines[0]
    assert not (tmp_path / "run").exists() and proc.stdout == ""
