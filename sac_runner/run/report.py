"""Learning curves and a results table across seeds, from runs' local metrics (sac-report).

    sac-report outputs/sweeps/<sweep>            # every job of a sweep
    sac-report outputs/runs/<run A> <run B> ...  # any runs (or folders holding runs)

A run's configuration is its command-line overrides without the seed (and without where it logs or
runs), its panel is its environment. Runs of one configuration are its seeds. A configuration is
labelled by the overrides that differ between configurations; those common to all are stated once.
Writes into --out (default: <sweep>/report, or outputs/reports/<time>):

- learning_curves.png / .svg: evaluation return over environment steps, one panel per environment,
  one line per configuration: the mean over seeds with a 95% bootstrap confidence band;
- aggregate.png / .svg (runs spanning two or more tasks of a suite with a known score range, see
  suites.py: DeepMind Control, Atari): per configuration, the interquartile mean and the mean of the
  runs' normalized final scores over all tasks pooled, with 95% stratified bootstrap intervals
  (Agarwal et al., 2021; statistics.aggregate), also a table in results.md;
- health.png / .svg (runs with health measurements): per run, the value bias relative to the return
  scale, the dormant fraction of critic and actor, and the entropy against its target, over steps;
- results.md: final and best evaluation return per configuration (mean, standard deviation, 95%
  bootstrap interval of the mean, interquartile mean, number of seeds) and the wall-clock training
  time per run (mean over seeds); with thresholds (`--threshold 3000`, or per environment
  `--threshold HalfCheetah-v5=3000`), the time to threshold: the first evaluation step at which the
  configuration's mean return over seeds reaches it, and the mean wall-clock seconds the seeds had
  trained by then.

results.md ends with the health alerts each run raised (alerts.jsonl), so a sweep's failed seeds explain
themselves. A run that is still training (or stopped before its last step) is reported with what it has so far,
marked as running (or incomplete); runs that failed or have no evaluation are listed and left out.
With one seed per configuration there is no spread to show: no ± and no band.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from sac_runner.run.run_config import renamed_override
from sac_runner.run.hardware import RunRegistry
from sac_runner.run.report_plot import HEALTH_PANELS, plot_aggregate, plot_health, plot_learning_curves
from sac_runner.run.run_dir import RunDir
from sac_runner.run.statistics import BOOTSTRAP_RESAMPLES, aggregate, summary
from sac_runner.run.suites import SCORES, scale_of
from sac_runner.run.sweep import INFRASTRUCTURE, overrides_of, planned_steps
from sac_runner.run.tracker import STEP_KEY

RETURN_KEY = "eval/return_mean"
HEALTH_KEYS = tuple(key for _, keys in HEALTH_PANELS for key in keys)


@dataclass
class Run:
    path: Path
    env: str
    overrides: tuple[str, ...]  # those that define its configuration
    seed: int
    steps: np.ndarray    # evaluation steps
    returns: np.ndarray  # mean evaluation return at each
    elapsed: np.ndarray  # seconds the run had trained at each (nan where its metrics do not say)
    configuration: str = ""  # named once all runs are read (name_configurations)
    status: str = ""         # "" when finished, else e.g. "running: step 4000 of 20000"
    health: dict[str, np.ndarray] = field(default_factory=dict)  # HEALTH_KEYS at each evaluation (nan: not measured)
    alerts: list[dict] = field(default_factory=list)             # the records of its alerts.jsonl

    @property
    def final(self) -> float:
        return float(self.returns[-1])

    @property
    def best(self) -> float:
        return float(self.returns.max())

    @property
    def seconds(self) -> float:
        """Seconds the run had trained at its last evaluation (nan if its metrics do not say)."""
        return float(self.elapsed[-1])


@dataclass
class Group:
    """The seeds of one configuration on one environment."""

    env: str
    configuration: str
    runs: list[Run] = field(default_factory=list)

    def curve(self, values: str = "returns") -> tuple[np.ndarray, np.ndarray]:
        """Evaluation steps every seed has, and the returns (or elapsed seconds) there: (steps, an array
        of shape (seeds, steps))."""
        common = sorted(set.intersection(*(set(r.steps.tolist()) for r in self.runs)))
        found = np.array([[getattr(r, values)[r.steps.tolist().index(s)] for s in common] for r in self.runs])
        return np.array(common), found

    def time_to(self, threshold: float) -> tuple[int, float] | None:
        """The first evaluation step where the mean return over seeds reaches `threshold`, and the mean
        seconds of training the seeds needed to get there; None if it is never reached."""
        steps, returns = self.curve()
        reached = np.flatnonzero(returns.mean(axis=0) >= threshold)
        if not len(reached):
            return None
        _, elapsed = self.curve("elapsed")
        return int(steps[reached[0]]), float(np.mean(elapsed[:, reached[0]]))


# ---- reading runs -----------------------------------------------------------------------------------
def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories (those Hydra wrote a config into) at or below each path, in order."""
    found: list[Path] = []
    for path in paths:
        if RunDir(path).is_run():
            found.append(path)
        else:
            found += sorted(RunDir.configs_below(path),
                            key=lambda p: (str(p.parent), int(p.name) if p.name.isdigit() else -1, p.name))
    return list(dict.fromkeys(found))


