"""sac-report: learning curves and a results table across seeds, from runs' local metrics; across the
tasks of a suite, the aggregate of normalized scores.

    sac-report outputs/sweeps/<sweep>            # every job of a sweep
    sac-report outputs/runs/<run A> <run B> ...  # any runs (or folders holding runs)

What it reads and writes: sac_runner/run/report.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from sac_runner.run.console import console
from sac_runner.run.report import ReportError, Thresholds, report, return_cells, seeds_cell, time_to_cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sac-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sweep directories, run directories, or folders of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: <sweep>/report)")
    parser.add_argument("--threshold", action="append", default=[], metavar="[ENV=]RETURN",
                        help="time to this evaluation return: steps and wall clock (repeatable, per environment)")
    args = parser.parse_intermixed_args(argv)  # paths and options in any order
    # `threshold=3000` among the paths reads as --threshold 3000 (the form of sac-train's overrides).
    args.threshold += [str(p).removeprefix("threshold=") for p in args.paths if str(p).startswith("threshold=")]
    args.paths = [p for p in args.paths if not str(p).startswith("threshold=")]
    try:
        result = report(args.paths, args.out, Thresholds.parse(args.threshold))
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path, why in result["skipped"]:
        console.print(f"left out {path}: {why}", markup=False, highlight=False, soft_wrap=True)
    table = Table(title="evaluation return across seeds (final: last evaluation, best: highest)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    timed = bool(args.threshold)
    for column in ("env", "configuration", "seeds", "final", "final 95% CI", "final IQM", "best", "best IQM",
                   "time per run", *(("threshold", "steps to it", "time to it") if timed else ())):
        left = column in ("env", "configuration", "seeds")
        table.add_column(column, justify="left" if left else "right", no_wrap=not left)
    for row in result["rows"]:
        timing = ("" if row["threshold"] is None else f"{row['threshold']:g}", *time_to_cell(row)) if timed else ()
        table.add_row(row["env"], row["configuration"], seeds_cell(row), *return_cells(row), *timing)
    # Piped or redirected output is not cut at 80 columns: the table keeps one line per configuration.
    out = console if console.is_terminal else Console(width=200)
    out.print(table)
    if result["common"]:
        out.print(f"common to every run: {' '.join(result['common'])}", markup=False, highlight=False, soft_wrap=True)
    if result["aggregates"]:
        out.print(aggregate_table(result["aggregates"]))
    console.print(f"wrote {', '.join(str(p) for p in (*result['figures'], result['table']))}", soft_wrap=True)
    return 0


def aggregate_table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="normalized final score across tasks (IQM: interquartile mean; 95% stratified bootstrap CI)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("suite", "configuration", "tasks", "runs", "IQM", "IQM 95% CI", "mean", "median"):
        left = column in ("suite", "configuration")
        table.add_column(column, justify="left" if left else "right", no_wrap=not left)
    for row in rows:
        low, high = row["iqm_ci"]
        table.add_row(row["suite"], row["configuration"], str(row["tasks"]), str(row["runs"]), f"{row['iqm']:.3f}",
                      f"[{low:.3f}, {high:.3f}]", f"{row['mean']:.3f}", f"{row['median']:.3f}")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
