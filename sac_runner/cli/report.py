"""sac-report: learning curves and a results table across seeds, from runs' local metrics.

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
from sac_runner.run.report import ReportError, mean_and_spread, report, seeds_cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sac-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sweep directories, run directories, or folders of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: <sweep>/report)")
    args = parser.parse_args(argv)
    try:
        result = report(args.paths, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path, why in result["skipped"]:
        console.print(f"left out {path}: {why}", markup=False, highlight=False, soft_wrap=True)
    table = Table(title="evaluation return across seeds (final: last evaluation, best: highest)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("env", "configuration", "seeds", "final", "final IQM", "best", "best IQM"):
        left = column in ("env", "configuration")
        table.add_column(column, justify="left" if left else "right", no_wrap=not left)
    for row in result["rows"]:
        f, b = row["final"], row["best"]
        table.add_row(row["env"], row["configuration"], seeds_cell(row), mean_and_spread(f),
                      f"{f['iqm']:.1f}", mean_and_spread(b), f"{b['iqm']:.1f}")
    # Piped or redirected output is not cut at 80 columns: the table keeps one line per configuration.
    (console if console.is_terminal else Console(width=200)).print(table)
    console.print(f"wrote {', '.join(str(p) for p in (*result['figures'], result['table']))}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