def configuration_overrides(overrides: list[str]) -> tuple[str, ...]:
    """The overrides that define a configuration: not the seed, the environment (the panel), or where
    the run logs and computes."""
    overrides = [renamed_override(o) for o in overrides]  # a run from before keys moved (config.MOVED_KEYS)
    return tuple(o for o in overrides
                 if o.split("=")[0].lstrip("+~") not in (*INFRASTRUCTURE, "seed", "env", "env.id", "env.task")
                 and not o.startswith(("logging", "hydra")))


def name_configurations(runs: list[Run]) -> list[str]:
    """Name each run's configuration by the overrides that differ between configurations; returns
    those common to all (stated once, in the figure's title and under the table, rather than in every
    label). "default" is a configuration with no override beyond the common ones; when every run has
    the same overrides (seeds of one configuration, `agent=crossq`), it is "all runs"."""
    common = set.intersection(*(set(r.overrides) for r in runs))
    for run in runs:
        run.configuration = " ".join(o for o in run.overrides if o not in common) or (
            "all runs" if common and all(set(r.overrides) == common for r in runs) else "default")
    return [o for o in runs[0].overrides if o in common]


def read_run(path: Path) -> tuple[Run | None, str | None]:
    """The run, or None and why it is left out."""
    run_dir = RunDir(path)
    failed = failure_of(run_dir)
    metrics = run_dir.metrics
    if not metrics.exists():
        return None, failed or f"no {metrics.name}"
    config = OmegaConf.load(run_dir.config)
    evaluations, elapsed, health = [], float("nan"), []
    for number, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return None, failed or f"{metrics.name} line {number} is not JSON (a crashed write?)"
        elapsed = record.get("time/elapsed", elapsed)  # on the evaluation's record, or the last log's before it
        if record.get(RETURN_KEY) is not None:
            evaluations.append((record[STEP_KEY], record[RETURN_KEY], elapsed))
            health.append([_number(record.get(key)) for key in HEALTH_KEYS])
    if not evaluations:
        return None, failed or "no evaluation recorded"
    total = planned_steps(config)
    last = evaluations[-1][0]
    finished = total is not None and last >= total
    if failed and not finished:  # a finished run's failure.txt is a later attempt's
        return None, failed
    status = ""
    if total is not None and not finished:
        state = "running" if path.resolve() in running_run_dirs() else "incomplete"
        status = f"{state}: step {last} of {total}"
    steps, returns, seconds = zip(*evaluations)
    measured = dict(zip(HEALTH_KEYS, np.array(health, dtype=float).T)) if any(
        not np.isnan(v) for row in health for v in row) else {}
    return Run(path, str(config.env.id), configuration_overrides(overrides_of(path)), int(config.seed),
               np.array(steps), np.array(returns, dtype=float), np.array(seconds, dtype=float), status=status,
               health=measured, alerts=run_dir.alert_records()), None


