"""Checkpoints: plain state dicts, tensors and the resolved config, written atomically.

A checkpoint is a dict of tensors, numbers, strings and containers only, so it loads with
`torch.load(weights_only=True)`, which never executes pickled code.

    {"format": "sac-runner", "version": 1, "step": int, "config": {...resolved run config...},
     "obs_dim": int, "action_dim": int, "agent": {actor, critic, critic_target, optimizers, log_alpha}}
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "sac-runner"
VERSION = 1
LATEST = "latest.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which file and what to do."""


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_checkpoint(run_dir: Path, step: int, payload: dict[str, Any]) -> Path:
    """Write checkpoints/step_<N>.pt atomically, then point checkpoints/latest.pt at it."""
    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:09d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, "version": VERSION, "step": step, **payload}, tmp)
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the complete new one
    link_tmp = directory / (LATEST + ".tmp")
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(path.name)
    os.replace(link_tmp, directory / LATEST)
    return path


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A .pt file, or a run directory (its checkpoints/latest.pt)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = checkpoint_dir(p) / LATEST
        if not candidate.exists():
            candidate = p / LATEST
        if not candidate.exists():
            raise CheckpointError(f"no checkpoint in directory {p}; pass a .pt file or a run directory "
                                  "that contains checkpoints/latest.pt")
        return candidate
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}; pass checkpoint=<run dir or .pt file written by sac-train>")
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    p = resolve_checkpoint_path(path)
    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(f"{p} is not a sac-runner checkpoint (not a torch archive; truncated, corrupted or "
                              "from another program); pass a file written by sac-train")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{p} contains objects other than plain tensors and containers and was refused "
                              "unloaded (weights_only); only load checkpoints written by sac-train") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{p} is not a readable checkpoint (truncated or corrupted?): "
                              f"{str(error).splitlines()[0]}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a sac-runner checkpoint; pass a file written by sac-train")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{p} has checkpoint version {data.get('version')}, this sac-runner reads "
                              f"version {VERSION}; evaluate it with the sac-runner release that wrote it")
    return data
