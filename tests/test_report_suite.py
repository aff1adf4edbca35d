"""sac-report across the tasks of a suite: normalized scores, the IQM with its stratified bootstrap
interval (Agarwal et al., 2021) by hand, the aggregate table and figure from fake runs, thresholds
per task, and legends that name only what differs and stay inside the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sac_runner.cli.report import main as sac_report
from sac_runner.run.report import group_runs, report
from sac_runner.run.report_plot import aggregate_figure, learning_curves_figure
from sac_runner.run.statistics import aggregate, interquartile_means, row_means, stratified_bootstrap_ci
from sac_runner.run.suites import ATARI_RANDOM_HUMAN, scale_of
from tests.test_report import fake_run

CARTPOLE, WALKER = "dm_control/cartpole-swingup-v0", "dm_control/walker-walk-v0"
# The 26 games of Atari 100k (Kaiser et al., 2020).
ATARI_100K = ("Alien Amidar Assault Asterix BankHeist BattleZone Boxing Breakout ChopperCommand CrazyClimber "
              "DemonAttack Freeway Frostbite Gopher Hero Jamesbond Kangaroo Krull KungFuMaster MsPacman Pong "
              "PrivateEye Qbert RoadRunner Seaquest UpNDown").split()


def test_iqm_of_pooled_scores_by_hand():
    # Two tasks of four runs, pooled: 0, .1, .2, .3, .5, .8, .9, 1; a quarter (2) trimmed from each end
    # leaves .2, .3, .5, .8: IQM .45. Mean 3.8 / 8; median (.3 + .5) / 2.
    found = aggregate([np.array([0.1, 0.9, 0.5, 0.3]), np.array([0.2, 0.8, 0.0, 1.0])])
    assert (found["tasks"], found["runs"]) == (2, 8)
    assert found["iqm"] == pytest.approx(0.45) and found["mean"] == pytest.approx(0.475)
    assert found["median"] == pytest.approx(0.4)
    # Row by row: 1, 2, 3, 4, 5, 6 trims one from each end (floor(6 / 4)): mean of 2..5 = 3.5.
    np.testing.assert_allclose(interquartile_means(np.array([[6.0, 1, 5, 2, 4, 3], [1, 1, 1, 1, 1, 100]])), [3.5, 1.0])


def test_dmc_scores_are_returns_over_1000_and_atari_scores_are_human_normalized():
    np.testing.assert_allclose(scale_of(WALKER).normalize([0.0, 250.0, 1000.0]), [0.0, 0.25, 1.0])
    assert scale_of(WALKER).suite == scale_of(CARTPOLE).suite == "DeepMind Control"
    # Pong: random -20.7, human 14.6 (Badia et al., 2020, Table); Breakout: random 1.7, human 30.5.
    pong = scale_of("ALE/Pong-v5")
    np.testing.assert_allclose(pong.normalize([-20.7, 14.6, 0.0]), [0.0, 1.0, 20.7 / 35.3])
    np.testing.assert_allclose(scale_of("ALE/Breakout-v5").normalize([16.1]), [(16.1 - 1.7) / (30.5 - 1.7)])
    assert pong.suite == "Atari" and set(ATARI_100K) <= set(ATARI_RANDOM_HUMAN)
    assert all(human > random for random, human in ATARI_RANDOM_HUMAN.values())
    for unknown in ("Hopper-v5", "Pendulum-v1", "ALE/NoSuchGame-v5", "tests.toy_envs:Drift-v0"):
        assert scale_of(unknown) is None


def test_stratified_bootstrap_resamples_each_task_from_its_own_runs():
    drawn = []

    def mean_of_rows(rows):
        drawn.append(rows)
        return row_means(rows)

    stratified_bootstrap_ci([np.array([0.5, 0.5, 0.5]), np.array([0.0, 1.0])], mean_of_rows, resamples=500)
    (rows,) = drawn
    # Every resample keeps each task's number of runs, each drawn from that task's runs alone.
    assert rows.shape == (500, 5) and np.all(rows[:, :3] == 0.5) and set(np.unique(rows[:, 3:])) == {0.0, 1.0}
    # Tasks whose seeds agree contribute no variance: the interval collapses to the point (resampling the
    # pooled runs, ignoring tasks, would mix 0.2s and 0.8s and spread it).
    assert stratified_bootstrap_ci([np.full(3, 0.2), np.full(3, 0.8)]) == (pytest.approx(0.5), pytest.approx(0.5))
    # One task of runs 0 and 1: resampled means 0, 0.5, 1 with probability 1/4, 1/2, 1/4 -> interval [0, 1].
    assert stratified_bootstrap_ci([np.array([0.0, 1.0])], row_means) == (0.0, 1.0)


def test_stratified_interval_holds_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    per_task = [rng.uniform(0, 1, size=5) for _ in range(4)]
    found = aggregate(per_task)
    low, high = found["iqm_ci"]
    assert low < found["iqm"] < high and found["mean_ci"][0] < found["mean"] < found["mean_ci"][1]
    assert aggregate(per_task) == found  # a fixed seed: the same runs, the same interval
    assert stratified_bootstrap_ci(per_task, seed=1) != found["iqm_ci"]


def dmc_sweep(root: Path) -> Path:
    """2 DMC tasks x 2 configurations x 3 seeds (each run's returns: half its final, then its final),
    and a Pendulum run, which has no score range."""
    finals = {("sac", "cartpole-swingup"): [400, 500, 600], ("sac", "walker-walk"): [200, 300, 900],
              ("crossq", "cartpole-swingup"): [700, 800, 900], ("crossq", "walker-walk"): [600, 650, 700]}
    job = 0
    for (agent, task), values in finals.items():
        for seed, final in enumerate(values):
            fake_run(root / str(job), [f"agent={agent}", "env=dmc", f"env.task={task}", "schedule.total_steps=2000",
                                       f"seed={seed}"], f"dm_control/{task}-v0", seed, [final / 2, final],
                     seconds_per_step=0.01)
            job += 1
    fake_run(root / str(job), ["agent=sac", "env=pendulum", "schedule.total_steps=2000", "seed=0"], "Pendulum-v1",
             0, [-900, -300])
    return root


def test_a_suite_report_adds_the_aggregate_across_tasks(tmp_path, capsys):
    sweep = dmc_sweep(tmp_path / "sweep")
    out = tmp_path / "rep"
    assert sac_report([str(sweep), "--out", str(out), "--threshold", f"{CARTPOLE}=550"]) == 0
    printed = capsys.readouterr().out
    table = (out / "results.md").read_text()
    # agent=sac pooled: .4 .5 .6 (cartpole) .2 .3 .9 (walker) -> trimmed one from each end: .3 .4 .5 .6,
    # IQM .45; mean 2.9 / 6; median (.4 + .5) / 2. agent=crossq: .7 .8 .9 .6 .65 .7 -> .65 .7 .7 .8, IQM .7125.
    assert "## Aggregate across tasks" in table
    assert "| DeepMind Control | agent=sac | 2 | 6 | 0.450 | [" in table
    assert f"| {2.9 / 6:.3f} | [" in table and "| 0.450 |\n" in table
    assert f"| DeepMind Control | agent=crossq | 2 | 6 | {(0.65 + 0.7 + 0.7 + 0.8) / 4:.3f} | [" in table
    assert "Left out of the aggregate (no known score range): Pendulum-v1." in table
    assert "DeepMind Control return / 1000" in table and "stratified bootstrap" in table
    assert all((out / name).exists() for name in ("aggregate.png", "aggregate.svg", "learning_curves.png"))
    assert "normalized final score across tasks" in printed and "0.450" in printed
    # One panel per task; time to threshold per task, the id's slash and all. cartpole means over seeds:
    # sac 250 then 500 (never 550); crossq 400 then 800 (550 first at step 2000, after 20 s).
    assert "| dm_control/cartpole-swingup-v0 | agent=sac | 3 |" in table
    assert "| 550 | not reached |  |" in table and "| 550 | 2_000 | 20 s |" in table
    walker_rows = [line for line in table.splitlines() if line.startswith(f"| {WALKER} |")]
    assert len(walker_rows) == 2 and all(line.endswith("|  |  |  |") for line in walker_rows)
    # The environment defines the panel: env=dmc and env.task are in no label.
    assert "Common to every run: `schedule.total_steps=2000`." in table
    assert "env" not in " ".join(run.configuration for run in report([sweep], tmp_path / "again")["runs"])


def test_no_aggregate_without_two_tasks_of_a_suite(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / "one" / str(seed), [f"seed={seed}"], CARTPOLE, seed, [300, 600])
        fake_run(tmp_path / "mujoco" / f"h{seed}", ["env=hopper", f"seed={seed}"], "Hopper-v5", seed, [300, 600])
        fake_run(tmp_path / "mujoco" / f"c{seed}", ["env=halfcheetah", f"seed={seed}"], "HalfCheetah-v5", seed, [1, 2])
    one = report([tmp_path / "one"], tmp_path / "rep1")
    assert one["aggregates"] == [] and "Aggregate" not in one["table"].read_text()
    assert not (tmp_path / "rep1" / "aggregate.png").exists()
    mujoco = report([tmp_path / "mujoco"], tmp_path / "rep2")
    assert mujoco["aggregates"] == []
    assert "No aggregate across environments: HalfCheetah-v5, Hopper-v5 have no known score range" in (
        mujoco["table"].read_text())


def test_configurations_on_different_tasks_are_marked_not_comparable(tmp_path):
    fake_run(tmp_path / "runs" / "0", ["agent=sac", "seed=0"], CARTPOLE, 0, [500])
    fake_run(tmp_path / "runs" / "1", ["agent=sac", "seed=0"], WALKER, 0, [500])
    fake_run(tmp_path / "runs" / "2", ["agent=crossq", "seed=0"], CARTPOLE, 0, [800])
    result = report([tmp_path / "runs"], tmp_path / "rep")
    assert [(row["configuration"], row["tasks"]) for row in result["aggregates"]] == [("agent=sac", 2), ("agent=crossq", 1)]
    assert "ran different DeepMind Control tasks: their aggregates are not comparable" in result["table"].read_text()


def test_labels_name_what_differs_and_the_common_overrides_are_stated_once(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / "runs" / f"sac{seed}", ["agent=sac", "schedule.total_steps=2000", f"seed={seed}"],
                 "Pendulum-v1", seed, [-900, -300])
        fake_run(tmp_path / "runs" / f"tau{seed}", ["agent=sac", "schedule.total_steps=2000", "agent.tau=0.01",
                                                    f"seed={seed}"], "Pendulum-v1", seed, [-900, -200])
        fake_run(tmp_path / "runs" / f"crossq{seed}", ["agent=crossq", "schedule.total_steps=2000", f"seed={seed}"],
                 "Pendulum-v1", seed, [-800, -200])
    result = report([tmp_path / "runs"], tmp_path / "rep")
    assert result["common"] == ["schedule.total_steps=2000"]
    labels = sorted(row["configuration"] for row in result["rows"])
    assert labels == ["agent=crossq", "agent=sac", "agent=sac agent.tau=0.01"]
    assert "Common to every run: `schedule.total_steps=2000`." in result["table"].read_text()
    fig = learning_curves_figure(group_runs(result["runs"]), result["common"])
    assert sorted(text.get_text() for text in fig.legends[0].get_texts()) == labels
    assert "common to all: schedule.total_steps=2000" in fig.get_suptitle()


LONG = ("agent.critic_hidden_sizes=[1024,1024,1024,1024] agent.actor_hidden_sizes=[256,256] agent.actor_lr=0.0003",
        "agent=crossq agent.batch_norm_momentum=0.99 buffer.capacity=1_000_000 agent.critic_lr=0.001",
        "agent=droq agent.dropout=0.01", "agent.an_unbroken_key_that_no_line_can_hold_as_it_stands=" + "x" * 60)


@pytest.mark.parametrize("envs", [["Pendulum-v1"], [CARTPOLE, WALKER, "Hopper-v5", "Pendulum-v1"]])
def test_the_legend_lies_inside_the_figure_and_below_the_panels(tmp_path, envs):
    for k, overrides in enumerate(LONG):
        for env in envs:
            fake_run(tmp_path / "runs" / f"{k}-{env.replace('/', '-')}", [*overrides.split(), "seed=0"], env, 0,
                     [-900 + 100 * k, -300])
    result = report([tmp_path / "runs"], tmp_path / "rep")
    fig = learning_curves_figure(group_runs(result["runs"]), result["common"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box, page = legend.get_window_extent(renderer), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    # Each configuration's whole label is there (wrapped, not cut).
    assert ["".join(text.get_text().split()) for text in legend.get_texts()] == ["".join(o.split()) for o in LONG]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert box.y1 <= min(ax.get_tightbbox(renderer).y0 for ax in panels)  # under the tick labels, not over them


def test_the_aggregate_figure_keeps_its_labels_inside(tmp_path):
    dmc_sweep(tmp_path / "sweep")
    result = report([tmp_path / "sweep"], tmp_path / "rep")
    fig = aggregate_figure(result["aggregates"], [row["configuration"] for row in result["aggregates"]])
    fig.canvas.draw()
    renderer, page = fig.canvas.get_renderer(), fig.bbox
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == ["agent=sac", "agent=crossq"]
