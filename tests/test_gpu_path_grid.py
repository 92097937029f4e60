"""The GPU path's switches on the CPU, each against the default run of the tiny grid (issue 23):
device-resident data (``--resident always``), a 25-step loss window that spans epoch ends
(``--sync-every 25``) and two ``--jobs`` workers sharing one device give identical records; fused
AdamW (the CUDA default) gives the same metrics with losses equal to float rounding, and a fused run
killed mid-stage resumes bit-identical to an uninterrupted fused run (the fused optimiser's state
through a checkpoint). About 16 s per grid run on one thread."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _runner import REPO, assert_same_metrics, make_data, run_cli, write_config
from diminish.host import usable_cores
from diminish.results import read_results

pytestmark = pytest.mark.slow
WALL = ("train_seconds", "device")  # wall time; the device line names the thread count


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    base = tmp_path_factory.mktemp("gpupath")
    data = make_data(base)
    cfg = write_config(base / "tiny.toml", data)
    common = ["--config", str(cfg), "--cache-dir", str(base / "cache")]
    code, _, err = run_cli("--all", "--out", str(base / "clean"), *common)
    assert code == 0, err
    return base, common


def records(out: Path) -> dict:
    """Every stage's record.json (wall-time fields left out), by kind/key."""
    got = {}
    for f in sorted((out / "tiny" / "stages").glob("*/*/record.json")):
        rec = json.loads(f.read_text())
        got[f"{f.parent.parent.name}/{f.parent.name}"] = {k: v for k, v in rec.items() if k not in WALL}
    return got


def epoch_losses(out: Path) -> dict:
    got = {}
    for f in sorted((out / "tiny" / "stages").glob("*/*/log.jsonl")):
        got[f.parent.name] = [e["loss"] for e in map(json.loads, f.read_text().splitlines()) if e["event"] == "epoch"]
    return got


@pytest.mark.parametrize("switch", [("--resident", "always"), ("--sync-every", "25", "--checkpoint-every", "1000")],
                         ids=["resident", "sync25"])
def test_a_gpu_switch_gives_the_records_of_the_default_run(grid, switch):
    base, common = grid
    out = base / switch[0].strip("-")  # sync25: the GPU cadence too, so one window spans a stage's epochs
    code, _, err = run_cli("--all", "--out", str(out), *common, *switch)
    assert code == 0, err
    assert records(out) == records(base / "clean")
    assert epoch_losses(out) == epoch_losses(base / "clean")  # every epoch logged once, with its loss
    assert_same_metrics(read_results(out / "tiny" / "results.nc"), read_results(base / "clean" / "tiny" / "results.nc"))


def test_two_workers_sharing_one_device_give_the_records_of_the_default_run(grid):
    base, common = grid
    out = base / "shared"
    code, stdout, err = run_cli("--all", "--out", str(out), "--jobs", "2", "--poll", "0.2", "--resident", "always",
                                "--sync-every", "25", *common)
    assert code == 0, err
    assert "2 worker processes" in stdout
    if usable_cores() // 2 != 1:  # more than one thread per worker: the sums may round otherwise
        pytest.skip("bit-identity needs one thread per worker (2 usable cores)")
    assert records(out) == records(base / "clean")


def test_fused_adamw_matches_and_resumes_bit_identically(grid):
    base, common = grid
    fused = base / "fused"
    code, _, err = run_cli("--all", "--out", str(fused), *common, "--adamw", "fused")
    assert code == 0, err
    a, b = records(fused), records(base / "clean")
    assert a.keys() == b.keys()
    for k in a:  # the same metrics; the losses to float rounding (fused and foreach round differently)
        for field in ("accuracy", "miou", "iou", "confusion"):
            assert a[k].get(field) == b[k].get(field), (k, field)
        for field in ("final_loss", "history"):
            np.testing.assert_allclose(np.asarray(a[k].get(field), dtype=float),
                                       np.asarray(b[k].get(field), dtype=float), rtol=1e-5, err_msg=f"{k} {field}")
    killed = base / "fused-killed"
    args = ["--all", "--out", str(killed), *common, "--adamw", "fused", "--checkpoint-every", "0"]
    code, _, err = run_cli(*args, fault="kill@finetune:1:0")
    assert code == -9, err
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert records(killed) == a


