"""Shared helpers for the runner tests: a tiny synthetic dataset and a tiny grid config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
METRICS = ("accuracy", "miou", "iou", "final_loss", "pretrain_loss", "intermediate_accuracy")

TINY = """
name = "tiny"
seeds = [0]
synthetic = true
description = "test grid"

[model]
depth = 1
dim = 32
heads = 2
dim_head = 16
mlp_dim = 64

[data]
pets_root = "{data}/oxford-iiit-pet"
intel_root = "{data}/intel-image-classification"
imagenet_root = "{data}/imagenet"

[pretrain]
sizes = [0, 16]
epochs = 2
lr = 1e-3
weight_decay = 0.05
gamma = 0.1
milestones = [1]
batch_size = 8

[intermediate]
epochs = 2
lr = 1e-3
weight_decay = 0.0
gamma = 0.1
milestones = [1]
batch_size = 12

[finetune]
sizes = [8, 16]
test_size = 12
epochs = 2
lr = {ft_lr}
weight_decay = 1e-4
gamma = 0.5
milestones = [1]
batch_size = 8
eval_batch_size = 8
"""


def fault_tool():
    """tools/fault_injection.py loaded as a module (its kill loop and checks are shared by tests)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fault_injection", REPO / "tools" / "fault_injection.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fault_injection", mod)
    spec.loader.exec_module(mod)
    return mod


def make_data(root: Path) -> Path:
    """Tiny synthetic datasets in the real layouts (written once per test session)."""
    from diminish.data import write_synthetic

    data = root / "synth"
    if not (data / "done").exists():
        write_synthetic(data, seed=0, pets=40, intel_per_class=4, imagenet=24, intel_test_per_class=2, workers=1)
        (data / "done").write_text("ok")
    return data


def write_config(path: Path, data: Path, ft_lr: float = 2e-3) -> Path:
    path.write_text(TINY.format(data=data, ft_lr=ft_lr))
    return path


def run_cli(*args: str, env: dict | None = None, wait: bool = True, timeout: float = 300):
    """``python -m diminish.run ARGS`` in a subprocess with one CPU thread (bit-identical runs)."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    e.pop("DIMINISH_FAULT", None) if not (env and "DIMINISH_FAULT" in env) else None
    cmd = [sys.executable, "-m", "diminish.run", "--no-progress", *args]
    p = subprocess.Popen(cmd, env=e, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def assert_same_metrics(a, b) -> None:
    for v in METRICS:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
