# sac-runner. On a fresh machine, two commands set up everything:
#   make train   # installs sac-runner into .venv (what training needs), then trains the default run (SAC on Pendulum-v1)
#   make test    # adds the test, export and sweep extras to .venv, then runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is only installed when the venv has none. torch==2.13.0 resolves to the CPU wheel that pip's
# find-links provide on our CPU machines, and to PyPI's regular (CUDA) wheel on a GPU workstation.
# Another build: make install TORCH="torch==2.13.0 --index-url <your PyTorch wheel index>"
TORCH ?= torch==2.13.0

.PHONY: install install-dev train test test-fast bench clean

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# What `sac-train`, `sac-eval` and `sac-report` need, nothing more.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e .
	touch $@

# The test suite's needs on top: pytest, ONNX export, TensorBoard, Optuna/Slurm/Ray launchers.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

train: install
	$(BIN)/sac-train $(ARGS)

# The suite on PYTEST_WORKERS processes (pytest-xdist). Training tests share the cores as sac-runner runs
# do (threads=auto counts the other runs), so two workers keep a 2-core machine busy without
# oversubscribing it. PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 2

test: install-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Everything but the learning tests (a few seconds to a minute).
test-fast: install-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# sac-runner against Stable-Baselines3 SAC on HalfCheetah-v5 (a few minutes); ARGS="--alternations 5" etc.
bench: install
	$(BIN)/python -m pip install -e ".[bench]"
	$(BIN)/python scripts/bench.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