SLOW_BUILD = """
import datetime, sys, time
sys.path.insert(0, {src!r})
from diminish.host import quiet_openmp
quiet_openmp()
import accelerate
import diminish.data.cache as cache
from accelerate.utils import InitProcessGroupKwargs

real_build, real_init = cache._build, accelerate.Accelerator.__init__

def slow_build(*a, **k):  # a cache build that outlasts the process group's timeout
    time.sleep({slow})
    return real_build(*a, **k)

def short_timeout(self, *a, **kw):  # the group's timeout, short (torch's default: 10 minutes)
    kw["kwargs_handlers"] = [*kw.get("kwargs_handlers", []),
                             InitProcessGroupKwargs(timeout=datetime.timedelta(seconds={timeout}))]
    real_init(self, *a, **kw)

cache._build, accelerate.Accelerator.__init__ = slow_build, short_timeout
from diminish.runner import launch
launch.run_units = lambda ctx, plan, units, opts: (ctx.acc.wait_for_everyone(), 0)[1]  # one collective, no training
launch.tidy_and_assemble = lambda *a, **k: None
from diminish.runner.cli import cli
sys.exit(cli(sys.argv[1:]))
"""


def test_a_cache_build_longer_than_the_group_timeout_does_not_end_a_multi_process_run(grid, tmp_path):
    """Two processes over gloo, a 4-s process-group timeout, each cache build 8 s: the caches are
    built before the group exists (the ranks take the cache lock in turn), so no rank waits in a
    collective while another decodes; before, rank 1 waited in main_process_first's barrier and the
    run died on the timeout (as the first multi-GPU run would on NCCL's 10 minutes)."""
    base, common = grid
    script = tmp_path / "slow_build_run.py"
    script.write_text(SLOW_BUILD.format(src=str(REPO / "src"), slow=8, timeout=4))
    i = common.index("--cache-dir") + 1
    args = [*common[:i], str(tmp_path / "fresh-cache"), *common[i + 1:]]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), "--all",
           "--no-progress", "--out", str(tmp_path / "out"), *args]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(list((tmp_path / "fresh-cache").glob("*/manifest.json"))) == 4


COMPILE_COUNTING = """
import logging, sys, torch
compiled, recompiles = [], []
real = torch.compile
def aot_eager(fn, **kw):  # the runner's compile path, through AOTAutograd, without C++ code generation
    compiled.append(getattr(fn, "__qualname__", type(fn).__name__))
    return real(fn, backend="aot_eager")
torch.compile = aot_eager
class Catch(logging.Handler):
    def emit(self, record):
        if "ecompil" in record.getMessage():
            recompiles.append(record.getMessage().splitlines()[0])
torch._logging.set_logs(recompiles=True)
for name in ("torch._dynamo", "torch._dynamo.guards", "torch._dynamo.convert_frame"):
    logging.getLogger(name).addHandler(Catch())
from diminish.runner import cli
code = cli.main(sys.argv[1:])
import torch._dynamo.utils as u
print("COMPILE", {"compiled": compiled, "recompiles": recompiles, "graphs": u.counters["stats"]["unique_graphs"]})
sys.exit(code)
"""


def test_compile_after_a_bf16_prepare_compiles_each_model_class_once_across_the_grid(grid, tmp_path):
    """--compile with bf16 autocast: Accelerate's prepare wraps every new model's forward in a new
    autocast closure; compiled on top of it, each of the 19 stages recompiled and dynamo fell back
    to eager after its limit of 8 (18 recompiles measured). Compiled underneath, once per class:
    three graphs, no recompile."""
    base, common = grid
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-c", COMPILE_COUNTING, "--all", "--no-progress", "--mixed-precision", "bf16",
                        "--compile", "--out", str(out), *common], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    got = ast.literal_eval(p.stdout.split("COMPILE ")[-1].strip())
    assert len(list((out / "tiny" / "stages").glob("*/*/done"))) == 19
    assert sorted(got["compiled"]) == ["Classifier.forward", "Segmenter.forward", "SimMIM.forward"]
    assert got["recompiles"] == [] and got["graphs"] == 3
