#!/usr/bin/env bash
# The GPU speed measurements of the performance issue (the correctness check is gpu_check.sh), in one call, on one H100: at most 550 s of step
# limits (typically ~4-5 min).
#
#   run(command="bash benchmarks/gpu_bench.sh", carry=["benchmarks/wheels"], timeout_s=600)
#
# Needs: a python with CUDA torch (the machine's, or .venv's if carried); the repository tree.
# Optional: benchmarks/wheels/ with vit-pytorch and einops wheels for the reference rows, made here
# (not committed) with:
#   .venv/bin/pip download vit-pytorch einops --no-deps -d benchmarks/wheels
# Writes to $OUT (or ./gpu_check_out): env.txt, one JSON + log per benchmark run, summary.txt.
# Each step has its own time limit, so a hang or failure in one still leaves the others' files.
# DRY_RUN=1 checks the script's plumbing on a CPU (device cpu, --quick, no compile steps).
set -u
OUT=${OUT:-$PWD/gpu_check_out}
DRY_RUN=${DRY_RUN:-0}
DEVICE=cuda; EXTRA=()
SCALE=1
if [ "$DRY_RUN" = 1 ]; then DEVICE=cpu; SCALE=4; EXTRA=(--quick --batch-size 8 --eval-batch-size 8 --many 2); fi
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
START=$(date +%s)

PY=""
for cand in .venv/bin/python python3 python; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() or '$DEVICE' == 'cpu' else 1)" 2>/dev/null; then
    PY=$cand; break
  fi
done
if [ -z "$PY" ]; then
  echo "no python with CUDA torch found" | tee "$OUT/env.txt"; exit 1
fi

# our package from the tree (no install: nothing outside the machine can be reached)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -d benchmarks/wheels ] && ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
  SITE=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --target "$SITE" benchmarks/wheels/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$SITE"
fi

{
  date -u; nvidia-smi -L && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  "$PY" -c "import vit_pytorch, importlib.metadata as m; print('vit-pytorch', m.version('vit-pytorch'))" 2>&1 | tail -1
  nproc; uptime
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step() {  # step NAME LIMIT_S ARGS...
  local name=$1 limit=$(( $2 * SCALE )); shift 2
  echo "== $name (limit ${limit}s, $(( $(date +%s) - START ))s elapsed)"
  timeout "$limit" "$PY" -m diminish.bench --device "$DEVICE" --out-file "$OUT/$name.json" "$@" "${EXTRA[@]}" \
    > "$OUT/$name.txt" 2> "$OUT/$name.log"
  local rc=$?
  cat "$OUT/$name.txt"
  [ $rc -eq 0 ] || { echo "!! $name exited $rc; last log lines:"; tail -5 "$OUT/$name.log"; }
}

# 1. the default fast path: bf16 autocast, fused AdamW, configured batches (256/128/64, eval 256),
#    reference rows, data path (memmap and device-resident), 8 stacked fine-tuning models
step bf16 120 --mixed-precision bf16 --repeats 3 --target-seconds 0.5 --many 8
# 2. the 40k images/s target: large batches (segmentation throughput at batch 1024)
step bf16_b1024 70 --mixed-precision bf16 --batch-size 1024 --eval-batch-size 1024 --repeats 3 --target-seconds 0.5 --no-data
# 3. before/after: fp32 (TF32 matmuls) and the non-fused AdamW, fine-tuning stage only
step fp32 45 --mixed-precision no --stages finetune,intermediate --repeats 3 --target-seconds 0.5 --no-data
step bf16_foreach 35 --mixed-precision bf16 --optimizer foreach --stages finetune --repeats 3 --target-seconds 0.5 --no-data --no-reference
# 4. torch.compile: fine-tuning at the configured batch with CUDA graphs (the many-small-runs case),
#    and at batch 1024 (the throughput case)
[ "$DRY_RUN" = 1 ] || step compile_b64 110 --mixed-precision bf16 --stages finetune --compile-mode reduce-overhead --repeats 3 --target-seconds 0.5 --no-data --no-reference --no-eval
[ "$DRY_RUN" = 1 ] || step compile_b1024 80 --mixed-precision bf16 --stages finetune --compile --batch-size 1024 --repeats 3 --target-seconds 0.5 --no-data --no-reference --no-eval

# 5. the runner itself on the GPU (host work per step would show here, not on a CPU):
#    benchmarks/runner_speed.toml with 30 epochs per stage (~90k image-steps) on synthetic data,
#    bf16; per-epoch rates from the stage logs next to the bench's rows above
runner() {
  local limit=${RUNNER_LIMIT:-90} name=runner
  echo "== $name (limit ${limit}s, $(( $(date +%s) - START ))s elapsed)"
  local work; work=$(mktemp -d)
  sed 's/^epochs = 2$/epochs = '"${RUNNER_EPOCHS:-30}"'/; s#"data/synth/#"'"$work"'/synth/#' benchmarks/runner_speed.toml > "$work/runner.toml"
  timeout "$limit" bash -c "
    '$PY' -m diminish.data synth --out '$work/synth' &&
    t0=\$(date +%s) &&
    '$PY' -m diminish.run --config '$work/runner.toml' --all --no-progress --no-assemble \
      --mixed-precision bf16 --out '$work/out' --cache-dir '$work/cache' &&
    echo \"runner wall \$(( \$(date +%s) - t0 )) s (no results.nc: --no-assemble, so no netCDF4 needed)\"" > "$OUT/$name.log" 2>&1
  local rc=$?
  "$PY" - "$work/out/runner-speed" > "$OUT/$name.txt" 2>>"$OUT/$name.log" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
root = Path(sys.argv[1])
for kind in ("pretrain", "intermediate", "finetune"):
    rates = [e["images_per_s"] for f in sorted(root.glob(f"stages/{kind}/*/log.jsonl"))
             for e in map(json.loads, f.read_text().splitlines()) if e.get("event") == "epoch" and e.get("images_per_s")]
    if rates:
        print(f"runner {kind:<12} epochs {len(rates):>3}  median {statistics.median(rates):>10,.0f} img/s  "
              f"max {max(rates):>10,.0f} img/s")
PYEOF
  grep -h "runner wall" "$OUT/$name.log" >> "$OUT/$name.txt"
  cat "$OUT/$name.txt"
  [ $rc -eq 0 ] || { echo "!! $name exited $rc; last log lines:"; tail -5 "$OUT/$name.log"; }
}
# (DRY_RUN skips it; DRY_RUN=1 RUNNER=1 RUNNER_EPOCHS=1 RUNNER_LIMIT=400 runs it on a CPU in ~3 min)
[ "$DRY_RUN" = 1 ] && [ "${RUNNER:-0}" != 1 ] || runner

{
  echo "gpu_check finished in $(( $(date +%s) - START ))s"
  for f in "$OUT"/*.txt; do case "$(basename "$f")" in env.txt|summary.txt) continue;; esac; { echo "--- $(basename "$f" .txt)"; cat "$f"; }; done
} > "$OUT/summary.txt"
echo "gpu_check finished in $(( $(date +%s) - START ))s"
