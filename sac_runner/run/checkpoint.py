"""Checkpoints: plain state dicts, tensors and the resolved config, written atomically.

A checkpoint is a dict of tensors, numbers, strings and containers only, so it loads with
`torch.load(weights_only=True)`, which never executes pickled code. `Checkpoint` is its typed record:
this module alone reads and writes the raw keys; everyone else asks the record for fields. Where the
files lie in a run directory is RunDir's business (run_dir.py); what they hold:

    checkpoints/step_<N>.pt         {"format": "sac-runner", "version": 4, "step": N, "config": {...},
                                     "obs_dim", "action_dim" (|A| when discrete), "discrete",
                                     "agent": {networks, targets, optimizers, log_alpha, normalizer, ...},
                                     "loop": {LoopState's fields, "health": {...}}, "rng": {...},
                                     "episode_replay": {"episodes": [one per environment]},
                                     "obs" (num_envs, ...), "wandb_run_id", "buffer_file"}
    checkpoints/step_<N>.buffer.pt  the replay buffer's arrays (newest checkpoint only)
    checkpoints/latest.pt -> step_<N>.pt, the newest complete checkpoint
    checkpoints/best.pt   the agent of the best evaluation so far, written at each new best (whether or
                          not a step checkpoint falls on it), with "best": {"step", "return"}; no buffer

Older versions load and resume: version 3 kept a run of one environment as a single episode and a
single observation (today one environment is a vector of one); version 2 also had the config layout
before keys moved to the group that owns them (config.MOVED_KEYS), upgraded when loaded.

Loading first checks every record of the archive against the CRC-32 checksum the zip format stores
(torch.load alone accepts flipped bytes in tensor data), so a corrupted file is refused, not used.

The buffer is a dict of tensors sharing the NumPy arrays' memory: torch.save writes their bytes
straight to the archive, nothing goes through pickle. Every file is written to a temporary name,
flushed to disk and renamed over the old one, and the links move only after the files are
complete, so a crash at any point leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sac_runner.run.run_config import upgrade_saved_config
from sac_runner.errors import CheckpointError, CheckpointWriteError
from sac_runner.run.envs import Spaces
from sac_runner.run.loop_state import LoopState
from sac_runner.run.run_dir import RunDir, resolve_latest

FORMAT = "sac-runner"
VERSION = 4
READABLE_VERSIONS = (2, 3, 4)  # 3: one environment's episode kept alone; 2: also the config before keys moved
_buffer_file = RunDir.buffer_file_of


@dataclass
class Checkpoint:
    """What one checkpoint file holds, typed."""

    config: dict[str, Any]        # the resolved run config, in today's layout
    spaces: Spaces                # what the agent was built for
    agent: dict[str, Any]         # SAC.state_dict()
    loop: LoopState
    health: dict[str, Any] | None  # HealthMonitor.state_dict() (None with health.enabled=false)
    episodes: dict[str, Any]      # how to rebuild the environments' current episodes (VectorEnvs.state_dict())
    obs: np.ndarray               # the environments' current observations, one row each
    rng: dict[str, Any]           # exact_resume.capture_rng
    wandb_run_id: str | None
    step: int                     # the loop's step when written (best.pt: the best evaluation's)
    best: dict[str, Any] | None = None  # best.pt only: {"step", "return"} of its evaluation
    path: Path | None = None      # the file it was read from
    buffer_file: str | None = None  # the replay buffer saved beside it (its name), if any

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "step": self.step, "config": self.config,
                "obs_dim": self.spaces.obs_dim, "action_dim": self.spaces.action_dim,
                "discrete": self.spaces.discrete, "image_shape": self.spaces.image_shape,
                "frame_stack": self.spaces.frame_stack, "agent": self.agent,
                "loop": {**self.loop.state_dict(), "health": self.health}, "episode_replay": self.episodes,
                "obs": torch.as_tensor(self.obs), "rng": self.rng, "wandb_run_id": self.wandb_run_id,
                "buffer_file": self.buffer_file, **({"best": self.best} if self.best is not None else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> "Checkpoint":
        loop_state = dict(data["loop"])
        health = loop_state.pop("health", None)
        loop = LoopState()
        loop.load_state_dict(loop_state)
        episodes, obs = data["episode_replay"], data["obs"].numpy()
        if "episodes" not in episodes:  # before version 4: one environment, kept alone
            episodes, obs = {"episodes": [episodes]}, obs[None]
        image_shape = data.get("image_shape")  # absent before image observations (version 4 state runs)
        spaces = Spaces(int(data["obs_dim"]), int(data["action_dim"]), bool(data["discrete"]),
                        None if image_shape is None else tuple(image_shape), int(data.get("frame_stack", 1)))
        return cls(data["config"], spaces, data["agent"], loop, health, episodes, obs, data["rng"],
                   data.get("wandb_run_id"), int(data["step"]), data.get("best"), path, data.get("buffer_file"))

    def load_buffer(self) -> dict[str, Any] | None:
        """The replay buffer saved with this checkpoint, or None if it was not saved or has been pruned."""
        if self.buffer_file is None or self.path is None:
            return None
        path = self.path.resolve().parent / self.buffer_file
        return _safe_load(path, "cpu") if path.exists() else None


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to path.tmp, fsync, rename: readers see the old file or the complete new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _point(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, link)


def save_checkpoint(run_dir: RunDir, checkpoint: Checkpoint, buffer_state: dict[str, Any] | None = None,
                    *, keep_last: int = 0) -> Path:
    """Write the step checkpoint (and its buffer), point latest.pt at it, prune old ones."""
    path = run_dir.step_checkpoint(checkpoint.step)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_partial_files(path.parent)  # left by a process killed while writing
        if buffer_state is not None:
            atomic_torch_save(buffer_state, _buffer_file(path))
        buffer_file = _buffer_file(path).name if buffer_state is not None else None
        atomic_torch_save(replace(checkpoint, buffer_file=buffer_file).to_dict(), path)
        _point(run_dir.latest_checkpoint, path)
    except (OSError, RuntimeError) as error:  # torch's archive writer reports a failed write as RuntimeError
        raise _write_failed(run_dir, path, error) from error
    except KeyboardInterrupt:  # stopped at once (a second Ctrl-C) while writing: the previous one stays
        _remove_partial_files(path.parent)
        raise
    _prune(run_dir, path, keep_last)
    return path


def save_best(run_dir: RunDir, checkpoint: Checkpoint, best_return: float) -> Path:
    """best.pt (the agent of the evaluation at checkpoint.step), written whole (tmp, fsync, rename) over
    the previous best."""
    path = run_dir.best_checkpoint
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        best = {"step": checkpoint.step, "return": best_return}
        atomic_torch_save(replace(checkpoint, best=best, buffer_file=None).to_dict(), path)
    except (OSError, RuntimeError) as error:
        raise _write_failed(run_dir, path, error) from error
    except KeyboardInterrupt:  # stopped at once (a second Ctrl-C) while writing: the previous best stays
        _remove_partial_files(path.parent)
        raise
    return path


def _remove_partial_files(directory: Path) -> None:
    for partial in directory.glob("*.tmp"):
        partial.unlink(missing_ok=True)


def _write_failed(run_dir: RunDir, path: Path, error: Exception) -> CheckpointWriteError:
    """Clean up what the failed write left and say what is still there."""
    latest = run_dir.latest_checkpoint
    try:
        _remove_partial_files(path.parent)
        if not (latest.is_symlink() and os.readlink(latest) == path.name):
            path.unlink(missing_ok=True)
            _buffer_file(path).unlink(missing_ok=True)
    except OSError:
        pass
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
    if latest.is_symlink() and os.readlink(latest) != path.name:
        kept = f"the previous checkpoint {os.readlink(latest)} is intact and {latest.name} still points at it"
    else:
        kept = "no earlier checkpoint exists"
    return CheckpointWriteError(f"could not write checkpoint {path} ({reason}); {kept}; free some disk space "
                                f"(or fix the directory's permissions), then continue with: "
                                f"sac-train resume={run_dir.path}")


def _prune(run_dir: RunDir, newest: Path, keep_last: int) -> None:
    """Keep the newest keep_last step checkpoints (0 = all) and best.pt's; buffers only for the newest."""
    directory = run_dir.checkpoints
    steps = sorted(p for p in directory.iterdir() if RunDir.is_step_checkpoint(p))
    best = run_dir.best_checkpoint  # a link in runs written before best.pt was a file of its own
    protected = {newest.name, os.readlink(best) if best.is_symlink() else None}
    if keep_last > 0:
        for old in steps[:-keep_last]:
            if old.name not in protected:
                old.unlink(missing_ok=True)
    for buffer in directory.glob(_buffer_file(directory / "step_*.pt").name):
        if buffer != _buffer_file(newest):
            buffer.unlink(missing_ok=True)


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A .pt file, a run directory (its checkpoints/latest.pt), or `latest` (the newest run's)."""
    p = Path(resolve_latest(str(path))).expanduser()
    if p.is_dir():
        candidate = RunDir(p).latest_checkpoint
        if not candidate.exists():
            candidate = p / candidate.name  # the checkpoints folder itself
        if not candidate.exists():
            raise CheckpointError(f"no checkpoint in directory {p}; pass a .pt file or a run directory "
                                  f"that contains {RunDir(Path()).latest_checkpoint}")
        return candidate
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}; pass checkpoint=<run dir or .pt file written by sac-train>")
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """The checkpoint's contents, in today's layout."""
    p = resolve_checkpoint_path(path)
    data = _safe_load(p, map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a sac-runner checkpoint; pass a file written by sac-train")
    if data.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{p} has checkpoint version {data.get('version')}, this sac-runner reads "
                              f"versions {' and '.join(map(str, READABLE_VERSIONS))}; use the sac-runner release "
                              "that wrote it")
    if data["version"] < 3 and isinstance(data.get("config"), dict):
        data["config"] = upgrade_saved_config(data["config"])
    try:
        return Checkpoint.from_dict(data, p)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise CheckpointError(f"{p} is a sac-runner checkpoint with missing or malformed contents ({error!r}); "
                              "use an earlier checkpoints/step_*.pt") from error


