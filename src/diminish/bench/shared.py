"""The shared-CPU row: the fine-tuning step timed alone and beside K busy processes, round by round.

A CPU that other jobs also use should slow a run down in proportion to their load, not collapse it.
Each round times the step alone, then starts K processes that only spin (``while True: pass``)
and times it again, then stops them; the reported ratio is the median of the per-round ratios,
so both sides of each ratio saw the same background. The fair share for T threads of ours and K
spinners on C cores is ``min(1, C / (T + K)) / min(1, C / T)`` of the lone rate.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import torch

from .timing import Job, load_average

SPIN = "while True: pass"


def start_neighbours(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(k)]


def stop_neighbours(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def fair_share(threads: int, neighbours: int, cores: int) -> float:
    return min(1.0, cores / (threads + neighbours)) / min(1.0, cores / threads)


def openmp_wait() -> str:
    """How this process's OpenMP threads wait at barriers (the environment libgomp read at start)."""
    keys = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    set_ = [f"{k}={os.environ[k]}" for k in keys if k in os.environ]
    return ", ".join(set_) or "libgomp default (spin, then sleep)"


def measure(train: Job, device: torch.device, neighbours: int, repeats: int, settle: float = 0.2) -> dict:
    """Lone and shared rates of ``train`` (a calibrated job) over ``repeats`` rounds."""
    alone = Job(train.name, train.fn, train.units, train.calls)
    shared = Job(train.name, train.fn, train.units, train.calls)
    ratios = []
    load = load_average()
    for _ in range(repeats):
        a = alone.time_once(device)
        procs = start_neighbours(neighbours)
        try:
            time.sleep(settle)  # let the spinners start
            b = shared.time_once(device)
        finally:
            stop_neighbours(procs)
        ratios.append(b / a)
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    return {"neighbours": neighbours, "threads": threads, "cores": cores,
            "alone_images_per_s": statistics.median(alone.rates), "alone_rates": alone.rates,
            "shared_images_per_s": statistics.median(shared.rates), "shared_rates": shared.rates,
            "ratio": statistics.median(ratios), "ratio_rounds": ratios,
            "fair_share": fair_share(threads, neighbours, cores), "openmp_wait": openmp_wait(),
            "load_average_before": load, "load_average_after": load_average()}
