#!/usr/bin/env bash
# Wheels for a GPU machine without network whose python already has CUDA PyTorch (numpy, pytest, ...):
#
#     scripts/offline_wheels.sh [PYTHON_VERSION]     # default 3.12; writes .whl/
#
# then carry .whl/ there and run scripts/gpu_check.sh, which installs them beside an editable
# install of this checkout. The versions are the ones this checkout's .venv runs (`make install`),
# so the GPU machine runs what the tests here ran. wandb is left out (nothing on the GPU path needs
# it: pass logging=disabled); antlr4-python3-runtime ships only as a source archive and is built
# into a wheel here.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${1:-3.12}
PY=${PYTHON:-.venv/bin/python}
PACKAGES=(gymnasium farama-notifications mujoco mujoco-core glfw pyopengl hydra-core omegaconf stable-baselines3)
mkdir -p .whl
git check-ignore -q .whl/ || echo "/.whl/" >>.git/info/exclude  # not part of the tree, only carried
pins=()
for name in "${PACKAGES[@]}"; do
    version=$("$PY" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "error: $name is not installed in $PY; run make install-dev first"; exit 1; }
    pins+=("$name==$version")
done
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for pin in "${pins[@]}"; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
        "${platforms[@]}" -d .whl "$pin"
done
antlr=$("$PY" -m pip show antlr4-python3-runtime | sed -n 's/^Version: //p')
"$PY" -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$antlr"
ls .whl
du -sh .whl