EXPORTED = ("is a policy exported by sac-export ({kind}), not a checkpoint: run it with {how} (docs/runs-and-faults.md, Export), "
            "or give the run it came from (checkpoint=<run dir>)")


def _safe_load(p: Path, map_location: str | torch.device) -> Any:
    if p.suffix == ".onnx" and not zipfile.is_zipfile(p):
        raise CheckpointError(f"{p} " + EXPORTED.format(kind="ONNX", how="onnxruntime.InferenceSession"))
    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(f"{p} is not a sac-runner checkpoint (not a torch archive; truncated, corrupted or "
                              "from another program); pass a file written by sac-train")
    try:  # every record of the archive against its CRC-32: torch.load itself reads flipped bytes silently
        with zipfile.ZipFile(p) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            written_by_torch = any(name.endswith("/data.pkl") for name in names)
            torchscript = any(name.endswith("/constants.pkl") or "/code/" in name for name in names)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{p} is not a readable checkpoint (truncated or corrupted?): "
                              f"{str(error).splitlines()[0]}; use an earlier checkpoints/step_*.pt") from error
    if not written_by_torch:
        raise CheckpointError(f"{p} is not a sac-runner checkpoint (a zip archive, but not one torch.save wrote); "
                              "pass a file written by sac-train")
    if torchscript:  # torch.load would warn, then suggest weights_only=False: never for an untrusted file
        raise CheckpointError(f"{p} " + EXPORTED.format(kind="TorchScript", how="torch.jit.load"))
    if damaged is not None:
        raise CheckpointError(f"{p} is corrupted: its record {damaged} fails its CRC-32 checksum; "
                              "use an earlier checkpoints/step_*.pt, or copy the file again")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{p} contains objects other than plain tensors and containers and was refused "
                              "unloaded (weights_only); only load checkpoints written by sac-train") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{p} is not a readable checkpoint (truncated or corrupted?): "
                              f"{str(error).splitlines()[0]}") from error
    return data
