"""One tiny trained run (Pendulum, smoke schedule, W&B off), shared by the fault tests that need a
real checkpoint to damage or imitate."""

import pytest

from tests.harness import TINY, cli


@pytest.fixture(scope="package")
def trained_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("trained")
    proc = cli("sac-train", cwd, *TINY, "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cwd / "run"
