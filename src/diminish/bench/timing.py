"""The instruments: a timed row (:class:`Job`), a peak-memory probe, and a description of the machine.

A :class:`Job` is calibrated once to a whole number of calls lasting at least ``target_seconds``;
each timing then yields a wall-clock rate and, beside it, a rate per CPU-second of this process
divided by the thread count. On a CPU shared with other work the second is the steadier number:
exact with one thread, inflated by spin-waiting threads with more.

:class:`MemoryProbe` reports the peak memory of what runs inside it, in MiB:

* CUDA: ``max_memory_allocated`` minus what was allocated on entry (after emptying the cache);
* CPU: how far the process's resident-set high-water mark (``VmHWM``) rose above its resident
  set on entry. On entry freed heap is handed back to the system (``malloc_trim``) and the mark is
  reset through ``/proc/self/clear_refs``; where that is refused the figure is an upper bound, and
  ``kind`` says so.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core import fastpath
from ..host import usable_cores


@dataclass
class Job:
    """One row of the benchmark: ``fn()`` processes ``units`` items (images, or FLOPs)."""

    name: str
    fn: Callable[[], object]
    units: float
    calls: int = 1
    rates: list[float] = field(default_factory=list)
    cpu_rates: list[float] = field(default_factory=list)

    def calibrate(self, device: torch.device, target_s: float) -> None:
        fastpath.synchronize(device)
        t = time.perf_counter()
        self.fn()
        fastpath.synchronize(device)
        dt = time.perf_counter() - t
        self.calls = max(1, math.ceil(target_s / max(dt, 1e-9)))

    def warm_up(self, device: torch.device, warmup: int, target_s: float) -> Job:
        """``warmup`` calls (at least one: compiles, allocator, caches), then :meth:`calibrate`."""
        for _ in range(max(1, warmup)):
            self.fn()
        self.calibrate(device, target_s)
        return self

    def time_once(self, device: torch.device) -> float:
        fastpath.synchronize(device)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(self.calls):
            self.fn()
        fastpath.synchronize(device)
        rate = self.calls * self.units / (time.perf_counter() - t)
        self.rates.append(rate)
        # CPU seconds of this process per thread: a load-robust companion on a shared CPU
        cpu = (time.process_time() - c) / max(1, torch.get_num_threads())
        self.cpu_rates.append(self.calls * self.units / cpu if cpu > 0 else math.nan)
        return rate

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else math.nan


def _rss_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryProbe:
    """Peak memory of what happens inside the ``with`` block, in MiB (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mib: float | None = None
        self.kind = ""

    def __enter__(self) -> MemoryProbe:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
        else:
            fastpath.release_cpu_memory()
            self._base = _rss_kib("VmRSS")
            try:  # reset the high-water mark (Linux: "5" resets VmHWM to the current RSS)
                Path("/proc/self/clear_refs").write_text("5")
                self.kind = "cpu VmHWM rise"
            except OSError:
                self.kind = "cpu VmHWM rise (not resettable: upper bound)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            hwm = _rss_kib("VmHWM")
            if hwm is not None and self._base is not None:
                self.peak_mib = max(0, hwm - self._base) / 1024


def device_info(device: torch.device) -> dict:
    info = {"type": device.type, "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu": _cpu_name(), "cpus": usable_cores()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update({"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1),
                     "cuda": torch.version.cuda})
    info["name"] = info.get("gpu") or f"{info['cpu']} ({info['threads']} threads)"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
