"""The time of one gradient step (SAC.update) under each agent.compile mode, side by side in one process.

    python scripts/bench_update.py [--agents sac crossq_small droq] [--compile off compile] [--rounds 5]
                                   [--updates 60] [--threads 1] [--obs-dim 17] [--action-dim 6] [--discrete]

Each agent preset is built as sac-train builds it (HalfCheetah-v5's sizes by default: 17 observations,
6 actions, batch 256) once per mode; the modes then alternate, `--updates` updates per round, so that
drift in the machine's speed hits every mode. Also printed: the time the first updates took (compiling,
with Inductor's on-disk cache as it is) and one observation's trip through the policy (acting).
--discrete builds discrete SAC with --action-dim actions (e.g. --agents sac_discrete --obs-dim 8
--action-dim 4, LunarLander's sizes).
What a whole training step costs (environment, acting, replay, update): scripts/bench.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def build(preset: str, mode: str, obs_dim: int, action_dim: int, discrete: bool = False):
    from hydra import compose, initialize_config_module

    from sac_runner.algo.discrete_sac import DiscreteSAC
    from sac_runner.algo.sac import SAC
    from sac_runner.cli.config_store import register_configs
    from sac_runner.run.run_config import to_run_config

    register_configs()
    with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"agent={preset}", f"agent.compile={mode}", "device=cpu"])
    run = to_run_config(cfg)
    agent_class = DiscreteSAC if discrete else SAC
    return agent_class(obs_dim, action_dim, run.agent, torch.device("cpu")), run.schedule.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["sac", "crossq_small"])
    parser.add_argument("--compile", nargs="+", default=["off", "compile"], choices=["off", "compile"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=60, help="updates timed per round and mode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--obs-dim", type=int, default=17)
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--discrete", action="store_true", help="discrete SAC with --action-dim actions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sac_runner.algo.replay_buffer import Batch

    for preset in args.agents:
        agents, first = {}, {}
        for mode in args.compile:
            torch.manual_seed(0)
            agents[mode], batch_size = build(preset, mode, args.obs_dim, args.action_dim, args.discrete)
        g = torch.Generator().manual_seed(0)
        actions = (torch.randint(0, args.action_dim, (batch_size, 1), generator=g).float() if args.discrete
                   else torch.rand(batch_size, args.action_dim, generator=g) * 2 - 1)
        batch = Batch(torch.randn(batch_size, args.obs_dim, generator=g), actions, torch.randn(batch_size, generator=g),
                      torch.randn(batch_size, args.obs_dim, generator=g), (torch.rand(batch_size, generator=g) < 0.01).float())
        obs = np.zeros(args.obs_dim, dtype=np.float32)
        for mode, agent in agents.items():
            start = time.perf_counter()
            for _ in range(6):  # every piece compiled (the actor's every policy_update_every-th update)
                agent.update(batch)
            agent.act(obs)
            first[mode] = time.perf_counter() - start
        update_ms = {mode: [] for mode in agents}
        act_ms = {mode: [] for mode in agents}
        for _ in range(args.rounds):
            for mode, agent in agents.items():
                start = time.perf_counter()
                for _ in range(args.updates):
                    agent.update(batch)
                update_ms[mode].append((time.perf_counter() - start) / args.updates * 1e3)
                start = time.perf_counter()
                for _ in range(200):
                    agent.act(obs)
                act_ms[mode].append((time.perf_counter() - start) / 200 * 1e3)
        reference = args.compile[0]
        for mode in agents:
            ratios = [a / b for a, b in zip(update_ms[mode], update_ms[reference])]
            print(f"agent={preset} compile={mode}: update {statistics.median(update_ms[mode]):.2f} ms "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in update_ms[mode])}), "
                  f"x{statistics.median(ratios):.2f} of {reference}'s time, acting "
                  f"{statistics.median(act_ms[mode]):.3f} ms, first 6 updates {first[mode]:.1f} s", flush=True)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch of the preset, "
          f"{args.obs_dim} observations, {args.action_dim} {'discrete ' if args.discrete else ''}actions")


if __name__ == "__main__":
    main()
