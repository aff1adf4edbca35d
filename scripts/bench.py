"""Training throughput of sac-runner against its peers, Stable-Baselines3 and SBX (SB3 in JAX), side by
side on the same machine.

    python scripts/bench.py [--agents sac crossq_small] [--peers sb3 sbx] [--env HalfCheetah-v5]
                            [--alternations 3] [--measure 1500] [--num-envs 1 8]
                            [--device cpu|cuda] [--compile off compile cudagraphs] [--json results.json]
    python scripts/bench.py --setup-peers [--peers sb3 sbx]     (install the peers, run nothing)
    (or: make bench ARGS="...")

Every library trains with identical hyperparameters: one gradient step per environment step, batch 256,
two hidden layers of 256, 1000 uniform-random steps before learning, on one device (--device, default:
the GPU when there is one). --agents picks sac-runner's presets: `sac` is compared with SB3's and SBX's
SAC; `crossq_small` (256-wide critics) with SBX's CrossQ at the same widths
(net_arch pi [256, 256], qf [256, 256]; the other hyperparameters are the CrossQ paper's in both).

Each peer lives in its own virtual environment under .venv-peers/<peer>/, made at the first use with
the same torch, gymnasium and MuJoCo versions as this one (so the environment and its simulator are the
same code), and the peer's pinned release (PEER_PACKAGES). SBX runs on JAX's CPU backend.

Each run is a fresh process; the runs alternate `--alternations` times so that drift in the machine's
speed hits all. Steps per second are measured after `--warmup` learning steps (compiling and CUDA-graph
capture happen there), over `--measure` steps. Also printed per sac-runner run: its update time alone,
its fraction of the FLOP floor (the update's matrix-product FLOPs at the GEMM throughput measured on that
device), the time spent compiling; for every run, peak host memory and peak GPU memory. `--num-envs 1 8`
runs sac-runner with 1 and 8 environments (env.num_envs) at the same update-to-data ratio; `--compile`
lists the agent.compile modes to run (default: off on a CPU, all three on a GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

RANDOM_STEPS = 1_000
BATCH, HIDDEN = 256, 256
AGENTS = ("sac", "crossq_small")
# Each peer's release, installed into its own venv (.venv-peers/<peer>/) beside the versions of torch,
# gymnasium and MuJoCo this environment has; and which of sac-runner's presets each peer has a match for.
PEER_PACKAGES = {"sb3": ["stable-baselines3==2.9.2"], "sbx": ["sbx-rl==0.28.0"]}
PEER_AGENTS = {"sb3": ("sac",), "sbx": ("sac", "crossq_small")}
PEER_NAMES = {"sb3": "Stable-Baselines3 2.9.2", "sbx": "SBX 0.28.0"}
PEER_VENVS = Path(__file__).resolve().parent.parent / ".venv-peers"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- workers: one run each, in its own process -------------------------------------------------------

def _peak_gpu_mib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def run_sac_runner(env_id: str, warmup: int, measure: int, device: str, agent: str = "sac", num_envs: int = 1,
                   compile_mode: str = "off") -> dict:
    import tempfile

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from sac_runner.cli.config_store import register_configs
    from sac_runner.run.run_config import to_run_config
    from sac_runner.run.builders import make_parts, seed_everything
    from sac_runner.run.loop import Trainer
    from sac_runner.run.run_dir import RunDir
    from sac_runner.run.tracker import Tracker

    register_configs()
    total = RANDOM_STEPS + warmup + measure
    overrides = [f"agent={agent}", f"env.id={env_id}", "logging=disabled", "logging.progress=false", f"device={device}",
                 f"agent.compile={compile_mode}",
                 f"schedule.total_steps={total}", f"schedule.start_steps={RANDOM_STEPS}",
                 f"schedule.update_after={RANDOM_STEPS}", f"schedule.batch_size={BATCH}",
                 f"agent.actor_hidden_sizes=[{HIDDEN},{HIDDEN}]", f"agent.critic_hidden_sizes=[{HIDDEN},{HIDDEN}]",
                 f"schedule.log_every={measure}",
                 f"schedule.eval_every={10 * total}", f"schedule.checkpoint_every={10 * total}",
                 "schedule.eval_episodes=1", "checkpoint.save_buffer=false", "buffer.capacity=1000000",
                 f"env.num_envs={num_envs}"]
    with initialize_config_module(config_module="sac_runner.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    run = to_run_config(cfg)
    seed_everything(0)
    parts = make_parts(run)
    run_dir = RunDir(Path(tempfile.mkdtemp(prefix="sac-bench-")))
    trainer = Trainer(run, parts, run_dir, OmegaConf.to_container(cfg, resolve=True))
    marks: dict[int, float] = {}
    update = parts.agent.update

    def timed_update(batch):  # note the wall clock at the first updates at or after the measured steps
        for mark in (RANDOM_STEPS + warmup, total):
            if trainer.state.step >= mark and mark not in marks:
                marks[mark] = (trainer.state.step, time.perf_counter())
        return update(batch)

    parts.agent.update = timed_update
    with Tracker(run_dir, run.logging, {}, run_name="bench") as tracker:
        trainer.train(tracker)
    (first, start), (last, end) = marks[RANDOM_STEPS + warmup], marks[total]
    sps = (last - first) / (end - start)
    update_ms, floor = _update_time_and_floor(parts, device, models_flops=agent == "sac")
    return {"sps": sps, "update_ms": update_ms, "floor_fraction": floor, "peak_mib": _peak_rss_mib(),
            "peak_gpu_mib": _peak_gpu_mib(), "compile_s": parts.agent.compile_seconds}


def _update_time_and_floor(parts, device: str, models_flops: bool) -> tuple[float, float | None]:
    """Median time of agent.update alone (finished on the device), and the FLOP floor's share of it (for
    the SAC update update_flops counts; None for others)."""
    import torch

    agent, buffer = parts.agent, parts.buffer
    times = []
    for i in range(300):
        batch = buffer.sample(BATCH)
        _synchronize(device)
        start = time.perf_counter()
        agent.update(batch)
        _synchronize(device)
        if i >= 50:
            times.append(time.perf_counter() - start)
    update_s = statistics.median(times)
    if not models_flops:
        return update_s * 1e3, None
    a = torch.randn(BATCH, HIDDEN, device=device)
    b = torch.randn(HIDDEN, HIDDEN, device=device)
    for _ in range(50):
        a @ b
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(1000):
        a @ b
    _synchronize(device)
    gemm_flops_per_s = 2 * BATCH * HIDDEN * HIDDEN / ((time.perf_counter() - start) / 1000)
    floor_s = update_flops(parts.spaces.obs_dim, parts.spaces.action_dim, agent.cfg.num_critics) / gemm_flops_per_s
    return update_s * 1e3, floor_s / update_s


def update_flops(obs_dim: int, action_dim: int, num_critics: int) -> float:
    """Matrix-product FLOPs of one SAC update (2019 variant), forward 2mnk, backward 4mnk (input and weight grads)."""
    def mlp(in_dim, out_dim):
        sizes = [in_dim, HIDDEN, HIDDEN, out_dim]
        return sum(2 * BATCH * i * o for i, o in zip(sizes[:-1], sizes[1:]))
    actor = mlp(obs_dim, 2 * action_dim)
    critic = num_critics * mlp(obs_dim + action_dim, 1)
    target = actor + critic                  # a' ~ pi(s'), Q'(s', a'): forward only
    critic_step = critic + 2 * critic        # forward, then input and weight gradients
    actor_step = actor + critic + critic + 2 * actor  # forward, critic input gradients only, actor backward
    return target + critic_step + actor_step


def _learn_timed(model, warmup: int, measure: int) -> dict:
    """Train an SB3-style model (SB3 or SBX) and time the steps between the warm-up's end and the last."""
    from stable_baselines3.common.callbacks import BaseCallback

    total = RANDOM_STEPS + warmup + measure
    marks: dict[int, float] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in (RANDOM_STEPS + warmup, total):
                marks.setdefault(self.num_timesteps, time.perf_counter())
            return True

    model.learn(total_timesteps=total, callback=Clock())
    return {"sps": measure / (marks[total] - marks[RANDOM_STEPS + warmup]), "peak_mib": _peak_rss_mib()}


