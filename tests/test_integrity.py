"""Hostile and damaged files: no code runs from a model or checkpoint file, and every damaged
stored file is named in one line and recovered by running the stage that wrote it again.

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
from diminish import run
from diminish.results import read_results

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


def one_cell_config(path: Path, data: Path) -> Path:
    text = fi.write_config(path, data).read_text()
    text = text.replace('name = "tiny"', 'name = "one-cell"').replace("sizes = [0, 16]", "sizes = [16]").replace("sizes = [8, 16]", "sizes = [8]")
    text = text.replace("[intermediate]\n", "[intermediate]\nconditions = [false]\n")
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    base = tmp_path_factory.mktemp("integrity")
    data = fi.make_data(base)
    cfg = one_cell_config(base / "one.toml", data)
    out = base / "out"
    assert run.main(["--all", "--no-progress", "--config", str(cfg), "--out", str(out),
                     "--cache-dir", str(base / "cache")]) == 0
    return base, cfg, out


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
    from diminish.store import DamagedFile, Store

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
    from diminish.config import load
    from diminish.plan import build_plan

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


# -- a damaged cache is rebuilt -------------------------------------------------------------------
def _overwrite(f: Path) -> None:  # same size, other bytes (an npy header kept, the pixels changed)
    data = bytearray(f.read_bytes())
    data[-500:] = bytes(500)
    f.write_bytes(bytes(data))


CACHE_DAMAGE = {
    "masks.npy deleted": ("pets", "masks.npy", lambda f: f.unlink(), "missing from the cache"),
    "masks.npy truncated": ("pets", "masks.npy", lambda f: f.write_bytes(f.read_bytes()[:1000]), "changed since"),
    "images.npy overwritten": ("pets", "images.npy", _overwrite, "changed since the cache was built"),
    "labels.npy deleted": ("intel", "labels.npy", lambda f: f.unlink(), "missing from the cache"),
}


@pytest.mark.parametrize("case", list(CACHE_DAMAGE))
def test_a_damaged_cache_is_rebuilt_and_its_hash_is_that_of_what_is_read(case, tmp_path, capsys):
    from test_bad_inputs import GOOD

    from diminish.data.cache import prepare

    dataset, name, damage, problem = CACHE_DAMAGE[case]
    root = GOOD[dataset](tmp_path / dataset)
    first = prepare(dataset, root, tmp_path / "cache", progress=False, workers=1)
    want = {k: np.array(getattr(first, k)) for k in ("images", "masks", "labels") if getattr(first, k) is not None}
    damage(first.path / name)
    capsys.readouterr()
    again = prepare(dataset, root, tmp_path / "cache", progress=False, workers=1)
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {first.path / name}: {problem}") and "rebuilding the cache" in err, err
    assert len(err.splitlines()) == 1 and again.built and again.hash == first.hash
    for k, v in want.items():
        np.testing.assert_array_equal(np.array(getattr(again, k)), v, err_msg=k)
    assert not prepare(dataset, root, tmp_path / "cache", progress=False, workers=1).built  # sound again: reused


# -- readers: links that lead nowhere, two images for one trimap, stray files beside trimaps -------
def _dangling(r: Path) -> Path:
    os.symlink(r / "images" / "gone.jpg", r / "images" / "Cat_9.jpg")
    return r / "images" / "Cat_9.jpg"


def _loop(r: Path) -> Path:
    link = r / "seg_train" / "seg_train" / "sea" / "again"
    os.symlink("again", link)
    return link


READER_CASES = {  # dataset, defect -> the path it names, error fragment, examples kept with --skip-bad
    "dangling link": ("pets", _dangling, "dangling symbolic link", 6),
    "link loop": ("intel", _loop, "symbolic link that cannot be followed", 12),
}


@pytest.mark.parametrize("case", list(READER_CASES))
def test_links_that_lead_nowhere_are_named_or_skipped_and_counted(case, tmp_path, capsys):
    from test_bad_inputs import GOOD

    from diminish.data.__main__ import main as data_main

    dataset, defect, fragment, kept = READER_CASES[case]
    root = GOOD[dataset](tmp_path / dataset)
    link = defect(root)
    args = ["prepare", "--dataset", dataset, "--root", str(root), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--workers", "1"]
    assert data_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {link}: {fragment}") and "Traceback" not in err, err
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        assert data_main(args + ["--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert f"built {dataset}/train: {kept} examples" in out and "skipped 1 bad file(s):" in out, out
    assert link.name in out.split("skipped 1 bad file(s):")[1]


def test_two_images_for_one_trimap_are_an_error_naming_both(tmp_path, capsys):
    from test_bad_inputs import good_pets

    from diminish.data.__main__ import main as data_main

    root = good_pets(tmp_path / "pets")
    (root / "images" / "Cat_1.JPG").write_bytes((root / "images" / "Cat_1.jpg").read_bytes())
    args = ["prepare", "--dataset", "pets", "--root", str(root), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--workers", "1"]
    for extra in ([], ["--skip-bad"]):  # ambiguous, not bad: skipping either would be a guess
        assert data_main(args + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {root / 'images' / 'Cat_1.JPG'} and {root / 'images' / 'Cat_1.jpg'}: "
                              "two images for one example (Cat_1)"), err


def test_files_that_are_not_images_beside_the_trimaps_are_ignored(tmp_path, capsys):
    from test_bad_inputs import good_pets

    from diminish.data.__main__ import main as data_main

    root = good_pets(tmp_path / "pets")
    (root / "annotations" / "trimaps" / "Cat_1.xml").write_text("<annotation/>")
    (root / "annotations" / "trimaps" / "README").write_text("trimaps: 1 pet, 2 background, 3 border")
    assert data_main(["prepare", "--dataset", "pets", "--root", str(root), "--cache-dir", str(tmp_path / "c"),
                      "--no-progress", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "built pets/train: 6 examples" in out and "skipped" not in out, out


# -- command lines: one line per error, a closed pipe, a reused pid, a read-only folder ------------
def _cli(*args: str, close_stdout: bool = False, cwd: Path = REPO) -> tuple[int, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    p = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if close_stdout:  # as `| head -0` would: every write to stdout meets a closed pipe
        p.stdout.close()
        err = p.stderr.read()
    else:
        _, err = p.communicate(timeout=300)
    return p.wait(timeout=300), err


def test_output_into_a_closed_pipe_ends_quietly(cell, tmp_path):
    base, cfg, out = cell
    for args in (["diminish.run", "--dry-run", "--config", "experiments/paper.toml"],
                 ["diminish.run", "--status", "--config", str(cfg), "--out", str(out)],
                 ["diminish.data", "prepare", "--dataset", "pets", "--root", str(base / "synth" / "oxford-iiit-pet"),
                  "--cache-dir", str(base / "cache"), "--no-progress"]):
        code, err = _cli(*args, close_stdout=True)
        assert code == 0 and err == "", (args, err)


def test_command_lines_report_errors_in_one_line(tmp_path):
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text(fi.write_config(bad_cfg, tmp_path).read_text().replace("seeds = [0]", "seeds = [0.5]"))
    not_nc = tmp_path / "results.nc"
    not_nc.write_text("not a results file")
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = {  # argv -> exit status, start of stderr
        "bench, bad config": (["diminish.bench", "--config", str(bad_cfg), "--quick"], 2,
                              f"error: {bad_cfg}: 'seeds' must be a list of int"),
        "report, not a results file": (["diminish.report", "numbers", "--results", str(not_nc), "--analysis",
                                        str(tmp_path), "--out", str(tmp_path / "n.tex")], 2,
                                       f"error: {not_nc}: not a readable results file"),
        "data, cache folder is a file": (["diminish.data", "prepare", "--dataset", "pets", "--root",
                                          str(REPO / "tests"), "--cache-dir", str(a_file / "sub")], 2, "error: "),
    }
    for name, (argv, status, start) in cases.items():
        code, err = _cli(*argv)
        assert code == status and err.startswith(start) and len(err.splitlines()) == 1, (name, err)


def test_a_claim_whose_pid_now_belongs_to_another_process_is_stale(tmp_path):
    from diminish.config import load
    from diminish.plan import build_plan, units_of
    from diminish.store import HOST, Store, process_start

    unit = units_of(build_plan(load(fi.write_config(tmp_path / "c.toml", tmp_path))))[0]
    store = Store(tmp_path / "out")
    path = store.claim_path(unit)
    path.parent.mkdir(parents=True)
    me = os.getpid()  # a live pid on this host, but not the process that wrote the claim
    path.write_text(json.dumps({"pid": me, "host": HOST, "time": 0, "shard": "0/1", "started": process_start(me) - 1}))
    assert store.claim_state(unit, timeout=1800) == "stale"
    assert store.try_claim(unit, timeout=1800)  # taken over at once, not after 30 minutes
    assert json.loads(path.read_text())["started"] == process_start(me)
    assert store.claim_state(unit, timeout=1800) == "live"  # its own claim, by the same process: live


def test_a_read_only_folder_holding_everything_needed_can_be_read(cell, tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -rm (a private mount namespace) for a read-only bind mount")
    base, cfg, out = cell
    shutil.copytree(out, tmp_path / "out")
    shutil.copytree(base / "cache", tmp_path / "cache")  # keeps modification times: the cache stays valid
    for lock in (tmp_path / "cache").glob(".*.lock"):  # no lock file at all: nothing to lock in a read-only folder
        lock.unlink()
    py = f"PYTHONPATH={REPO / 'src'} OMP_NUM_THREADS=1 {sys.executable} -m"
    script = " && ".join([
        f"mount --bind -o ro {tmp_path} {tmp_path}",
        f"{py} diminish.run --all --no-progress --config {cfg} --out {tmp_path / 'out'} --cache-dir {tmp_path / 'cache'}",
        f"{py} diminish.data prepare --dataset pets --root {base / 'synth' / 'oxford-iiit-pet'} "
        f"--cache-dir {tmp_path / 'cache'} --no-progress"])
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "(read-only folder: left as it is)" in p.stdout and "reused pets/train" in p.stdout, p.stdout
