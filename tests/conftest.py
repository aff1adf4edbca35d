"""pytest's set-up: the toy environments registered, W&B offline and quiet. The helpers every test
uses (tiny runs, the console scripts) are in tests/harness.py."""

from __future__ import annotations

import os

import pytest

import tests.toy_envs  # noqa: F401  (registers the toy environments)

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu run only where PyTorch sees a CUDA device (the GPU script runs them there)."""
    import pytest
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (scripts/gpu_check.sh runs these on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def eager_random_numbers():
    """Compiled code draws its random numbers with PyTorch's eager generator, as the eager update does
    (TorchInductor otherwise draws its own, equally distributed, numbers): compiled and eager updates
    then see the same noise and can be compared value for value. Convolutions keep PyTorch's NCHW
    layout (Inductor would switch them to channels-last, whose sums run in another order)."""
    import torch._inductor.config

    with torch._inductor.config.patch(fallback_random=True, layout_optimization=False):
        yield
