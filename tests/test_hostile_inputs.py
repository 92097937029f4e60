"""Damaged caches, links that lead nowhere, ambiguous dataset files, and the command lines'
behaviour around them: one-line errors, a closed pipe, a claim whose pid was reused, a read-only
folder. (Model files, checkpoints and stage records: tests/test_integrity.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _runner import REPO, fault_tool
from diminish.config import load
from diminish.data.__main__ import main as data_main
from diminish.data.cache import prepare
from diminish.runner.claims import HOST, process_start
from diminish.runner.plan import build_plan, units_of
from diminish.runner.store import Store
from test_bad_inputs import GOOD, good_pets

fi = fault_tool()


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
    unit = units_of(build_plan(load(fi.write_config(tmp_path / "c.toml", tmp_path))))[0]
    store = Store(tmp_path / "out")
    path = store.claims.path(unit)
    path.parent.mkdir(parents=True)
    me = os.getpid()  # a live pid on this host, but not the process that wrote the claim
    path.write_text(json.dumps({"pid": me, "host": HOST, "time": 0, "shard": "0/1", "started": process_start(me) - 1}))
    assert store.claims.state(unit, timeout=1800) == "stale"
    assert store.claims.take(unit, timeout=1800)  # taken over at once, not after 30 minutes
    assert json.loads(path.read_text())["started"] == process_start(me)
    assert store.claims.state(unit, timeout=1800) == "live"  # its own claim, by the same process: live


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
        f"{py} diminish.run --all --no-progress --config {cfg} --out {tmp_path / 'out'} "
        f"--cache-dir {tmp_path / 'cache'}",
        f"{py} diminish.data prepare --dataset pets --root {base / 'synth' / 'oxford-iiit-pet'} "
        f"--cache-dir {tmp_path / 'cache'} --no-progress"])
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "(read-only folder: left as it is)" in p.stdout and "reused pets/train" in p.stdout, p.stdout
