#!/usr/bin/env bash
# The GPU check of issue 23, correctness first, at most 300 s of step limits (imports included):
# benchmarks/gpu_check.py's seven steps (smoke, runner with sync counting, compile with recompiles,
# --jobs 2 on one GPU, SIGTERM + resume, the CUDA-only tests, the bf16 bench), each in a process of
# its own with its own time limit; $OUT/gpu_check.json is rewritten after every step.
#
#   run(command="bash benchmarks/gpu_check.sh", carry=["benchmarks/wheels"], timeout_s=420)
#   bash benchmarks/gpu_check.sh --device cpu     # the dry run: same steps on the CPU, small data (CI)
#
# Needs a python with torch (the GPU image's python3 has torch 2.11, accelerate 1.15, no vit-pytorch,
# netCDF4 or cftime): benchmarks/wheels/, filled here by benchmarks/fetch_wheels.sh (git-ignored),
# is installed into a temporary folder first when present. The package runs from src/, uninstalled.
set -u
DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2;;
    --device=*) DEVICE=${1#--device=}; shift;;
    *) echo "usage: $0 [--device cuda|cpu]" >&2; exit 2;;
  esac
done
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"

PY=""
for cand in .venv/bin/python python3 python; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch, sys; sys.exit(0 if '$DEVICE' == 'cpu' or torch.cuda.is_available() else 1)" 2>/dev/null; then
    PY=$cand; break
  fi
done
if [ -z "$PY" ]; then
  echo '{"status": "failed", "why": "no python with torch (and CUDA for --device cuda) found"}' > "$OUT/gpu_check.json"
  echo "no python with torch found" >&2; exit 1
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
  SITE=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" benchmarks/wheels/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$SITE"
fi
export PYTHONUNBUFFERED=1
{
  date -u
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import sys, torch, accelerate; print('python', sys.version.split()[0], 'torch', torch.__version__, 'accelerate', accelerate.__version__)"
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
exec "$PY" benchmarks/gpu_check.py --device "$DEVICE" --out "$OUT"
