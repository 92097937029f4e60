"""Fault injection (short, for CI): SIGKILL at seeded random moments, SIGTERM mid-epoch, a full disk,
an unwritable output folder, and two runners on one folder with one killed while holding a claim.

Each scenario ends with the same checks: results.nc equal to an uninterrupted run's (every metric
and loss; train_seconds is wall time), no stage finished twice, no stray file left (temporary or
partial files, checkpoints of finished stages, claims). The long version with >= 20 kills is
``tools/fault_injection.py``, whose helpers these tests share.
"""

from __future__ import annotations

import resource
import shutil
import signal
from pathlib import Path

import pytest

from _runner import fault_tool

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


fi = fault_tool()


def run(config: Path, out: Path, cache: Path, log: Path, *extra: str, env: dict | None = None, timeout=300,
        fault: str | None = None):
    p = fi.start(config, out, cache, log, *extra, env=env, fault=fault)
    p.wait(timeout=timeout)
    return p.returncode, log.read_text()


def check_clean_finish(out: Path, ref: Path, cache: Path | None = None) -> None:
    root = out / fi.NAME
    assert fi.differences(root, ref) == []
    assert fi.duplicate_stages(root) == []
    assert fi.stray_files(out, cache) == []


def test_seeded_sigkills_at_random_moments_lose_nothing(grid):
    work, config, _ = grid
    rep = fi.campaign(work, config, kills=3, seed=11)
    assert rep.kills == 3 and rep.rounds >= 1 and not rep.problems, rep
    assert rep.line() == "kills survived: 3/3, results identical: yes, duplicate stages: 0, stray files: 0"
    assert rep.ok


def test_sigterm_mid_epoch_saves_and_the_resumed_run_is_identical(grid, tmp_path):
    """A term fault (tools/faulty_run.py) sends this process a real SIGTERM at a chosen step (as a scheduler would)."""
    work, config, ref = grid
    out, cache = tmp_path / "out", work / "reference-cache"
    root = out / fi.NAME
    # a real SIGTERM at step 0 of pre-training's first epoch (2 steps): it finishes the step and saves
    code, log = run(config, out, cache, tmp_path / "1.log", fault="term@pretrain:0:0")
    assert code == 128 + signal.SIGTERM, log
    assert "SIGTERM received" in log and "interrupted in pretrain P=16 seed=0 at epoch 0, step 1" in log
    assert "Resume with the same command" in log and "Traceback" not in log
    import torch

    (ck,) = root.glob("stages/pretrain/*/checkpoint.pt")
    state = torch.load(ck, map_location="cpu", weights_only=True)["state"]
    assert (state["epoch"], state["step"]) == (0, 1)  # mid-epoch
    assert not list((root / "claims").glob("*.claim")) and not (root / "results.nc").exists()
    code, log = run(config, out, cache, tmp_path / "2.log")
    assert code == 0, log
    resumed = [e for e in fi.events(root) if e["event"] == "resume"]
    assert [(e["kind"], e["epoch"], e["step"]) for e in resumed] == [("pretrain", 0, 1)]
    check_clean_finish(out, ref)


def test_unwritable_output_folder_fails_at_once_with_a_clear_message(grid, tmp_path):
    work, config, _ = grid
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    code, log = run(config, blocker / "results", tmp_path / "cache", tmp_path / "u.log")
    assert code == 1, log
    assert "output folder is not writable" in log and str(blocker / "results" / fi.NAME) in log
    assert "Traceback" not in log
    assert not (tmp_path / "cache").exists()  # stopped before any work


def _file_size_limit(nbytes: int):
    def apply():  # in the child: writes beyond nbytes fail with EFBIG, like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def test_full_disk_stops_with_a_clear_message_and_loses_nothing(grid, tmp_path):
    work, config, ref = grid
    out = tmp_path / "out"
    shutil.copytree(ref.parent, out)  # a finished grid ...
    (out / "timing.json").unlink(missing_ok=True)
    root = out / fi.NAME
    before = (root / "results.nc").read_bytes()
    done_before = sorted(p.parent for p in root.glob("stages/*/*/done"))
    n_events = len(fi.events(root))
    variant = tmp_path / "variant.toml"  # ... and a new fine-tuning setting: 8 new cells to run
    variant.write_text(config.read_text().replace("lr = 2e-3", "lr = 1e-3"))
    log = tmp_path / "full.log"
    p = fi.start(variant, out, work / "reference-cache", log, preexec_fn=_file_size_limit(64 * 1024))
    p.wait(timeout=300)
    text = log.read_text()
    assert p.returncode == 1, text
    assert "File too large" in text and "checkpoint.pt" in text and "Traceback" not in text
    assert "rerun the same command" in text
    assert (root / "results.nc").read_bytes() == before  # nothing lost
    assert all((d / "done").is_file() for d in done_before)
    assert len(list(root.glob("stages/finetune/*/failed.json"))) == 1  # the failure is recorded
    assert not list(root.rglob(".tmp-*")) and not list((root / "claims").glob("*.claim"))
    # space again: the same command finishes the variant, reusing pre-training and intermediate stages
    code, text = run(variant, out, work / "reference-cache", tmp_path / "again.log")
    assert code == 0 and "(grid complete)" in text, text
    new = fi.events(root)[n_events:]
    assert {e["kind"] for e in new if e["event"] in ("start", "resume")} == {"finetune"}
    assert fi.duplicate_stages(root) == [] and fi.stray_files(out) == []
    assert not list(root.glob("stages/*/*/failed.json"))


def test_two_runners_one_killed_while_holding_a_claim(grid, tmp_path):
    work, config, ref = grid
    out, cache = tmp_path / "out", work / "reference-cache"
    root = out / fi.NAME
    common = ("--poll", "0.2")
    a = fi.start(config, out, cache, tmp_path / "a.log", "--shard", "0/2", *common,
                 fault="kill@finetune:1:0")  # dies inside its first fine-tuning
    b = fi.start(config, out, cache, tmp_path / "b.log", "--shard", "1/2", *common)
    a.wait(timeout=300)
    b.wait(timeout=300)
    log_b = (tmp_path / "b.log").read_text()
    assert a.returncode == -signal.SIGKILL, (tmp_path / "a.log").read_text()
    assert b.returncode == 0 and "(grid complete)" in log_b, log_b
    ev = fi.events(root)
    killed = [e for e in ev if e["pid"] == a.pid and e["kind"] == "finetune" and e["event"] in ("start", "resume")][-1]
    taken = [e for e in ev if e["key"] == killed["key"] and e["pid"] == b.pid]
    assert [e["event"] for e in taken] == ["resume", "done"]  # B took the claim over, resumed the checkpoint
    assert {e["pid"] for e in ev if e["event"] == "done"} <= {a.pid, b.pid}
    check_clean_finish(out, ref)
