"""sac-export: write a checkpoint's deterministic policy as a standalone file, and say what it takes.

    sac-export checkpoint=outputs/runs/<run> format=torchscript   # torch.jit.load(...)(obs)
    sac-export checkpoint=outputs/runs/<run> format=onnx          # onnxruntime.InferenceSession(...)
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sac_runner.cli.one_line_errors import hydra_command
from sac_runner.config import ExportConfig
from sac_runner.cli.config_store import register_configs
from sac_runner.run.console import console, key_value_table
from sac_runner.run.export import export_checkpoint

register_configs()


@hydra_command("export")
def main(cfg: DictConfig) -> None:
    export_cfg: ExportConfig = OmegaConf.to_object(cfg)
    path, trained = export_checkpoint(export_cfg, Path(HydraConfig.get().runtime.output_dir))
    console.print(key_value_table("sac-export", {
        "policy": f"{trained.run.env.id}, step {trained.step}, deterministic",
        "format": export_cfg.format, "file": str(path),
        "input": (f"obs: uint8 (batch, {', '.join(map(str, trained.spaces.obs_shape))}), stacked frames as the "
                  "environment returns them" if trained.spaces.pixels
                  else f"obs: float32 (batch, {trained.spaces.obs_dim}), raw observations"),
        "output": ("action index: int64 (batch,)" if trained.spaces.discrete
                   else f"action: float32 (batch, {trained.spaces.action_dim}) in the env's bounds"),
    }))


if __name__ == "__main__":
    main()
