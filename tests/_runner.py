"""Shared helpers for the runner tests: the tiny synthetic dataset and grid of tools/fault_injection.py,
the runner CLI in a subprocess, and exact comparison of results."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def fault_tool():
    """tools/fault_injection.py loaded as a module (its grid, kill loop and checks are shared by tests)."""
    spec = importlib.util.spec_from_file_location("fault_injection", REPO / "tools" / "fault_injection.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fault_injection", mod)
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def faulty():
    """tools/faulty_run.py loaded as a module (its :class:`Fault` step hook)."""
    spec = importlib.util.spec_from_file_location("faulty_run", REPO / "tools" / "faulty_run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_data(root: Path) -> Path:
    """Tiny synthetic datasets in the real layouts (written once per folder; the fault tool's)."""
    return fault_tool().make_data(root)


def write_config(path: Path, data: Path, ft_lr: float = 2e-3) -> Path:
    """The tiny grid (1 seed, 2 epochs per stage; the fault tool's) with fine-tuning lr ``ft_lr``."""
    return fault_tool().write_config(path, data, ft_lr=ft_lr)


def run_cli(*args: str, env: dict | None = None, wait: bool = True, timeout: float = 300, fault: str | None = None):
    """``python -m diminish.run ARGS`` in a subprocess with one CPU thread (bit-identical runs);
    with ``fault`` (``ACTION@KIND:EPOCH:STEP``) through ``tools/faulty_run.py``, which injects it."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    entry = ["-m", "diminish.run"] if fault is None else [str(REPO / "tools" / "faulty_run.py"), fault]
    cmd = [sys.executable, *entry, "--no-progress", *args]
    p = subprocess.Popen(cmd, env=e, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def assert_same_metrics(a, b) -> None:
    for v in fault_tool().METRICS:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