def _peer_settings() -> dict:
    return dict(learning_starts=RANDOM_STEPS, batch_size=BATCH, train_freq=1, gradient_steps=1,
                buffer_size=1_000_000, seed=0, verbose=0)


def run_sb3(env_id: str, warmup: int, measure: int, device: str, agent: str = "sac") -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    torch.manual_seed(0)
    model = SAC("MlpPolicy", gym.make(env_id), policy_kwargs={"net_arch": [HIDDEN, HIDDEN]}, device=device,
                **_peer_settings())
    return _learn_timed(model, warmup, measure) | {"peak_gpu_mib": _peak_gpu_mib()}


def run_sbx(env_id: str, warmup: int, measure: int, device: str, agent: str = "sac") -> dict:
    """SBX's SAC, or its CrossQ with 256-wide critics (the other hyperparameters SBX's defaults, the
    CrossQ paper's: Batch Renormalization, actor every 3rd step, Adam lr 1e-3 with beta1 0.5)."""
    import gymnasium as gym
    import jax
    from sbx import SAC, CrossQ

    if agent == "sac":
        model = SAC("MlpPolicy", gym.make(env_id), policy_kwargs={"net_arch": [HIDDEN, HIDDEN]}, **_peer_settings())
    else:
        model = CrossQ("MlpPolicy", gym.make(env_id), policy_kwargs={"net_arch": {"pi": [HIDDEN, HIDDEN],
                                                                                  "qf": [HIDDEN, HIDDEN]}},
                       **_peer_settings())
    return _learn_timed(model, warmup, measure) | {"peak_gpu_mib": None, "backend": jax.default_backend()}


