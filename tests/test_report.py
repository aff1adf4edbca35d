"""sac-report: statistics by hand, runs grouped by configuration, files written, bad runs left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sac_runner.run.report import ReportError, Thresholds, report
from sac_runner.run.run_dir import RunDir
from sac_runner.run.statistics import bootstrap_ci, interquartile_mean, summary
from tests.harness import cli


def fake_run(path: Path, overrides: list[str], env: str, seed: int, returns: list[float], every: int = 1000,
             total: int | None = None, seconds_per_step: float | None = None) -> Path:
    """A run directory as sac-train leaves it: .hydra/config.yaml, .hydra/overrides.yaml, metrics.jsonl."""
    run_dir = RunDir(path)
    run_dir.config.parent.mkdir(parents=True)
    total = total if total is not None else every * len(returns)
    config = {"env": {"id": env}, "seed": seed, "schedule": {"total_steps": total, "epochs": None}}
    run_dir.config.write_text(yaml.safe_dump(config))
    run_dir.overrides.write_text(yaml.safe_dump(overrides))
    lines = []
    for i, value in enumerate(returns, 1):
        lines.append({"step": i * every - 500, "train/critic_loss": 1.0})
        timing = {} if seconds_per_step is None else {"time/elapsed": i * every * seconds_per_step}
        lines.append({"step": i * every, "eval/return_mean": value, "eval/return_std": 0.0, **timing})
    run_dir.metrics.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_interquartile_mean_by_hand():
    # 8 values: a quarter (2) trimmed from each end -> mean of 3, 4, 5, 6 = 4.5
    assert interquartile_mean(np.array([100.0, 1, 3, 4, 5, 6, 7, -50])) == pytest.approx(4.5)
    assert interquartile_mean(np.array([1.0, 2, 9])) == pytest.approx(4.0)  # fewer than 4: the mean


def test_summary_by_hand():
    s = summary([1.0, 2.0, 6.0])
    assert (s["mean"], s["n"]) == (3.0, 3)
    assert s["std"] == pytest.approx(np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert summary([5.0])["std"] == 0.0


def test_bootstrap_band_contains_the_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(10, 2, size=(4, 1)), rng.normal(10, 2, size=(64, 1))
    low_few, high_few = bootstrap_ci(few)
    low_many, high_many = bootstrap_ci(many)
    assert low_few[0] <= few.mean() <= high_few[0] and low_many[0] <= many.mean() <= high_many[0]
    assert high_many[0] - low_many[0] < high_few[0] - low_few[0]
    # One seed: no spread to resample, the band collapses to the value.
    low, high = bootstrap_ci(np.array([[3.0, 4.0]]))
    assert np.allclose(low, [3.0, 4.0]) and np.allclose(high, [3.0, 4.0])


def test_report_groups_seeds_by_configuration_and_leaves_out_bad_runs(tmp_path):
    sweep = tmp_path / "sweep"
    values = {("0.001", 0): [1, 5, 9], ("0.001", 1): [3, 7, 11], ("0.001", 2): [2, 14, 13],
              ("0.0003", 0): [0, 2, 4], ("0.0003", 1): [0, 4, 2]}
    for n, ((lr, seed), returns) in enumerate(values.items()):
        fake_run(sweep / str(n), ["schedule=short", f"agent.actor_lr={lr}", f"seed={seed}", "logging=disabled"],
                 "Pendulum-v1", seed, returns)
    fake_run(sweep / "5", ["agent.actor_lr=0.001", "seed=3"], "Pendulum-v1", 3, [1, 2], total=3000)  # stopped early
    crashed = RunDir(sweep / "6")  # crashed before writing metrics
    crashed.config.parent.mkdir(parents=True)
    crashed.config.write_text(yaml.safe_dump({"env": {"id": "Pendulum-v1"}, "seed": 4}))
    fake_run(sweep / "7", ["env=halfcheetah", "seed=0"], "HalfCheetah-v5", 0, [-1, 300, 900])

    result = report([sweep])
    rows = {(r["env"], r["configuration"]): r for r in result["rows"]}
    # Labels carry what differs between runs; what all share is stated once.
    assert set(rows) == {("Pendulum-v1", "schedule=short agent.actor_lr=0.001"),
                         ("Pendulum-v1", "schedule=short agent.actor_lr=0.0003"), ("HalfCheetah-v5", "default"),
                         ("Pendulum-v1", "agent.actor_lr=0.001")}
    fast = rows[("Pendulum-v1", "schedule=short agent.actor_lr=0.001")]
    assert fast["seeds"] == 3
    assert fast["final"]["mean"] == pytest.approx((9 + 11 + 13) / 3) and fast["best"]["mean"] == pytest.approx(34 / 3)
    slow = rows[("Pendulum-v1", "schedule=short agent.actor_lr=0.0003")]
    assert result["common"] == []  # the HalfCheetah run shares no override with the others
    assert slow["seeds"] == 2 and slow["final"]["mean"] == 3.0 and slow["best"]["mean"] == 4.0
    assert rows[("HalfCheetah-v5", "default")]["seeds"] == 1
    stopped = rows[("Pendulum-v1", "agent.actor_lr=0.001")]  # stopped early: reported with what it has, marked
    assert stopped["unfinished"] == ["incomplete: step 2000 of 3000"] and stopped["final"]["mean"] == 2.0

    skipped = {path.name: why for path, why in result["skipped"]}
    assert skipped == {"6": "no metrics.jsonl"}
    png, svg = result["figures"]
    assert png == sweep / "report" / "learning_curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000]
    table = (sweep / "report" / "results.md").read_text()
    # Finals 9, 11, 13: each bootstrap mean is 9 with probability 1/27 (3.7% > 2.5%), 13 likewise, so the
    # 95% interval of the mean is [9, 13]. No time/elapsed in these metrics: the time per run is unknown.
    assert ("| Pendulum-v1 | schedule=short agent.actor_lr=0.001 | 3 | 11.0 ± 2.0 | [9.0, 13.0] | 11.0 | 11.3 ± 2.5 "
            "| 11.3 | ? |") in table
    # One seed: the mean alone, no "± 0.0" and no interval.
    assert "| Pendulum-v1 | agent.actor_lr=0.001 | 1 (incomplete: step 2000 of 3000) | 2.0 | - | 2.0 | 2.0 | 2.0 | ? |" in table
    assert "| HalfCheetah-v5 | default | 1 | 900.0 | - | 900.0 | 900.0 | 900.0 | ? |" in table


def test_a_failed_job_is_left_out_unless_its_run_had_finished(tmp_path):
    # A job that failed part-way is left out with its error; a finished run whose directory got a
    # failure.txt from a later attempt (the sweep started again with other values) is still reported.
    for n, returns in ((0, [1, 2]), (1, [3])):
        run_dir = RunDir(fake_run(tmp_path / "sweep" / str(n), [f"seed={n}"], "Pendulum-v1", n, returns, total=2000))
        run_dir.failure.write_text("overrides: seed=1\nerror: resume: seed would change the experiment\n")
    result = report([tmp_path / "sweep"], tmp_path / "rep")
    (row,) = result["rows"]
    assert row["seeds"] == 1 and row["final"]["mean"] == 2.0 and row["unfinished"] == []
    assert {path.name: why for path, why in result["skipped"]} == {
        "1": "failed (resume: seed would change the experiment)"}

def test_a_run_still_training_is_reported_as_running(tmp_path, monkeypatch):
    import os

    registry = tmp_path / "registry"
    registry.mkdir()
    monkeypatch.setenv("SAC_RUNNER_RUN_REGISTRY", str(registry))
    run = fake_run(tmp_path / "runs" / "live", ["seed=0"], "Pendulum-v1", 0, [-900, -500], total=20_000)
    # A live sac-train process (here: this test's parent process) registered for that run directory.
    (registry / str(os.getppid())).write_text(json.dumps({"pid": os.getppid(), "cpus": [0], "run_dir": str(run)}))
    result = report([tmp_path / "runs"], tmp_path / "rep")
    (row,) = result["rows"]
    assert row["unfinished"] == ["running: step 2000 of 20000"] and row["final"]["mean"] == -500.0
    assert "| Pendulum-v1 | default | 1 (running: step 2000 of 20000) | -500.0 |" in (tmp_path / "rep" / "results.md").read_text()


def test_one_seed_per_configuration_draws_no_band(tmp_path, monkeypatch):
    import matplotlib.axes

    bands = []
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", lambda self, *a, **k: bands.append(a))
    fake_run(tmp_path / "runs" / "a", ["seed=0"], "Pendulum-v1", 0, [-900, -300])
    report([tmp_path / "runs"], tmp_path / "rep")
    assert bands == []
    fake_run(tmp_path / "runs" / "b", ["seed=1"], "Pendulum-v1", 1, [-800, -200])
    report([tmp_path / "runs"], tmp_path / "rep2")
    assert len(bands) == 1


def test_sac_report_cli_prints_the_table_and_says_what_is_wrong(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / "runs" / f"run{seed}", [f"seed={seed}"], "Pendulum-v1", seed, [-900, -300])
    result = cli("sac-report", tmp_path, str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "threshold=-500")
    assert result.returncode == 0, result.stderr
    assert "evaluation return across seeds" in result.stdout and (tmp_path / "rep" / "learning_curves.png").exists()
    assert "steps to it" in result.stdout and "2_000" in result.stdout  # the mean first reaches -500 at step 2000
    table = (tmp_path / "rep" / "results.md").read_text()
    assert "| Pendulum-v1 | default | 2 | -300.0 ± 0.0 |" in table
    wrong = cli("sac-report", tmp_path, str(tmp_path / "runs"), "--threshold", "high")
    assert wrong.returncode == 2 and wrong.stderr.strip() == ("error: --threshold high is not a return; write "
                                                             "--threshold 3000 or --threshold HalfCheetah-v5=3000")
    missing = cli("sac-report", tmp_path, str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (f"error: {tmp_path / 'nope'} does not exist; pass sweep directories or run "
                                      "directories under outputs/")
    empty = cli("sac-report", tmp_path, str(tmp_path / "rep"))
    assert empty.returncode == 2 and "no runs under" in empty.stderr and "Traceback" not in empty.stderr


def test_a_run_from_before_keys_moved_counts_as_a_seed_of_the_same_configuration(tmp_path):
    fake_run(tmp_path / "runs" / "old", ["schedule.policy_update_every=2", "seed=0"], "Pendulum-v1", 0, [-900, -300])
    fake_run(tmp_path / "runs" / "new", ["agent.policy_update_every=2", "seed=1"], "Pendulum-v1", 1, [-800, -200])
    (row,) = report([tmp_path / "runs"], tmp_path / "rep")["rows"]
    assert row["seeds"] == 2


def test_seeds_of_one_configuration_are_all_runs_with_their_overrides_stated_once(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / "runs" / str(seed), ["agent=crossq", "schedule.total_steps=2000", f"seed={seed}"],
                 "HalfCheetah-v5", seed, [-1, 300])
    result = report([tmp_path / "runs"], tmp_path / "rep")
    (row,) = result["rows"]
    # Not "default" (they have overrides), and the overrides not repeated in a label: said once.
    assert row["configuration"] == "all runs" and result["common"] == ["agent=crossq", "schedule.total_steps=2000"]
    table = (tmp_path / "rep" / "results.md").read_text()
    assert "| HalfCheetah-v5 | all runs | 2 |" in table
    assert "Common to every run: `agent=crossq schedule.total_steps=2000`." in table


def test_rows_of_one_environment_stay_together_across_sweep_directories(tmp_path):
    for k, env in enumerate(("Hopper-v5", "Walker2d-v5")):
        fake_run(tmp_path / "sweep" / str(k), ["agent=sac", f"env={env}", "seed=0"], env, 0, [1, 2])
        fake_run(tmp_path / "droq" / str(k), ["agent=droq", f"env={env}", "seed=0"], env, 0, [3, 4])
    rows = report([tmp_path / "sweep", tmp_path / "droq"], tmp_path / "rep")["rows"]
    assert [(row["env"], row["configuration"]) for row in rows] == [
        ("Hopper-v5", "agent=sac"), ("Hopper-v5", "agent=droq"), ("Walker2d-v5", "agent=sac"), ("Walker2d-v5", "agent=droq")]

def test_time_to_threshold_by_hand(tmp_path):
    """The first evaluation where the mean over seeds reaches the threshold, and the seeds' mean time there."""
    sweep = tmp_path / "sweep"
    fake_run(sweep / "0", ["agent=sac", "seed=0"], "HalfCheetah-v5", 0, [100, 900, 2500, 3100], seconds_per_step=0.01)
    fake_run(sweep / "1", ["agent=sac", "seed=1"], "HalfCheetah-v5", 1, [100, 1200, 3000, 3100], seconds_per_step=0.03)
    fake_run(sweep / "2", ["agent=crossq", "seed=0"], "HalfCheetah-v5", 0, [800, 2100, 3300, 3500])
    fake_run(sweep / "3", ["agent=crossq", "seed=0"], "Hopper-v5", 0, [500, 600, 700, 800])
    result = report([sweep], tmp_path / "out", Thresholds.parse(["2700", "Hopper-v5=1000"]))
    rows = {(r["env"], r["configuration"]): r for r in result["rows"]}
    # agent=sac: means 100, 1050, 2750 (>= 2700 first at step 3000), 3100; time: mean of 30 s and 90 s.
    assert rows[("HalfCheetah-v5", "agent=sac")]["time_to"] == (3000, pytest.approx(60.0))
    steps, seconds = rows[("HalfCheetah-v5", "agent=crossq")]["time_to"]  # no time/elapsed in its metrics
    assert steps == 3000 and np.isnan(seconds)
    assert rows[("Hopper-v5", "agent=crossq")]["threshold"] == 1000 and rows[("Hopper-v5", "agent=crossq")]["time_to"] is None
    table = result["table"].read_text()
    assert "| 2700 | 3_000 | 60 s |" in table and "| 1000 | not reached |  |" in table
    # Time per run: the seeds' mean training time at their last evaluation (step 4000: 40 s and 120 s).
    assert rows[("HalfCheetah-v5", "agent=sac")]["seconds_per_run"] == pytest.approx(80.0)
    assert "| 3100.0 | 1.3 min | 2700 |" in table
    with pytest.raises(ReportError, match="--threshold fast is not a return"):
        Thresholds.parse(["fast"])


