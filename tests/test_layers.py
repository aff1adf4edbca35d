"""The package's layers: imports point one way (cli -> run -> algo), and the maths layer with the config
schemas works with torch alone, without Hydra or OmegaConf (a notebook's use)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sac_runner"
# What each layer may not import: the layers above it, and for the maths layer and the schemas, Hydra.
FORBIDDEN = {"algo": ("sac_runner.run", "sac_runner.cli", "hydra", "omegaconf"),
             "config.py": ("sac_runner.run", "sac_runner.cli", "hydra", "omegaconf"),
             "errors.py": ("sac_runner.run", "sac_runner.cli", "hydra", "omegaconf"),
             "run": ("sac_runner.cli",)}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer):
    files = [PACKAGE / layer] if layer.endswith(".py") else sorted((PACKAGE / layer).rglob("*.py"))
    against = [f"{path.relative_to(PACKAGE)} imports {name}" for path in files for name in _imports(path)
               if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])]
    assert not against, against


NO_HYDRA = """
import importlib, pkgutil, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hydra", "omegaconf"):
            raise ImportError(f"{name} is not installed")
sys.meta_path.insert(0, Refuse())
import torch
import sac_runner.algo
for module in pkgutil.iter_modules(sac_runner.algo.__path__):
    importlib.import_module(f"sac_runner.algo.{module.name}")
from sac_runner.algo.replay_buffer import ReplayBuffer
from sac_runner.algo.sac import SAC
from sac_runner.config import AgentConfig, BufferConfig
agent = SAC(3, 1, AgentConfig(hidden_sizes=[16]), torch.device("cpu"))
buffer = ReplayBuffer(BufferConfig(capacity=100), 3, 1, torch.device("cpu"))
for _ in range(40):
    buffer.add(torch.randn(3).numpy(), agent.act(torch.randn(3).numpy()), 1.0, torch.randn(3).numpy(), False, False)
metrics = agent.update(buffer.sample(8)).metrics
assert all(torch.isfinite(v).all() for v in metrics.values())
assert not {"hydra", "omegaconf"} & set(sys.modules)
print("trained without Hydra")
"""


def test_the_maths_layer_trains_with_torch_alone():
    """Every module of sac_runner.algo imports, and an agent updates from a buffer, with Hydra and OmegaConf
    unavailable."""
    result = subprocess.run([sys.executable, "-c", NO_HYDRA], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained without Hydra" in result.stdout
