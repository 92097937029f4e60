#!/usr/bin/env bash
# Run the study grid as a SLURM job array, then assemble results.nc in a dependent job.
#
#   tools/slurm_array.sh submit N CONFIG [diminish.run options ...]
#
# run from the repository root on a file system every node shares. It submits
#   1. an array of N tasks; task i runs
#        python -m diminish.run --config CONFIG --all --shard i/N --no-progress --no-assemble [options]
#      each task takes its share of the units (round-robin in plan order), then helps with any
#      unclaimed unit; claims in the shared output folder keep any stage from running twice;
#   2. one assembly job that starts after every task has succeeded (--dependency=afterok) and runs
#        python -m diminish.run --config CONFIG --all [options]
#      which, with the grid finished, only writes OUT/<name>/results.nc and examples.npz.
# Logs: logs/slurm/<job name>-<array job id>_<task>.log per task, <job name>-<job id>.log for the
# assembly (LOGS=... to change). Resources: SBATCH_ARGS (e.g. "--account=X --partition=Y") go to both
# sbatch calls, TASK_SBATCH_ARGS (e.g. "--gres=gpu:1 --time=12:00:00") to the array only. PYTHON
# (default: python) is the interpreter with diminish installed; LAUNCH (default: "$PYTHON -m") starts
# each task, e.g. LAUNCH="accelerate launch -q -m" for several GPUs per task. A failed task leaves the
# assembly pending (afterok): fix the cause and submit again; finished stages are reused.
# DRY_RUN=1 prints the sbatch commands instead of submitting.
#
# The same two steps under other schedulers (index -> --shard i/N, then one final --all; sketches,
# not tried on those schedulers):
#   PBS Pro:  qsub -J 0-7 -- /bin/bash -c 'python -m diminish.run --config C --all --shard $PBS_ARRAY_INDEX/8'
#   LSF:      bsub -J 'grid[1-8]' 'python -m diminish.run --config C --all --shard $((LSB_JOBINDEX-1))/8'
#   SGE:      qsub -t 1-8 -b y bash -c 'python -m diminish.run --config C --all --shard $((SGE_TASK_ID-1))/8'
#
# (Inside the jobs this script is called again as `task N CONFIG ...` and `assemble CONFIG ...`.)
set -euo pipefail

PYTHON=${PYTHON:-python}
LOGS=${LOGS:-logs/slurm}
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

usage() { echo "usage: $0 submit N CONFIG [diminish.run options ...]" >&2; exit 2; }

case "${1:-}" in
  submit)
    [ $# -ge 3 ] || usage
    n=$2; config=$3; shift 3
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: N must be a positive integer, got '$n'" >&2; exit 2; }
    [ -f "$config" ] || { echo "error: config file not found: $config" >&2; exit 2; }
    name=diminish-$(basename "$config" .toml)
    # shellcheck disable=SC2206
    extra=(${SBATCH_ARGS:-})
    # shellcheck disable=SC2206
    task_extra=(${TASK_SBATCH_ARGS:-})
    array=(sbatch --parsable --job-name "$name" --array "0-$((n - 1))" --output "$LOGS/%x-%A_%a.log"
           "${extra[@]}" "${task_extra[@]}" "$SELF" task "$n" "$config" "$@")
    if [ "${DRY_RUN:-0}" = 1 ]; then
      printf '%q ' "${array[@]}"; echo
      jobid='$ARRAY_JOB_ID'
    else
      mkdir -p "$LOGS"
      jobid=$("${array[@]}")
      jobid=${jobid%%;*}  # --parsable prints "id" or "id;cluster"
    fi
    final=(sbatch --parsable --job-name "$name-assemble" --dependency "afterok:$jobid"
           --output "$LOGS/%x-%j.log" "${extra[@]}" "$SELF" assemble "$config" "$@")
    if [ "${DRY_RUN:-0}" = 1 ]; then
      printf '%q ' "${final[@]}"; echo
    else
      fin=$("${final[@]}")
      echo "submitted array job ${jobid} (${n} tasks, logs in ${LOGS}/) and assembly job ${fin%%;*} after it"
    fi
    ;;
  task)
    [ $# -ge 3 ] || usage
    n=$2; config=$3; shift 3
    : "${SLURM_ARRAY_TASK_ID:?task: SLURM_ARRAY_TASK_ID is not set (submit with: $0 submit N CONFIG)}"
    # shellcheck disable=SC2206
    launch=(${LAUNCH:-$PYTHON -m})
    exec "${launch[@]}" diminish.run --config "$config" --all --shard "$SLURM_ARRAY_TASK_ID/$n" \
      --no-progress --no-assemble "$@"
    ;;
  assemble)
    [ $# -ge 2 ] || usage
    config=$2; shift 2
    exec "$PYTHON" -m diminish.run --config "$config" --all --no-progress "$@"
    ;;
  *) usage ;;
esac
