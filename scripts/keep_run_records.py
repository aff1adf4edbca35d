"""Copy the text records of runs (what sac-report reads) out of outputs/, to keep or share them.

    python scripts/keep_run_records.py outputs/sweeps/<sweep> docs/runs/<sweep>

For every run at or below the first folder (a run directory, a sweep, or a folder of either), its
.hydra/config.yaml and overrides.yaml, metrics.jsonl, alerts.jsonl and train.log are copied to the
same relative place below the second (about 120 KB for a 100k-step Hopper run). Checkpoints, replay
buffers, videos, W&B and TensorBoard files stay behind. `sac-report docs/runs/<sweep>` then makes the same
table and curves as on the runs themselves (the tables of docs/benchmarks.md are kept this way in docs/runs/).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from sac_runner.run.report import find_run_dirs
from sac_runner.run.run_dir import RunDir


def records_of(run: RunDir) -> list[Path]:
    return [p for p in (run.config, run.overrides, run.metrics, run.alerts, run.log) if p.exists()]


def keep(source: Path, destination: Path) -> int:
    """Copy the records of the runs below `source`; return how many runs."""
    runs = find_run_dirs([source])
    for run_path in runs:
        for record in records_of(RunDir(run_path)):
            target = destination / record.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(record, target)
    return len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run directory, a sweep, or a folder holding them")
    parser.add_argument("destination", type=Path)
    args = parser.parse_args()
    if not args.source.is_dir():
        sys.exit(f"error: {args.source} is not a folder; give a run directory or a sweep (outputs/sweeps/<sweep>)")
    kept = keep(args.source, args.destination)
    if not kept:
        sys.exit(f"error: no run below {args.source} (no .hydra/config.yaml); give a run directory or a sweep")
    print(f"kept the records of {kept} run{'s' if kept > 1 else ''} in {args.destination}")


if __name__ == "__main__":
    main()
