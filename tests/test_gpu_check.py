"""benchmarks/gpu_check.sh: its dry run on the CPU (every step, small data) passes and leaves its JSON,
and the GPU step limits add up to at most 300 s (issue 23)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from _runner import REPO

pytestmark = pytest.mark.slow


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_gpu_step_limits_add_up_to_five_minutes():
    mod = _module()
    assert sum(mod.LIMITS.values()) <= 300
    assert list(mod.LIMITS) == list(mod.STEPS) == ["smoke", "runner", "compile", "jobs2", "resume", "cuda_tests",
                                                   "bench"]


def test_the_cpu_dry_run_of_the_gpu_check_passes_and_writes_its_json(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu"], cwd=REPO,
                       env={**os.environ, "OUT": str(out)}, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    steps = report["steps"]
    assert list(steps) == ["smoke", "runner", "compile", "jobs2", "resume", "cuda_tests", "bench"]
    assert {n: s["status"] for n, s in steps.items()} == {**{n: "ok" for n in steps}, "compile": "skipped"}
    assert steps["runner"]["stages"] >= 9 and steps["runner"]["syncs_by_place"]["step"] == 0
    assert steps["jobs2"]["training_workers"] == 2 and steps["jobs2"]["identical_to_runner"]
    assert (steps["resume"]["rc_term"], steps["resume"]["identical_to_runner"]) == (143, True)
    assert steps["smoke"]["loss_window_ok"] and steps["smoke"]["fused_adamw_max_diff"] < 1e-4
    assert (out / "env.txt").is_file() and (out / "runner.log").is_file()


def test_a_failing_step_still_leaves_the_others_numbers(tmp_path):
    out = tmp_path / "out"
    mod = _module()
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cuda",
                        "--out", str(out), "--only", "smoke"], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 1
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["steps"]["smoke"]["status"] == "failed" and "no CUDA device" in report["steps"]["smoke"]["log_tail"]
    assert report["limit_total_s"] == mod.LIMITS["smoke"]