def test_runs_with_health_measurements_get_a_health_panel_and_their_alerts_listed(tmp_path):
    sweep = tmp_path / "sweep"
    for job, alerted in (("0", True), ("1", False)):
        path = fake_run(sweep / job, [f"seed={job}"], "Pendulum-v1", int(job), [-900.0, -300.0, -150.0])
        records = [json.loads(line) for line in RunDir(path).metrics.read_text().splitlines()]
        for i, record in enumerate(r for r in records if "eval/return_mean" in r):
            record.update({"health/value_bias_relative": 0.1 * i, "health/dormant_critic": 0.05,
                           "health/dormant_actor": 0.1, "health/entropy": -1.0, "health/target_entropy": -1.0})
        RunDir(path).metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
        if alerted:
            RunDir(path).alerts.write_text(json.dumps({"step": 2000, "kind": "overestimation", "title": "t",
                                                       "text": "value bias +340% of the return scale"}) + "\n")
    plain = fake_run(sweep / "2", ["seed=2", "agent.tau=0.01"], "Pendulum-v1", 2, [-500.0])
    result = report([sweep], tmp_path / "out")
    runs = {run.path.name: run for run in result["runs"]}
    np.testing.assert_allclose(runs["0"].health["health/value_bias_relative"], [0.0, 0.1, 0.2])
    assert runs[plain.name].health == {} and runs["1"].alerts == []
    assert [p.name for p in result["figures"]] == ["learning_curves.png", "learning_curves.svg", "health.png",
                                                   "health.svg"]
    assert (tmp_path / "out" / "health.png").read_bytes()[:4] == b"\x89PNG"
    table = result["table"].read_text()
    assert "## Health alerts" in table and "  - step 2000: value bias +340% of the return scale" in table
    assert f"`{sweep / '0'}` (Pendulum-v1, default, seed 0)" in table


def test_runs_without_health_measurements_get_no_health_panel(tmp_path):
    fake_run(tmp_path / "run", [], "Pendulum-v1", 0, [-500.0, -200.0])
    result = report([tmp_path / "run"], tmp_path / "out")
    assert [p.name for p in result["figures"]] == ["learning_curves.png", "learning_curves.svg"]
    assert "Health alerts" not in result["table"].read_text()
