"""Speed from pixels, side by side: sac-runner's agent=drq against Stable-Baselines3's SAC with its
CnnPolicy (its default NatureCNN encoder), on the same DMC task from pixels and the same settings.

Each worker runs in a fresh process: it builds the environment with sac-runner's wrappers (the same
frames for both), takes `--warmup` random agent steps, then `--measure` agent steps with one gradient
step each, and prints environment steps per second and milliseconds per update over the measured part.

    python scripts/bench_pixels.py --task cartpole-swingup --batch-size 128 --measure 60
    python scripts/bench_pixels.py --worker sac-runner ...   # one side only

Needs the dmc and bench extras (stable-baselines3).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

WORKERS = ("sac-runner", "sb3")


def build_env(args):
    from sac_runner.config import EnvConfig, dmc_id
    from sac_runner.run.envs import make_env
    cfg = EnvConfig(id=dmc_id(args.task), task=args.task, pixels=True, image_size=args.image_size)
    return make_env(cfg, seed=0), cfg


def run_sac_runner(args) -> dict:
    import numpy as np
    import torch
    from sac_runner.config import AgentConfig, BufferConfig, RunConfig, ScheduleConfig
    from sac_runner.run.builders import make_agent, make_replay_buffer
    from sac_runner.run.envs import env_spaces
    torch.set_num_threads(args.threads)
    env, env_cfg = build_env(args)
    spaces = env_spaces(env, env_cfg.frames_per_observation)
    agent_cfg = AgentConfig(actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, alpha_init=0.1, hidden_sizes=[args.hidden] * 2,
                            tau=0.01, encoder=args.encoder, encoder_tau=0.05, augmentation="shift",
                            policy_update_every=2, target_update_every=2, compile="off")
    run = RunConfig(env=env_cfg, agent=agent_cfg, buffer=BufferConfig(capacity=args.warmup + args.measure + 10),
                    schedule=ScheduleConfig(batch_size=args.batch_size), device="cpu")
    agent = make_agent(run, spaces, torch.device("cpu"))
    buffer = make_replay_buffer(run, spaces, torch.device("cpu"))
    obs, _ = env.reset(seed=0)

    def step(action):
        nonlocal obs
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = env.reset()[0] if terminated or truncated else next_obs

    for _ in range(args.warmup):
        step(env.action_space.sample())
    update_seconds = 0.0
    start = time.perf_counter()
    for _ in range(args.measure):
        step(agent.act(obs[None])[0])
        t = time.perf_counter()
        agent.update(buffer.sample(args.batch_size))
        update_seconds += time.perf_counter() - t
    elapsed = time.perf_counter() - start
    return {"env_steps_per_s": args.measure * env_cfg.env_steps_per_agent_step / elapsed,
            "update_ms": 1000 * update_seconds / args.measure, "bytes_per_transition": buffer.bytes_per_transition}


def run_sb3(args) -> dict:
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    torch.set_num_threads(args.threads)
    env, env_cfg = build_env(args)

    class Clock(BaseCallback):
        start = None

        def _on_step(self) -> bool:
            if self.num_timesteps == args.warmup + 1:
                self.start = time.perf_counter()
            return True

    clock = Clock()
    model = SAC("CnnPolicy", env, buffer_size=args.warmup + args.measure + 10, batch_size=args.batch_size,
                learning_starts=args.warmup, train_freq=1, gradient_steps=1, learning_rate=1e-3, tau=0.01,
                policy_kwargs={"net_arch": [args.hidden] * 2}, device="cpu", seed=0, verbose=0)
    update_seconds = [0.0]
    train = model.train

    def timed_train(*a, **k):
        t = time.perf_counter()
        train(*a, **k)
        update_seconds[0] += time.perf_counter() - t

    model.train = timed_train
    model.learn(total_timesteps=args.warmup + args.measure + 1, callback=clock)
    elapsed = time.perf_counter() - clock.start
    buffer = model.replay_buffer
    stored = sum(getattr(buffer, name).nbytes for name in ("observations", "next_observations", "actions", "rewards",
                                                          "dones", "timeouts") if getattr(buffer, name, None) is not None)
    return {"env_steps_per_s": args.measure * env_cfg.env_steps_per_agent_step / elapsed,
            "update_ms": 1000 * update_seconds[0] / args.measure,
            "bytes_per_transition": stored / buffer.buffer_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=WORKERS)
    parser.add_argument("--task", default="cartpole-swingup")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=300, help="random agent steps before measuring")
    parser.add_argument("--measure", type=int, default=60, help="agent steps measured, one update each")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", default="drq", choices=("drq", "nature"), help="sac-runner's encoder")
    parser.add_argument("--alternations", type=int, default=1, help="A B rounds (fresh processes)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_sac_runner(args) if args.worker == "sac-runner" else run_sb3(args)))
        return
    passed = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
              if key not in ("worker", "alternations")]
    results = {worker: [] for worker in WORKERS}
    for _ in range(args.alternations):
        for worker in WORKERS:
            out = subprocess.run([sys.executable, __file__, "--worker", worker, *passed], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]
            results[worker].append(json.loads(out))
    print(f"{args.task} from pixels ({args.image_size}px), sac-runner's {args.encoder} encoder against SB3's NatureCNN, "
          f"batch {args.batch_size}, hidden {args.hidden}, "
          f"{args.threads} thread(s), {args.measure} agent steps with one update each:")
    for worker, rows in results.items():
        for key in ("env_steps_per_s", "update_ms", "bytes_per_transition"):
            values = sorted(r[key] for r in rows)
            print(f"  {worker:10s} {key:22s} median {values[len(values) // 2]:10.1f}  ({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
