"""What this machine offers a process: the CPU cores it may run on.

One definition for every part that sizes itself to the machine (cache decoding workers, the
synthetic data writer, ``--jobs`` threads, the benchmark's device line). It reads the CPU
affinity, which SLURM's ``--cpus-per-task`` and ``taskset`` set, not the machine's core count.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity; the core count off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# OpenMP threads that reach a barrier first spin for at most 10,000 rounds, then sleep (libgomp's
# default spins for 300,000). On a CPU shared with other jobs a spinning thread holds a core that
# its descheduled sibling needs, and 2-thread fine-tuning fell far below its share of the machine
# beside busy processes (benchmarks/README.md, "Shared CPUs"); a short spin still catches the quick
# barriers of a quiet machine.
SPINCOUNT = "10000"


def quiet_openmp() -> None:
    """Set ``GOMP_SPINCOUNT`` for this process and its children unless the user chose a wait
    policy (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``). libgomp reads it when torch loads, so the
    command lines that train (``python -m diminish.run``, ``.bench``, ``.evaluate``) call this
    first, before importing anything that imports torch."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
