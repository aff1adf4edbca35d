#!/usr/bin/env bash
# The GPU checks in one command, on a machine with a CUDA GPU:
#
#     scripts/gpu_check.sh            # results under outputs/gpu-check/ (or $OUT when set)
#
# 1. set-up: the Python in $PYTHON (default: .venv/bin/python after `make install-dev`, which also
#    installs a CUDA build of torch from PyPI on such a machine) with the bench extra (SB3);
#    an offline machine whose python3 already has CUDA torch (and setuptools, pytest) installs the
#    wheels in $WHEELS (default .whl/, if present: gymnasium, mujoco, hydra-core, omegaconf, antlr4,
#    stable-baselines3, ...) into /tmp/sac-runner-site and this checkout editable (the package finds
#    its configs, conf/, through the install);
# 2. the GPU tests: `pytest -m gpu` (compiled and CUDA-graph updates against eager and the plain
#    reference, checkpoints between GPU and CPU, the device copy of the buffer, Pendulum and CartPole
#    learning on the fast path);
# 3. the benchmark: sac-runner (1 and 8 environments; agent.compile off, compile, cudagraphs) against
#    SB3 on HalfCheetah-v5, on the GPU (scripts/bench.py --device cuda $BENCH_ARGS);
# 4. with CHECKS naming crossq: the paper-sized CrossQ run of docs/benchmarks.md (HalfCheetah-v5, $CROSSQ_STEPS
#    steps, default 300000: about 10 minutes on an H200), one per seed in $CROSSQ_SEEDS (default 0,
#    all at once on the one GPU), started first and trained beside the tests; each seed's log and
#    sac-report's results.md over them come back in $OUT.
# CHECKS picks the steps (default "tests bench"; e.g. CHECKS="tests crossq" on a short lease).
# Each step writes its output to a file, so a step that fails leaves the others' results.
# Duration on an H100/H200 class machine: about 2 minutes of tests (4 pytest workers), about 10 of
# benchmark (ALTERNATIONS=1).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu-check}
WHEELS=${WHEELS:-.whl}
ALTERNATIONS=${ALTERNATIONS:-1}
CHECKS=${CHECKS:-tests bench}
BENCH_ARGS=${BENCH_ARGS:---num-envs 1 8}
CROSSQ_STEPS=${CROSSQ_STEPS:-300000}
CROSSQ_SEEDS=${CROSSQ_SEEDS:-0}
wants() { [[ " $CHECKS " == *" $1 "* ]]; }
mkdir -p "$OUT"
# MUJOCO_GL is left as it is: nothing here renders, and MUJOCO_GL=egl without libEGL fails `import mujoco`.
export PYTHONUNBUFFERED=1 WANDB_MODE=offline WANDB_SILENT=true

if [ -n "${PYTHON:-}" ]; then
    :
elif [ -d "$WHEELS" ]; then  # offline: the machine's own python (with CUDA torch) plus carried wheels
    PYTHON=python3
    { "$PYTHON" -m pip install -q --no-index --no-deps --upgrade --target /tmp/sac-runner-site "$WHEELS"/*.whl \
        && "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation -e . ; } >"$OUT/install.txt" 2>&1 \
        || { echo "error: the offline install failed; see $OUT/install.txt"; exit 1; }
    export PYTHONPATH=/tmp/sac-runner-site
else
    make install-dev >"$OUT/install.txt" 2>&1 && .venv/bin/python -m pip install -q -e ".[bench]" >>"$OUT/install.txt" 2>&1 \
        || { echo "error: the install failed; see $OUT/install.txt"; exit 1; }
    PYTHON=.venv/bin/python
fi

"$PYTHON" - >"$OUT/machine.txt" 2>&1 <<'EOF'
import platform, torch
print(platform.platform(), "Python", platform.python_version(), "torch", torch.__version__)
print("CUDA", torch.version.cuda, "device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
EOF
cat "$OUT/machine.txt"
command -v nvidia-smi >/dev/null && nvidia-smi >>"$OUT/machine.txt" 2>&1

tests=0 bench=0 crossq=0
CROSSQ_RUN=outputs/gpu-check-crossq
crossq_pids=()
if wants crossq; then
    rm -rf "$CROSSQ_RUN"
    for seed in $CROSSQ_SEEDS; do
        echo "CrossQ, HalfCheetah-v5, seed $seed, $CROSSQ_STEPS steps -> $OUT/crossq-$seed.log"
        "$PYTHON" -m sac_runner.cli.train env=halfcheetah agent=crossq "seed=$seed" "schedule.total_steps=$CROSSQ_STEPS" \
            schedule.eval_every=25000 schedule.eval_episodes=5 logging=disabled logging.progress=false \
            "hydra.run.dir=$CROSSQ_RUN/$seed" >"$OUT/crossq-$seed.log" 2>&1 &
        crossq_pids+=($!)
    done
fi

if wants tests; then
    echo "GPU tests -> $OUT/gpu-tests.txt"
    skip=()  # the sweep tests import wandb at collection and hold no gpu test: an offline set-up may lack it
    "$PYTHON" -c "import wandb" 2>/dev/null || skip=(--ignore=tests/test_sweeps.py)
    workers=()
    "$PYTHON" -c "import xdist" 2>/dev/null && workers=(-n "${TEST_WORKERS:-4}")
    "$PYTHON" -m pytest -m gpu -p no:cacheprovider -q -ra --durations=10 "${workers[@]}" "${skip[@]}" tests 2>&1 \
        | tee "$OUT/gpu-tests.txt" | tail -5
    tests=${PIPESTATUS[0]}
fi

if wants bench; then
    echo "benchmark -> $OUT/bench.txt, $OUT/bench.json"
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
    "$PYTHON" scripts/bench.py --device cuda $BENCH_ARGS --alternations "$ALTERNATIONS" --json "$OUT/bench.json" \
        2>&1 | tee "$OUT/bench.txt"
    bench=${PIPESTATUS[0]}
fi

if wants crossq; then
    for pid in "${crossq_pids[@]}"; do wait "$pid" || crossq=1; done
    grep -E "eval return|wall time" "$OUT"/crossq-*.log
    "$PYTHON" -m sac_runner.cli.report "$CROSSQ_RUN" --threshold HalfCheetah-v5=4000 >/dev/null 2>&1 \
        && cp "$CROSSQ_RUN/report/results.md" "$OUT/crossq-results.md"
fi

echo "gpu_check ($CHECKS): tests exit $tests, benchmark exit $bench, crossq exit $crossq; results in $OUT"
exit $(( tests != 0 || bench != 0 || crossq != 0 ))
