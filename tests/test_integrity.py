"""Hostile and damaged files: no code runs from a model or checkpoint file, every damaged
stored file is named in one line and recovered by running the stage that wrote it again, and a
model whose last step overflowed is never evaluated. (Caches, dataset folders and the command
lines: tests/test_hostile_inputs.py.)

The runner cases use a one-cell grid (P=16, I off, F=8, one seed, two epochs per stage), run once
per module; each test damages a copy of its output folder and runs the grid on the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _runner import REPO, fault_tool
from diminish.config import load
from diminish.results import read_results
from diminish.runner import cli as run
from diminish.runner.digests import DamagedFile
from diminish.runner.plan import build_plan
from diminish.runner.store import Store

fi = fault_tool()


class Evil:
    """Unpickling this runs ``touch <marker>``: what a crafted .pt file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_evil(path: Path, marker: Path) -> Path:
    torch.save({"format": 1, "task": "segment", "model_config": {}, "state_dict": {}, "x": Evil(marker)}, path)
    return path


def copy_run(cell, tmp_path: Path):
    """A copy of the finished output folder, and a function running the grid on it -> (status, stderr)."""
    base, cfg, out = cell
    mine = tmp_path / "out"
    shutil.copytree(out, mine)
    root = mine / "one-cell"

    def again(capsys):
        code = run.cli(["--all", "--no-progress", "--config", str(cfg), "--out", str(mine),
                        "--cache-dir", str(base / "cache")])
        return code, capsys.readouterr().err

    return root, again


def stage_dir(root: Path, kind: str) -> Path:
    (d,) = (root / "stages" / kind).iterdir()
    return d


def started(root: Path) -> list[str]:
    return [e["kind"] for e in fi.events(root) if e["event"] == "start"]


def assert_same_results(a: Path, b: Path) -> None:
    x, y = read_results(a / "results.nc"), read_results(b / "results.nc")
    for v in ("accuracy", "miou", "iou", "final_loss", "pretrain_loss"):
        np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=v)