def failure_of(run_dir: RunDir) -> str | None:
    """Why the run's job failed (its failure.txt), or None. A sweep started again with other values
    writes its refusal into the directory of a run that had finished: that run is still reported."""
    if not run_dir.failure.exists():
        return None
    lines = run_dir.failure.read_text(encoding="utf-8").splitlines()
    return f"failed ({lines[1].removeprefix('error: ') if len(lines) > 1 else 'see ' + run_dir.failure.name})"


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def running_run_dirs() -> set[Path]:
    """The run directories of the sac-train processes alive on this machine (the run registry)."""
    return {Path(r["run_dir"]) for r in RunRegistry().live_runs() if r.get("run_dir")}


def group_runs(runs: list[Run]) -> list[Group]:
    """The seeds of each (environment, configuration), an environment's groups together (runs from
    several sweep directories: the second directory's rows join their environment's, not the end)."""
    groups: dict[tuple[str, str], Group] = {}
    for run in runs:
        groups.setdefault((run.env, run.configuration), Group(run.env, run.configuration)).runs.append(run)
    env_order = {env: k for k, env in enumerate(dict.fromkeys(run.env for run in runs))}
    return sorted(groups.values(), key=lambda group: env_order[group.env])  # stable: first seen first


# ---- outputs ------------------------------------------------------------------------------------------
def results_rows(groups: list[Group], thresholds: Thresholds | None = None) -> list[dict[str, object]]:
    rows = []
    for group in groups:
        final = summary([r.final for r in group.runs])
        best = summary([r.best for r in group.runs])
        unfinished = [r.status for r in group.runs if r.status]
        threshold = thresholds.of(group.env) if thresholds else None
        rows.append({"env": group.env, "configuration": group.configuration, "seeds": final["n"],
                     "final": final, "best": best, "unfinished": unfinished, "threshold": threshold,
                     "seconds_per_run": float(np.mean([r.seconds for r in group.runs])),
                     "time_to": None if threshold is None else group.time_to(threshold)})
    return rows


@dataclass
class Thresholds:
    """The returns to time (sac-report --threshold): one for every environment, or one per environment."""

    default: float | None = None
    per_env: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, values: list[str]) -> "Thresholds":
        found = cls()
        for value in values:
            env, _, number = value.rpartition("=")
            try:
                threshold = float(number)
            except ValueError:
                raise ReportError(f"--threshold {value} is not a return; write --threshold 3000 or "
                                  "--threshold HalfCheetah-v5=3000") from None
            if env:
                found.per_env[env] = threshold
            else:
                found.default = threshold
        return found

    def of(self, env: str) -> float | None:
        return self.per_env.get(env, self.default)


def time_to_cell(row: dict[str, object]) -> tuple[str, str]:
    """('steps', 'seconds') to the row's threshold, or ('not reached', '') / ('', '') without one."""
    if row["threshold"] is None:
        return "", ""
    if row["time_to"] is None:
        return "not reached", ""
    steps, seconds = row["time_to"]
    return f"{steps:_}", "?" if np.isnan(seconds) else f"{seconds:.0f} s"


def mean_and_spread(stats: dict[str, float]) -> str:
    """'mean ± std' over seeds; the mean alone for one seed (a spread of one value means nothing)."""
    return f"{stats['mean']:.1f}" if stats["n"] == 1 else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def interval_cell(stats: dict[str, float]) -> str:
    """'[low, high]', the 95% bootstrap interval of the mean over seeds; '-' for one seed."""
    return "-" if stats["n"] == 1 else f"[{stats['ci_low']:.1f}, {stats['ci_high']:.1f}]"


def run_time_cell(row: dict[str, object]) -> str:
    seconds = row["seconds_per_run"]
    return "?" if np.isnan(seconds) else f"{seconds / 60:.1f} min"


