"""The command-line entry points: sac-train, sac-eval, sac-export, sac-report. Each parses its
arguments (Hydra or argparse), calls the run machinery (sac_runner.run) and prints the result."""
