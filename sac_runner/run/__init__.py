"""The run machinery: building env, agent and buffer from a config (builders), the training loop,
evaluation, checkpoints and the run directory's layout, trackers, signals, sweeps and reports.
Used by the command-line entry points (sac_runner.cli); uses the mathematics (sac_runner.algo)."""