def return_cells(row: dict[str, object]) -> tuple[str, ...]:
    """The table's return and time columns (RETURN_COLUMNS) for one configuration."""
    f, b = row["final"], row["best"]
    return (mean_and_spread(f), interval_cell(f), f"{f['iqm']:.1f}", mean_and_spread(b), f"{b['iqm']:.1f}",
            run_time_cell(row))


RETURN_COLUMNS = ("final return (mean ± std)", "final 95% CI", "final IQM", "best return (mean ± std)", "best IQM",
                  "wall clock per run")


def seeds_cell(row: dict[str, object]) -> str:
    return f"{row['seeds']}" + (f" ({'; '.join(row['unfinished'])})" if row["unfinished"] else "")


def alerts_markdown(runs: list[Run]) -> str:
    """The health alerts of every run, or a line saying the measured runs raised none."""
    alerted = [run for run in runs if run.alerts]
    if not alerted:
        measured = sum(1 for run in runs if run.health)
        return f"\nHealth alerts: none ({measured} of {len(runs)} runs measured their health).\n" if measured else ""
    text = "\n## Health alerts\n\n"
    for run in alerted:
        text += f"- `{run.path}` ({run.env}, {run.configuration}, seed {run.seed}):\n"
        text += "".join(f"  - step {a[STEP_KEY]}: {a['text']}\n" for a in run.alerts)
    return text


def results_markdown(rows: list[dict[str, object]], common: list[str], skipped: list[tuple[Path, str]]) -> str:
    lines = ["| environment | configuration | seeds | " + " | ".join(RETURN_COLUMNS) + " |",
             "|---|---|---:|" + "---:|" * len(RETURN_COLUMNS)]
    timed = any(row["threshold"] is not None for row in rows)
    if timed:
        lines = [lines[0] + " threshold | steps to it | wall clock to it |", lines[1] + "---:|---:|---:|"]
    for row in rows:
        line = f"| {row['env']} | {row['configuration']} | {seeds_cell(row)} | " + " | ".join(return_cells(row)) + " |"
        if timed:
            steps, seconds = time_to_cell(row)
            threshold = "" if row["threshold"] is None else f"{row['threshold']:g}"
            line += f" {threshold} | {steps} | {seconds} |"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text += ("\nFinal: the last evaluation (mean return over its episodes); best: the highest evaluation of the run. "
             "Statistics across seeds; 95% CI: percentile bootstrap interval of the mean over seeds; IQM: "
             "interquartile mean; wall clock per run: the seeds' mean training time up to their last evaluation. "
             "A run marked running or incomplete counts with its evaluations so far.\n")
    if timed:
        text += ("\nSteps to it: the first evaluation at which the mean return over seeds reaches the threshold; "
                 "wall clock to it: the seeds' mean training time up to that evaluation.\n")
    if common:
        text += f"\nCommon to every run: `{' '.join(common)}`.\n"
    if skipped:
        text += "\nLeft out:\n\n" + "".join(f"- `{path}`: {why}\n" for path, why in skipped)
    return text


def suite_aggregates(groups: list[Group]) -> tuple[list[dict[str, object]], list[str]]:
    """For each suite whose tasks the runs span (two or more), per configuration, the aggregate of its
    runs' normalized final returns across tasks (statistics.aggregate); and the environments with no
    known score range (suites.scale_of), left out."""
    scores: dict[str, dict[str, dict[str, np.ndarray]]] = {}  # suite -> configuration -> env -> scores
    unscaled = []
    for group in groups:
        scale = scale_of(group.env)
        if scale is None:
            unscaled.append(group.env)
            continue
        scores.setdefault(scale.suite, {}).setdefault(group.configuration, {})[group.env] = scale.normalize(
            [run.final for run in group.runs])
    rows = []
    for suite, configurations in scores.items():
        if len({env for tasks in configurations.values() for env in tasks}) < 2:
            continue  # one task: its rows in the results table say it all
        for configuration, tasks in configurations.items():
            rows.append({"suite": suite, "configuration": configuration, "envs": list(tasks),
                         **aggregate(list(tasks.values()))})
    return rows, list(dict.fromkeys(unscaled))


