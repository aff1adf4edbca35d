"""pytest's set-up: the toy environments registered, W&B offline and quiet. The helpers every test
uses (tiny runs, the console scripts) are in tests/harness.py."""

from __future__ import annotations

import os

import tests.toy_envs  # noqa: F401  (registers the toy environments)

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")