WORKERS = {"sac-runner": run_sac_runner, "sb3": run_sb3, "sbx": run_sbx}


def _label(worker: str, agent: str, num_envs: int = 1, compile_mode: str = "off") -> str:
    if worker != "sac-runner":
        return f"{PEER_NAMES[worker]} {'CrossQ' if agent == 'crossq_small' else 'SAC'}"
    return f"sac-runner agent={agent} ({num_envs} env{'s' if num_envs > 1 else ''}, compile={compile_mode})"


# ---- the peers' environments ---------------------------------------------------------------------------

def _peer_requirements(peer: str) -> list[str]:
    """The peer's release, and this environment's torch, gymnasium and MuJoCo (torch without its local
    tag: on a CPU-only machine the pin takes the CPU wheel, elsewhere the same release)."""
    same = [f"{name}=={metadata.version(name.split('[')[0]).split('+')[0]}"
            for name in ("torch", "gymnasium[mujoco]", "mujoco")]
    return PEER_PACKAGES[peer] + same


def peer_python(peer: str) -> Path:
    """The peer venv's python, made (once, or again when the pins changed) with pip."""
    venv = PEER_VENVS / peer
    python, stamp = venv / "bin" / "python", venv / "sac-bench-requirements.txt"
    wanted = "\n".join(_peer_requirements(peer))
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"installing {PEER_NAMES[peer]} into {venv} (once): {', '.join(_peer_requirements(peer))}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *_peer_requirements(peer)])
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            sys.exit(f"error: installing the {peer} peer failed ({reason}); check the network to the package "
                     f"registry, or leave it out: --peers {' '.join(p for p in PEER_PACKAGES if p != peer)}")
    stamp.write_text(wanted)
    return python


# ---- driver ------------------------------------------------------------------------------------------