# -- no code runs from a file -------------------------------------------------------------------
def test_a_crafted_model_file_runs_no_code_in_evaluate(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_evil(tmp_path / "model.pt", marker)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run([sys.executable, "-m", "diminish.evaluate", str(evil), "--pets-root", str(tmp_path),
                        "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert not marker.exists()
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"error: {evil}: not a loadable diminish model file"), p.stderr


@pytest.mark.parametrize("recorded", [True, False], ids=["checksum recorded", "done of an older version"])
def test_a_crafted_upstream_model_runs_no_code_in_the_runner(cell, tmp_path, capsys, recorded):
    root, again = copy_run(cell, tmp_path)
    marker = tmp_path / "pwned"
    pre = stage_dir(root, "pretrain")
    write_evil(pre / "model.pt", marker)
    if not recorded:  # a done file without checksums: the load itself must refuse the pickle
        done = json.loads((pre / "done").read_text())
        done.pop("files", None)
        (pre / "done").write_text(json.dumps(done))
    for kind in ("finetune", "evaluate"):  # the cell must run again, reading the upstream model
        shutil.rmtree(stage_dir(root, kind))
    before = len(started(root))
    code, err = again(capsys)
    assert not marker.exists()
    assert code == 0, err
    assert f"warning: {pre / 'model.pt'}: " in err and "pretrain P=16 seed=0 is marked not done and runs again" in err
    assert started(root)[before:].count("pretrain") == 1
    assert not list(root.glob("stages/*/*/failed.json"))  # the cell is not blamed
    assert_same_results(cell[2] / "one-cell", root)


def test_the_experiment_name_must_be_one_folder_name(tmp_path, capsys):
    for bad in ("../../x", "/tmp/x", "a/b", "..", ".hidden", ""):
        cfg = tmp_path / "n.toml"
        text = fi.write_config(cfg, tmp_path / "data").read_text().replace('name = "tiny"', f"name = {bad!r}")
        cfg.write_text(text)
        assert run.main(["--all", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {cfg}: [top] name must be one plain folder name"), err
        assert repr(bad) in err
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "x").exists()


# -- damaged stored files ------------------------------------------------------------------------
def _old_checkpoint(path: Path) -> None:  # numpy's RNG state pickled as arrays, as before
    torch.save({"key": "x", "rng": {"numpy": np.random.get_state()}}, path)


def _truncated_checkpoint(path: Path) -> None:
    torch.save({"key": "x", "model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:700])


CHECKPOINTS = {
    "random bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)),
    "truncated": _truncated_checkpoint,
    "written by an older version": _old_checkpoint,
}


@pytest.mark.parametrize("damage", list(CHECKPOINTS))
def test_a_damaged_checkpoint_is_set_aside_and_the_stage_restarts(cell, tmp_path, capsys, damage):
    root, again = copy_run(cell, tmp_path)
    ft = stage_dir(root, "finetune")
    for kind in ("finetune", "evaluate"):
        shutil.rmtree(stage_dir(root, kind))
    ft.mkdir(parents=True)
    CHECKPOINTS[damage](ft / "checkpoint.pt")
    code, err = again(capsys)
    assert code == 0, err
    line = [x for x in err.splitlines() if "checkpoint" in x]
    assert len(line) == 1 and line[0].startswith(f"warning: {ft / 'checkpoint.pt'}: "), err
    assert "set aside as checkpoint.damaged-" in line[0] and "restarts from its first epoch" in line[0]
    assert len(list(ft.glob("checkpoint.damaged-*.pt"))) == 1 and (ft / "done").is_file()
    assert_same_results(cell[2] / "one-cell", root)


def test_a_damaged_upstream_model_reruns_that_stage_not_the_cell(cell, tmp_path, capsys):
    root, again = copy_run(cell, tmp_path)
    pre = stage_dir(root, "pretrain")
    model = pre / "model.pt"
    model.write_bytes(model.read_bytes()[:-100])
    before = len(started(root))
    code, err = again(capsys)
    assert code == 0, err
    assert f"warning: {model}: " in err and " were written; " in err and "marked not done" in err
    assert started(root)[before:] == ["pretrain"]
    assert_same_results(cell[2] / "one-cell", root)
    os.remove(model)  # missing altogether
    code, err = again(capsys)
    assert code == 0 and f"warning: {model}: missing; pretrain P=16 seed=0 is marked not done" in err, err


def test_a_damaged_record_is_named_and_its_stage_reruns(cell, tmp_path, capsys):
    root, again = copy_run(cell, tmp_path)
    ev = stage_dir(root, "evaluate")
    (ev / "record.json").write_text('{"miou": 0.5')
    with pytest.raises(DamagedFile, match=f"{ev / 'record.json'}: not a readable stage record"):
        Store(root).record(next(s for s in _plan(cell).stages("evaluate")))
    code, err = again(capsys)
    assert code == 0, err
    assert f"warning: {ev / 'record.json'}: " in err and "is marked not done and runs again" in err
    assert_same_results(cell[2] / "one-cell", root)


def _plan(cell):
    return build_plan(load(cell[1]))


# -- a model that is not finite is never evaluated ------------------------------------------------
def test_weights_that_overflow_in_the_last_step_fail_the_stage(cell, tmp_path, capsys):
    base, cfg, _ = cell
    root, _ = copy_run(cell, tmp_path)
    huge = tmp_path / "huge.toml"  # one fine-tuning step in all, with a learning rate of 1e30
    huge.write_text(cfg.read_text().replace("epochs = 2\nlr = 2e-3", "epochs = 1\nlr = 1e30"))
    with pytest.warns(UserWarning, match="milestones"):
        code = run.cli(["--all", "--no-progress", "--config", str(huge), "--out", str(root.parent),
                        "--cache-dir", str(base / "cache")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "error: non-finite weights in finetune P=16 I=0 F=8 seed=0 after its last step" in err, err
    assert "lower [finetune] lr (now 1e+30)" in err and "Traceback" not in err
    (ft,) = [d for d in (root / "stages" / "finetune").iterdir() if (d / "failed.json").is_file()]
    assert not (ft / "done").exists() and not (ft / "model.pt").exists()
    assert not [d for d in (root / "stages" / "evaluate").iterdir() if not (d / "done").exists()]  # none begun
    assert started(root)[-1] == "finetune"
