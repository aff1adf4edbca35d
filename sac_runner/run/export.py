"""A checkpoint's deterministic policy as a standalone TorchScript or ONNX file (sac-export).

    sac-export checkpoint=outputs/runs/<run> format=torchscript   # torch.jit.load(...)(obs)
    sac-export checkpoint=outputs/runs/<run> format=onnx          # onnxruntime.InferenceSession(...)

The exported function maps a float32 batch of raw observations (B, obs_dim), as the environment
returns them (flattened for Dict/Tuple/Discrete observation spaces; for an agent that learned from
pixels, a uint8 batch of stacked frames (B, C, H, W), which its encoder scales), to what the environment's
`step` takes: actions (B, action_dim) within its bounds, or action indices (B,) for a Discrete
space. The run's observation normalization and the rescaling from [-1, 1] are inside the file.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import gymnasium as gym
import torch
from gymnasium.wrappers import RescaleAction
from torch import nn

from sac_runner.config import ExportConfig
from sac_runner.errors import ConfigError
from sac_runner.run.builders import Trained, load_trained
from sac_runner.run.envs import Spaces, ZeroBasedDiscreteAction

log = logging.getLogger(__name__)


def _wrapper(env: gym.Env, kind: type) -> gym.Wrapper | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, kind):
            return env
        env = env.env
    return None


class DeployedPolicy(nn.Module):
    """raw observation -> normalized -> deterministic action -> the environment's units."""

    def __init__(self, trained: Trained):
        super().__init__()
        agent = trained.agent
        self.normalizer = copy.deepcopy(agent.normalizer).cpu()
        self.actor = copy.deepcopy(agent.actor).cpu().eval()
        self.discrete = trained.spaces.discrete
        if self.discrete:
            shift = _wrapper(trained.env, ZeroBasedDiscreteAction)
            self.register_buffer("start", torch.tensor(0 if shift is None else shift.start, dtype=torch.int64))
        else:
            bounds = _wrapper(trained.env, RescaleAction).env.action_space  # the space before rescaling
            self.register_buffer("low", torch.as_tensor(bounds.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(bounds.high, dtype=torch.float32))
        self.requires_grad_(False)  # an inference-only file: its outputs convert straight to NumPy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(obs)
        if self.discrete:
            return self.actor.deterministic(x) + self.start
        unit = self.actor.deterministic(x)  # in [-1, 1]
        return self.low + (unit + 1.0) * 0.5 * (self.high - self.low)


def export_policy(policy: DeployedPolicy, spaces: Spaces, fmt: str, path: Path) -> Path:
    """The policy as a file taking a batch of raw observations: float32 (B, obs_dim), or uint8 frames
    (B, C, H, W) for an agent that learned from pixels."""
    example = torch.zeros(2, *spaces.obs_shape, dtype=torch.uint8 if spaces.pixels else torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export; it still loads anywhere
                warnings.simplefilter("ignore")
                torch.jit.trace(policy, example).save(str(path))
        else:
            try:
                import onnx  # noqa: F401
                import onnxscript  # noqa: F401
            except ImportError as error:
                raise ConfigError(f"format=onnx needs the onnx and onnxscript packages ({error}); "
                                  "pip install 'sac-runner[export]' or use format=torchscript") from error
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in ("torch.onnx", "onnxscript", "onnx_ir"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                # "torchvision is not installed. Skipping torchvision::nms" (and 5 more): the exporter's
                # registry of torchvision ops, which a policy never uses; it reads like a failure.
                logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
                # external_data=False: the weights go inside the one .onnx file (a policy this size is far
                # below protobuf's 2 GB limit), so the file alone can be copied to another machine.
                torch.onnx.export(policy, (example,), str(path), input_names=["obs"], output_names=["action"],
                                  dynamic_shapes={"obs": {0: torch.export.Dim("batch")}}, dynamo=True,
                                  external_data=False, verbose=False)
    return path


def export_checkpoint(cfg: ExportConfig, out_dir: Path) -> tuple[Path, Trained]:
    """Rebuild the checkpoint's agent through the builders, write its policy; the file and the agent."""
    trained = load_trained(cfg.checkpoint, torch.device("cpu"))
    trained.env.close()
    suffix = ".pt" if cfg.format == "torchscript" else ".onnx"
    path = Path(cfg.output).expanduser() if cfg.output else out_dir / f"policy{suffix}"
    if path.is_dir():  # output=<a directory>: the file goes into it
        path = path / f"policy{suffix}"
    export_policy(DeployedPolicy(trained), trained.spaces, cfg.format, path)
    return path, trained
