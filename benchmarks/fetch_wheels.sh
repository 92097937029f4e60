#!/usr/bin/env bash
# Fill benchmarks/wheels/ (git-ignored) with what the GPU image lacks for benchmarks/gpu_check.sh and
# gpu_bench.sh: vit-pytorch (the bench's reference rows), netCDF4 and cftime (results.nc). Python
# 3.12, x86-64 manylinux, no dependencies (the image has numpy, einops, torch). About 10 MB.
set -eu
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
mkdir -p benchmarks/wheels
"$PIP" download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d benchmarks/wheels netCDF4 cftime
"$PIP" download --no-deps -d benchmarks/wheels vit-pytorch
du -sh benchmarks/wheels
