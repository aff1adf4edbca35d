"""Several `sac-train` runs side by side on one machine: env steps/s of each, default threads vs threads=1.

    python scripts/bench_threads.py [--runs 1 2 3] [--alternations 2] [--env halfcheetah]

Each case starts N `sac-train` processes at once, exactly as a user starting seeds in N terminals
would (HalfCheetah-v5, 1000 random steps, then one update per step), and reads each run's
metrics.jsonl: its steps/s between steps 1500 and 2500 (updates start at 1000). The cases alternate
(default, threads=1, default, ...) so that drift in the machine's speed hits both. `--variant` adds
other settings to compare, e.g. `--variant threads=2` (what threads=auto chose before it counted
other runs). The first line each run logs (its thread choice and the reason) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FROM, TO = 1_500, 2_500   # measured window, in environment steps
SCHEDULE = ["schedule.total_steps=2500", "schedule.start_steps=1000", "schedule.update_after=1000",
            "schedule.log_every=100", "schedule.eval_every=100000", "schedule.eval_episodes=1",
            "schedule.checkpoint_every=100000", "checkpoint.save_buffer=false", "logging=disabled",
            "logging.progress=false", "device=cpu"]


def sac_train() -> str:
    path = Path(sys.executable).parent / "sac-train"
    return str(path) if path.exists() else "sac-train"


def run_side_by_side(n: int, command: str, variant: list[str], env: str, workdir: Path) -> tuple[list[float], str]:
    """Start n runs at once; their steps/s over the window, and the thread line the first one logged."""
    dirs = [workdir / f"run{i}" for i in range(n)]
    procs = [subprocess.Popen([command, f"env={env}", f"seed={i}", f"hydra.run.dir={d}", *SCHEDULE, *variant],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, d in enumerate(dirs)]
    outputs = [p.communicate()[0] for p in procs]
    for p, out in zip(procs, outputs):
        if p.returncode != 0:
            raise SystemExit(f"a run failed (exit {p.returncode}):\n{out}")
    rates = []
    for d in dirs:
        elapsed = {r["step"]: r["time/elapsed"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
                   if "time/elapsed" in r}
        rates.append((TO - FROM) / (elapsed[TO] - elapsed[FROM]))
    # Each run's thread choices: the first log line, then each change ("step N: now ...").
    thread_lines = ["; ".join(line.split("INFO", 1)[-1].strip() for line in out.splitlines() if "torch thread" in line)
                    for out in outputs]
    return rates, " | ".join(thread_lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 3], help="runs side by side, per case")
    parser.add_argument("--alternations", type=int, default=2)
    parser.add_argument("--env", default="halfcheetah")
    parser.add_argument("--variant", action="append", default=[],
                        help="another setting to compare (space-separated overrides), e.g. threads=2")
    parser.add_argument("--command", action="append", default=[], metavar="LABEL=PATH",
                        help="another sac-train to compare with default settings (e.g. an older checkout's)")
    args = parser.parse_args()
    variants = {"default": (sac_train(), []), "threads=1": (sac_train(), ["threads=1"]),
                **{v: (sac_train(), v.split()) for v in args.variant},
                **{c.split("=", 1)[0]: (c.split("=", 1)[1], []) for c in args.command}}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"usable {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}; env={args.env}; "
          f"steps/s of each run between steps {FROM} and {TO}", flush=True)
    results: dict[tuple[int, str], list[list[float]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="sac-bench-threads-"))
    try:
        for round_ in range(args.alternations):
            for n in args.runs:
                for name, (command, overrides) in variants.items():
                    case = workdir / f"{round_}-{n}-{name.replace('=', '')}"
                    started = time.perf_counter()
                    rates, thread_lines = run_side_by_side(n, command, overrides, args.env, case)
                    shutil.rmtree(case, ignore_errors=True)
                    results.setdefault((n, name), []).append(rates)
                    print(f"round {round_ + 1}: {n} run(s), {name:>10}: "
                          f"{' '.join(f'{r:6.1f}' for r in rates)} steps/s  (together {sum(rates):6.1f}; "
                          f"{time.perf_counter() - started:.0f} s)\n    {thread_lines}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n| what runs | steps/s of each run (median over rounds) | all runs together |")
    print("|---|---|---|")
    for (n, name), rounds in results.items():
        each = [statistics.median(r[i] for r in rounds) for i in range(n)]
        together = statistics.median(sum(r) for r in rounds)
        print(f"| {n} run{'s side by side' if n > 1 else ' alone'}, `{name}` | {', '.join(f'{e:.1f}' for e in each)} "
              f"| {together:.1f} |")


if __name__ == "__main__":
    main()
