"""tools/slurm_array.sh builds the right commands (a fake sbatch and python; no scheduler needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from _runner import REPO

SCRIPT = REPO / "tools" / "slurm_array.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def _run(args, tmp_path, **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls.txt"
    # sbatch: record the arguments one per line, answer with a job id as --parsable does
    _fake(bin_dir, "sbatch", f'printf "%s\\n" "$@" >> {calls}; echo "---" >> {calls}; '
                             f'n=$(grep -c -- --- {calls}); echo "$((1000 + n));cluster"\n')
    _fake(bin_dir, "fakepython", f'printf "%s\\n" "$@" >> {calls}\n')
    e = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": "fakepython", **env}
    p = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=e, capture_output=True, text=True)
    text = calls.read_text() if calls.exists() else ""
    return p, [c.strip().splitlines() for c in text.split("---") if c.strip()]


def test_submit_makes_an_array_and_a_dependent_assembly(tmp_path):
    (tmp_path / "c.toml").write_text('name = "c"\n')
    p, calls = _run(["submit", "4", "c.toml", "--set", "finetune.lr=1e-3"], tmp_path,
                    SBATCH_ARGS="--account=a", TASK_SBATCH_ARGS="--gres=gpu:1")
    assert p.returncode == 0, p.stderr
    array, final = calls
    assert array[array.index("--array") + 1] == "0-3"
    assert array[array.index("--output") + 1] == "logs/slurm/%x-%A_%a.log"
    assert "--account=a" in array and "--gres=gpu:1" in array
    assert array[-5:] == ["task", "4", "c.toml", "--set", "finetune.lr=1e-3"] and array[-6] == str(SCRIPT)
    assert final[final.index("--dependency") + 1] == "afterok:1001"  # the array's id, cluster suffix dropped
    assert "--account=a" in final and "--gres=gpu:1" not in final  # the assembly needs no GPU
    assert final[-4:] == ["assemble", "c.toml", "--set", "finetune.lr=1e-3"] and final[-5] == str(SCRIPT)
    assert (tmp_path / "logs" / "slurm").is_dir()
    assert "array job 1001 (4 tasks" in p.stdout and "assembly job 1002" in p.stdout


def test_each_task_runs_its_shard_and_the_assembly_runs_the_rest(tmp_path):
    p, calls = _run(["task", "4", "c.toml", "--set", "name=x"], tmp_path, SLURM_ARRAY_TASK_ID="2")
    assert p.returncode == 0, p.stderr
    assert calls[0] == ["-m", "diminish.run", "--config", "c.toml", "--all", "--shard", "2/4", "--no-progress",
                        "--no-assemble", "--set", "name=x"]
    (tmp_path / "calls.txt").unlink()
    p, calls = _run(["task", "2", "c.toml"], tmp_path, SLURM_ARRAY_TASK_ID="0", LAUNCH="fakepython launch -q -m")
    assert calls[0][:4] == ["launch", "-q", "-m", "diminish.run"] and "0/2" in calls[0]  # e.g. accelerate launch
    (tmp_path / "calls.txt").unlink()
    p, calls = _run(["assemble", "c.toml", "--set", "name=x"], tmp_path)
    assert calls[0] == ["-m", "diminish.run", "--config", "c.toml", "--all", "--no-progress", "--set", "name=x"]


def test_bad_use_fails_with_a_message(tmp_path):
    p, calls = _run(["task", "4", "c.toml"], tmp_path, SLURM_ARRAY_TASK_ID="")
    assert p.returncode != 0 and "SLURM_ARRAY_TASK_ID is not set" in p.stderr and not calls
    p, _ = _run(["submit", "0", "c.toml"], tmp_path)
    assert p.returncode == 2 and "N must be a positive integer" in p.stderr
    p, _ = _run(["submit", "2", "missing.toml"], tmp_path)
    assert p.returncode == 2 and "config file not found: missing.toml" in p.stderr