def aggregate_markdown(rows: list[dict[str, object]], unscaled: list[str]) -> str:
    """The aggregate across tasks per suite and configuration, or why there is none."""
    if not rows:
        if len(unscaled) < 2:
            return ""
        return (f"\nNo aggregate across environments: {', '.join(unscaled)} have no known score range (sac-report "
                "scales DeepMind Control and Atari tasks).\n")
    lines = ["\n## Aggregate across tasks\n",
             "| suite | configuration | tasks | runs | IQM | IQM 95% CI | mean | mean 95% CI | median |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['suite']} | {row['configuration']} | {row['tasks']} | {row['runs']} | {row['iqm']:.3f} | "
                     f"[{row['iqm_ci'][0]:.3f}, {row['iqm_ci'][1]:.3f}] | {row['mean']:.3f} | "
                     f"[{row['mean_ci'][0]:.3f}, {row['mean_ci'][1]:.3f}] | {row['median']:.3f} |")
    suites = list(dict.fromkeys(row["suite"] for row in rows))
    text = "\n".join(lines) + "\n"
    text += ("\nScores: each run's final return normalized, " + "; ".join(f"{suite} {SCORES[suite]}" for suite in suites)
             + ". IQM: interquartile mean of the scores of all runs on all tasks, pooled; mean and median likewise. "
             f"95% CI: percentile interval over {BOOTSTRAP_RESAMPLES} stratified bootstrap resamples (each task's runs "
             "drawn with replacement from that task's alone), with a fixed seed: the same runs give the same "
             "interval (Agarwal et al., 2021).\n")
    for suite in suites:
        task_sets = {tuple(sorted(row["envs"])) for row in rows if row["suite"] == suite}
        if len(task_sets) > 1:
            text += f"\nThe configurations ran different {suite} tasks: their aggregates are not comparable.\n"
    if unscaled:
        text += f"\nLeft out of the aggregate (no known score range): {', '.join(unscaled)}.\n"
    return text


def default_out_dir(paths: list[Path]) -> Path:
    if len(paths) == 1 and not RunDir(paths[0]).is_run():
        return paths[0] / "report"
    return Path("outputs") / "reports" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def report(paths: list[Path], out_dir: Path | None = None, thresholds: Thresholds | None = None) -> dict[str, object]:
    """Read the runs, write the plots and the table; returns what was written and what was left out."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise ReportError(f"{missing[0]} does not exist; pass sweep directories or run directories under outputs/")
    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        raise ReportError(f"no runs under {' '.join(map(str, paths))} (a run directory holds {RunDir(Path()).config}); "
                          "pass a sweep directory (outputs/sweeps/<sweep>) or run directories")
    runs, skipped = [], []
    for run_dir in run_dirs:
        run, why = read_run(run_dir)
        if run is None:
            skipped.append((run_dir, why))
        else:
            runs.append(run)
    if not runs:
        raise ReportError(f"none of the {len(run_dirs)} runs can be reported: "
                          + "; ".join(f"{p}: {why}" for p, why in skipped[:3]))
    out_dir = out_dir or default_out_dir(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = name_configurations(runs)
    groups = group_runs(runs)
    rows = results_rows(groups, thresholds)
    aggregates, unscaled = suite_aggregates(groups)
    figures = plot_learning_curves(groups, out_dir, common)
    if aggregates:
        figures += plot_aggregate(aggregates, list(dict.fromkeys(g.configuration for g in groups)), out_dir)
    if any(run.health for run in runs):
        figures += plot_health(runs, out_dir)
    table_path = out_dir / "results.md"
    table_path.write_text(results_markdown(rows, common, skipped) + aggregate_markdown(aggregates, unscaled)
                          + alerts_markdown(runs), encoding="utf-8")
    return {"figures": figures, "table": table_path, "rows": rows, "common": common, "skipped": skipped,
            "runs": runs, "aggregates": aggregates}


class ReportError(Exception):
    pass
