#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU where PyTorch, numba-cuda, Cython, pytest and
# pytest-benchmark are already installed (no network needed), from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]      # at most 8 minutes (each step has a limit)
#
# 1. builds the Cython extensions in place for this machine's Python (the CPU backend is the
#    reference of the cuda tests);
# 2. runs the cuda tests on the real GPU (TGA_TEST_REAL_GPU=1: no simulator; the compile test
#    is skipped there, it is CI's);
# 3. runs the quick GPU benchmark (python -m benchmarks.gpu --quick), then its matmul rows
#    again with larger GEMM tiles (a measurement to choose the default by).
# Everything goes to ONE results file, OUT_DIR/gpu-check.md (default OUT_DIR: $OUT if set,
# else benchmarks/results), plus the benchmark's JSON beside it. Exit status: nonzero if a
# step failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/gpu-check.md"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
unset NUMBA_ENABLE_CUDASIM
status=0

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$PY" - <<'PY'
import platform, numpy, torch
import numba, numba.cuda
print("python", platform.python_version(), "| numpy", numpy.__version__, "| torch",
      torch.__version__, "| numba", numba.__version__, "| cuda available",
      numba.cuda.is_available(), "| torch cuda", torch.cuda.is_available())
PY
  echo '```'
} > "$REPORT" 2>&1

step() {   # step NAME TIMEOUT CMD...: run, append its tail to the report
  local name=$1 limit=$2; shift 2
  local log="$OUT_DIR/gpu-check-$name.log" start=$SECONDS rc
  timeout "$limit" "$@" > "$log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && status=1
  { echo; echo "## $name: exit $rc, $((SECONDS - start)) s"; echo; echo '```'
    tail -n 60 "$log"; echo '```'; } >> "$REPORT"
  echo "$name: exit $rc ($((SECONDS - start)) s)"
}

step build 90 "$PY" setup.py build_ext --inplace -j 8
step tests 200 env TGA_TEST_REAL_GPU=1 "$PY" -m pytest -q -p no:cacheprovider tests/cuda \
    --ignore=tests/cuda/test_cuda_compile.py --maxfail=25
# user code recognised as fused ops (ops/patterns.py) on the device backend
step patterns 60 env TGA_TEST_REAL_GPU=1 "$PY" -m pytest -q -p no:cacheprovider \
    tests/autograd/test_patterns.py -k each_device
step bench 140 "$PY" -m benchmarks.gpu --quick --out "$OUT_DIR/gpu-quick.json"
# the GEMM with larger tiles (128x128x8, 8x8 per thread: 143 registers, no spills for sm_90),
# to choose GPU_TUNING's default from a measurement
step gemm-128 50 "$PY" -m benchmarks.gpu --quick --only matmul --tune gemm_tile_m=128 \
    --tune gemm_tile_n=128 --tune gemm_tile_k=8 --tune gemm_micro_m=8 --tune gemm_micro_n=8 \
    --out "$OUT_DIR/gpu-gemm-128.json"
echo "report: $REPORT"
exit $status
