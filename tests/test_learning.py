"""Learning tests: fixed seeds and budgets with a wide margin (Pendulum is solved near -150)."""

import pytest

from sac_runner.train import train

pytestmark = pytest.mark.slow


def test_pendulum_learns(compose_run, tmp_path):
    cfg = compose_run("env=pendulum", "seed=0", "device=cpu", "logging=disabled", "logging.progress=false",
                      "schedule.total_steps=10_000", "schedule.eval_every=10_000",
                      "schedule.checkpoint_every=10_000")
    final = train(cfg, tmp_path)
    assert final["eval/return_mean"] >= -250, final