def _spawn(worker: str, args, agent: str, num_envs: int = 1, compile_mode: str = "off") -> dict:
    python = sys.executable if worker == "sac-runner" else str(peer_python(worker))
    command = [python, __file__, "--worker", worker, "--agents", agent, "--env", args.env, "--warmup",
               str(args.warmup), "--measure", str(args.measure), "--num-envs", str(num_envs), "--device", args.device,
               "--compile", compile_mode]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: the {worker} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _shown(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=["sac"], help="sac-runner's presets to run")
    parser.add_argument("--peers", nargs="*", choices=sorted(PEER_PACKAGES), default=["sb3"],
                        help="the libraries to compare with, each in its own venv (default: sb3)")
    parser.add_argument("--setup-peers", action="store_true", help="install the peers' venvs and exit")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=300, help="learning steps before the clock starts")
    parser.add_argument("--measure", type=int, default=1500, help="steps timed per run")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1], help="sac-runner's env.num_envs values")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--compile", nargs="+", choices=["off", "compile", "cudagraphs"],
                        help="sac-runner's agent.compile modes (default: off on CPU, all three on a GPU)")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one run, in the worker's own environment (a peer's venv has no sac-runner)
        agent = args.agents[0]
        extra = {"num_envs": args.num_envs[0], "compile_mode": args.compile[0]} if args.worker == "sac-runner" else {}
        print(json.dumps(WORKERS[args.worker](args.env, args.warmup, args.measure, args.device, agent, **extra)))
        return
    for peer in args.peers:
        peer_python(peer)
    if args.setup_peers:
        print(f"peers ready under {PEER_VENVS}: {', '.join(args.peers)}")
        return
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but PyTorch sees no CUDA device; use --device cpu")
    modes = args.compile or (["off", "compile", "cudagraphs"] if args.device == "cuda" else ["off"])
    if "cudagraphs" in modes and args.device != "cuda":
        sys.exit("error: --compile cudagraphs needs --device cuda")

    from rich.console import Console
    from rich.table import Table

    ours = [("sac-runner", agent, n, mode) for agent in args.agents for n in args.num_envs for mode in modes]
    theirs = [(peer, agent, 1, "off") for agent in args.agents for peer in args.peers if agent in PEER_AGENTS[peer]]
    runs = ours + theirs
    results: dict[str, list[dict]] = {_label(*run): [] for run in runs}
    for i in range(args.alternations):
        for run in runs:
            label = _label(*run)
            results[label].append(_spawn(run[0], args, *run[1:]))
            print(f"round {i + 1}/{args.alternations} {label}: {results[label][-1]['sps']:.1f} steps/s", flush=True)

    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    table = Table(title=f"{args.env}: environment steps per second (1 gradient step per transition, batch "
                        f"{BATCH}, {HIDDEN}x{HIDDEN}, {where})", title_justify="left")
    peer_columns = [f"x {PEER_NAMES[peer].split()[0]}" for peer in args.peers]
    for column in ("", "median steps/s", *peer_columns, "runs", "update ms", "FLOP floor", "compile s",
                   "peak host", "peak GPU"):
        table.add_column(column)

    def peer_sps(peer: str, agent: str) -> float | None:
        return _median(results.get(_label(peer, agent), []), "sps")

    for worker, agent, num_envs, mode in runs:
        found = results[_label(worker, agent, num_envs, mode)]
        sps = _median(found, "sps")
        ratios = [_shown(peer_sps(peer, agent) and sps / peer_sps(peer, agent), "{:.2f}") for peer in args.peers]
        floor = _median(found, "floor_fraction")
        table.add_row(_label(worker, agent, num_envs, mode), f"{sps:.1f}", *ratios,
                      ", ".join(f"{r['sps']:.1f}" for r in found),
                      _shown(_median(found, "update_ms"), "{:.2f}"), _shown(floor and 100 * floor, "{:.0f}%"),
                      _shown(_median(found, "compile_s"), "{:.1f}"),
                      f"{_median(found, 'peak_mib'):.0f} MiB", _shown(_median(found, "peak_gpu_mib"), "{:.0f} MiB"))
    console = Console(width=max(Console().width, 170))  # the table whole, also into a file
    console.print(table)
    for worker, agent, _, _ in theirs:  # each round's ratio: the first sac-runner configuration against the peer
        reference = _label("sac-runner", agent, args.num_envs[0], modes[0])
        ratios = [a["sps"] / b["sps"] for a, b in zip(results[reference], results[_label(worker, agent)])]
        console.print(f"{reference} / {_label(worker, agent)} per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    machine = (f"{platform.processor() or platform.machine()}, {platform.system()}, Python "
               f"{platform.python_version()}, torch {torch.__version__}")
    console.print(f"machine: {machine}; device: {where}" + (" (SBX: JAX on the CPU)" if "sbx" in args.peers else ""))
    if args.json:
        args.json.write_text(json.dumps({"env": args.env, "device": where, "machine": machine, "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
