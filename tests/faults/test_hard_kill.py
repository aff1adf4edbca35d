"""SIGKILL at random moments: nothing a killed run wrote is unusable, and resuming reaches the end with
every metric record exactly once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sac_runner.run.checkpoint import load_checkpoint
from tests.harness import TINY, cli, start_cli

TOTAL, LOG_EVERY, EVAL_EVERY = 6000, 50, 1000
ARGS = (*TINY, f"schedule.total_steps={TOTAL}", "schedule.checkpoint_every=250", f"schedule.log_every={LOG_EVERY}",
        f"schedule.eval_every={EVAL_EVERY}", "schedule.eval_episodes=1", "checkpoint.keep_last=0")


def every_checkpoint_loads(run_dir: Path) -> list[int]:
    steps = []
    for path in sorted((run_dir / "checkpoints").glob("step_*[0-9].pt")):
        checkpoint = load_checkpoint(path)
        checkpoint.load_buffer()  # the newest one's buffer, if its file is there
        steps.append(checkpoint.step)
    return steps


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path):
    rng = random.Random(2026)
    run_dir = tmp_path / "run"
    args = (*ARGS, f"hydra.run.dir={run_dir}")
    kills = 0
    for attempt in range(4):
        proc = start_cli("sac-train", tmp_path, *args, stdout=subprocess.DEVNULL)
        latest = run_dir / "checkpoints" / "latest.pt"
        started = time.monotonic()
        # Wait until this process has written a checkpoint of its own (the first run: any), then a random time.
        before = latest.resolve() if attempt and latest.exists() else None
        while proc.poll() is None and (not latest.exists() or latest.resolve() == before):
            assert time.monotonic() - started < 120, "no checkpoint within two minutes"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is not None:
            break  # it finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        steps = every_checkpoint_loads(run_dir)
        assert steps, "a killed run left no loadable checkpoint"
        if steps[-1] == TOTAL:
            break  # killed after its last checkpoint: the run is complete
        args = (*ARGS, f"resume={run_dir}")
    else:
        proc = cli("sac-train", tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-2000:] if isinstance(proc.stderr, str) else proc.stderr.read()
    assert kills >= 3, f"only {kills} kills landed while training"

    assert load_checkpoint(run_dir).step == TOTAL
    assert every_checkpoint_loads(run_dir)[-1] == TOTAL
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    periodic = [r["step"] for r in records if "time/sps" in r]
    evaluations = [r["step"] for r in records if "eval/return_mean" in r]
    episodes = [r["step"] for r in records if "train/episode_return" in r]
    assert periodic == list(range(LOG_EVERY, TOTAL + 1, LOG_EVERY))      # no gap, no duplicate
    assert evaluations == list(range(EVAL_EVERY, TOTAL + 1, EVAL_EVERY))
    assert episodes == list(range(200, TOTAL + 1, 200))                   # Pendulum: 200-step episodes
