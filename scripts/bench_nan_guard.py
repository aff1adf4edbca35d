"""What nan_guard costs per update: SAC updates at HalfCheetah-v5 sizes (batch 256, two hidden
layers of 256) with and without the check, interleaved in rounds so that drift hits both.

    python scripts/bench_nan_guard.py [--rounds 10] [--updates 200] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from hydra import compose, initialize_config_module

from sac_runner.cli.config_store import register_configs
from sac_runner.run.run_config import to_run_config
from sac_runner.run.builders import make_parts, seed_everything
from sac_runner.run.nan_guard import NanGuard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    register_configs()
    with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["env=halfcheetah", "logging=disabled", f"device={args.device}",
                                                       "buffer.capacity=20000"])
    run = to_run_config(cfg)
    seed_everything(0)
    parts = make_parts(run)
    agent, buffer, spaces = parts.agent, parts.buffer, parts.spaces
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        buffer.add(rng.standard_normal(spaces.obs_dim), rng.uniform(-1, 1, spaces.action_dim), rng.standard_normal(),
                   rng.standard_normal(spaces.obs_dim), False)
    guard = NanGuard(agent)

    def per_update(check: bool) -> float:
        start = time.perf_counter()
        for _ in range(args.updates):
            batch = buffer.sample(256)
            metrics = agent.update(batch).metrics
            if check:
                guard.check(metrics, batch)
        if args.device != "cpu":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.updates * 1e3

    per_update(True)  # warm-up
    without, with_guard = [], []
    for _ in range(args.rounds):
        without.append(per_update(False))
        with_guard.append(per_update(True))
    a, b = statistics.median(without), statistics.median(with_guard)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    print(f"update without nan_guard: {a:.3f} ms (median of {args.rounds} rounds of {args.updates})")
    print(f"update with nan_guard:    {b:.3f} ms")
    print(f"cost: {b - a:+.3f} ms per update ({(b - a) / a:+.1%})")


if __name__ == "__main__":
    main()
