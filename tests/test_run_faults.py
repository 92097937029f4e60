"""Interrupted, killed and concurrent runs end with the same results as one clean run (subprocesses)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from _runner import assert_same_metrics, make_data, run_cli, write_config
from diminish.results import read_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    data = make_data(base)
    cfg = write_config(base / "tiny.toml", data)
    common = ["--config", str(cfg), "--cache-dir", str(base / "cache"), "--checkpoint-every", "0"]
    code, out, err = run_cli("--all", "--out", str(base / "clean"), *common)
    assert code == 0, err
    return base, common, read_results(base / "clean" / "tiny" / "results.nc")


def _done_counts(out_root) -> Counter:
    lines = (out_root / "tiny" / "executions.jsonl").read_text().splitlines()
    return Counter((e["kind"], e["key"]) for e in map(json.loads, lines) if e["event"] == "done")


def test_sigterm_then_sigkill_then_resume_gives_identical_results(setup):
    base, common, clean = setup
    out = base / "faulty"
    # SIGTERM in the middle of the first epoch of an intermediate stage: saves mid-epoch, exits 143
    code, _, err = run_cli("--all", "--out", str(out), *common, fault="term@intermediate:0:0")
    assert code == 143, err
    assert "Resume with the same command" in err and "epoch 0, step 1" in err
    # SIGKILL in the second epoch of a fine-tuning stage: nothing saved beyond the epoch-0 checkpoint
    code, _, err = run_cli("--all", "--out", str(out), *common, fault="kill@finetune:1:0")
    assert code == -9, err
    code, stdout, err = run_cli("--all", "--out", str(out), *common)
    assert code == 0, err
    assert_same_metrics(read_results(out / "tiny" / "results.nc"), clean)
    events = [json.loads(x) for x in (out / "tiny" / "executions.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "resume" for e in events) == 2  # the terminated and the killed stage
    assert set(_done_counts(out).values()) == {1}  # no stage finished twice
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-") or p.name == "checkpoint.pt"]
    assert not list((out / "tiny" / "claims").iterdir())


def test_two_shards_on_one_folder_run_each_stage_once(setup):
    base, common, clean = setup
    out = base / "shards"
    procs = [run_cli("--all", "--out", str(out), "--shard", f"{k}/2", "--poll", "0.2", *common, wait=False)
             for k in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    counts = _done_counts(out)
    assert set(counts.values()) == {1} and len(counts) == 1 + 2 + 8 + 8
    assert_same_metrics(read_results(out / "tiny" / "results.nc"), clean)


def test_ddp_on_two_cpu_processes_fills_the_grid(setup):
    """torchrun with 2 processes: real DDP over gloo (sharded batches, gathered metrics, one writer)."""
    import subprocess
    import sys

    from _runner import REPO

    base, common, clean = setup
    out = base / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "diminish.run",
           "--all", "--no-progress", "--out", str(out), *common]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    ds = read_results(out / "tiny" / "results.nc")
    assert ds.attrs["device"].endswith("x2")
    assert bool(ds.miou.notnull().all()) and bool(ds.intermediate_accuracy.notnull().all())
    events = [json.loads(x) for x in (out / "tiny" / "executions.jsonl").read_text().splitlines()]
    assert len({e["pid"] for e in events}) == 1  # only the main process writes
    assert set(_done_counts(out).values()) == {1}


def test_jobs_runs_worker_processes_that_share_the_grid(setup):
    import os

    base, common, clean = setup
    out = base / "jobs"
    code, stdout, err = run_cli("--all", "--out", str(out), "--jobs", "2", "--poll", "0.2", *common)
    assert code == 0, err
    assert "2 worker processes" in stdout
    counts = _done_counts(out)
    assert set(counts.values()) == {1} and len(counts) == 1 + 2 + 8 + 8
    events = [json.loads(x) for x in (out / "tiny" / "executions.jsonl").read_text().splitlines()]
    assert len({e["pid"] for e in events if e["event"] == "done"}) == 2  # both workers trained
    ds = read_results(out / "tiny" / "results.nc")
    if (os.cpu_count() or 1) // 2 == 1:  # one thread per worker, as in the clean run: bit-identical
        assert_same_metrics(ds, clean)
    else:
        assert bool(ds.miou.notnull().all())


def test_jobs_deal_gpus_round_robin(monkeypatch, tmp_path):
    """More workers than GPUs put several on each GPU (many small runs at once); none is left idle."""
    from diminish.runner import launch, schedule

    envs, cmds = [], []

    class FakeProcess:
        pid = 0

        def __init__(self, cmd, env):
            envs.append(env)
            cmds.append(cmd)

        def wait(self):
            return 1  # pretend the workers failed: run_jobs returns before assembling

    monkeypatch.setattr(launch, "_cuda_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(launch.subprocess, "Popen", FakeProcess)
    opts = schedule.RunOptions(config="c.toml", jobs=5, claim_timeout=1.0)
    assert launch.run_jobs(opts, None, None) == 1
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0", "1", "0"]
    # they split its memory, told on their command line (not through the environment)
    assert [c[c.index("--gpu-share") + 1] for c in cmds] == ["3", "2", "3", "2", "3"]
    assert not [k for e in envs for k in e if k.startswith("DIMINISH_")]
    assert [c[c.index("--shard") + 1] for c in cmds] == [f"{i}/5" for i in range(5)]
    assert all("--no-assemble" in c and c[c.index("--jobs") + 1] == "1" for c in cmds)
    monkeypatch.setattr(launch, "_cuda_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    envs.clear()
    launch.run_jobs(schedule.RunOptions(config="c.toml", jobs=2, claim_timeout=1.0), None, None)
    assert len(envs) == 2  # no GPUs: the workers' GPU visibility is left as it was
    assert {e.get("CUDA_VISIBLE_DEVICES") for e in envs} == {__import__("os").environ.get("CUDA_VISIBLE_DEVICES")}


def test_ddp_pretraining_without_the_cls_token(setup, tmp_path):
    """SimMIM with cls_in_pretrain = false leaves the CLS token unused; DDP must accept that."""
    import os
    import subprocess
    import sys

    from _runner import REPO

    base, common, _ = setup
    i = common.index("--config") + 1
    cfg = tmp_path / "nocls.toml"
    cfg.write_text(open(common[i]).read() + "\n[simmim]\ncls_in_pretrain = false\n")
    args = [*common[:i], str(cfg), *common[i + 1:]]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "diminish.run",
           "--all", "--no-progress", "--out", str(tmp_path / "out"), *args]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    ds = read_results(tmp_path / "out" / "tiny" / "results.nc")
    assert bool(ds.pretrain_loss.sel(pretrain=16).notnull().all()) and bool(ds.miou.notnull().all())
