"""A corpus of broken inputs, generated here, each with its expected outcome at the command line.

Every case must end in a clear error that names the file or key and the problem (exit status 2
for bad input, 1 for the runner's data/disk errors), or in a documented skip with a count
(``--skip-bad`` / ``skip_bad = true``) - never a traceback from inside a library and never a
wrong result. The ``CASES`` tables below are the corpus; docs/failure-modes.md lists the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _runner import fault_tool
from diminish import results
from diminish.data import INTEL_CLASSES
from diminish.data.__main__ import main as data_main
from diminish.runner import cli as run

REPO = Path(__file__).resolve().parents[1]


fi = fault_tool()


# -- a small good dataset of each kind, then one defect per case ------------------------------
def _img(seed: int, h: int = 40, w: int = 50) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _trimap(h: int = 40, w: int = 50, values=(1, 2, 3)) -> Image.Image:
    t = np.full((h, w), values[1], np.uint8)
    t[8:32, 10:40] = values[2]
    t[10:30, 12:38] = values[0]
    return Image.fromarray(t, "L")


def good_pets(root: Path, n: int = 6) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for i in range(n):
        _img(i).save(root / "images" / f"Cat_{i}.jpg", quality=95)
        _trimap().save(root / "annotations" / "trimaps" / f"Cat_{i}.png")
    return root


def good_intel(root: Path, n: int = 2) -> Path:
    for k, c in enumerate(INTEL_CLASSES):
        d = root / "seg_train" / "seg_train" / c
        d.mkdir(parents=True)
        for i in range(n):
            _img(100 * k + i).save(d / f"{i}.jpg")
    return root


def good_imagenet(root: Path, n: int = 3) -> Path:
    d = root / "train" / "n01440764"
    d.mkdir(parents=True)
    for i in range(n):
        _img(1000 + i).save(d / f"n01440764_{i}.JPEG")
    return root


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


# (case, dataset, defect, fragments the error must contain, with --skip-bad: examples kept or None = still an error)
CASES = [
    ("truncated JPEG", "pets", lambda r: truncate(r / "images" / "Cat_0.jpg"),
     ["images/Cat_0.jpg", "unreadable or truncated image"], 5),
    ("zero-byte file", "pets", lambda r: (r / "images" / "Cat_1.jpg").write_bytes(b""),
     ["images/Cat_1.jpg", "unreadable image"], 5),
    ("text posing as an image", "pets", lambda r: (r / "images" / "Cat_2.jpg").write_text("name,breed\nCat_2,tabby\n"),
     ["images/Cat_2.jpg", "unreadable image"], 5),
    ("trimap with values 0/4/255", "pets",
     lambda r: _trimap(values=(0, 4, 255)).save(r / "annotations" / "trimaps" / "Cat_3.png"),
     ["trimaps/Cat_3.png", "trimap values [0, 4, 255] outside {1, 2, 3}"], 5),
    ("trimap of the wrong size", "pets",
     lambda r: _trimap(20, 25).save(r / "annotations" / "trimaps" / "Cat_4.png"),
     ["trimaps/Cat_4.png", "trimap is 25x20 but its image is 50x40"], 5),
    ("missing trimap", "pets", lambda r: (r / "annotations" / "trimaps" / "Cat_5.png").unlink(),
     ["images/Cat_5.jpg", "no trimap", "trimaps/Cat_5.png"], 5),
    ("empty class folder", "intel",
     lambda r: [f.unlink() for f in (r / "seg_train" / "seg_train" / "forest").iterdir()],
     ["seg_train/forest", "empty class folder"], 10),
    ("class folder with an unexpected name", "intel",
     lambda r: shutil.copytree(r / "seg_train" / "seg_train" / "sea", r / "seg_train" / "seg_train" / "beaches"),
     ["seg_train/beaches", "unexpected class folder 'beaches'", "the Intel classes are buildings, forest"], None),
    ("ImageNet root without train/", "imagenet", lambda r: (r / "train").rename(r / "val"),
     ["/train: does not exist", "expected layout <root>/train/<wnid>/*.JPEG"], None),
]
GOOD = {"pets": good_pets, "intel": good_intel, "imagenet": good_imagenet}


@pytest.mark.parametrize("case,dataset,defect,fragments,kept", CASES, ids=[c[0] for c in CASES])
def test_broken_dataset_file_gives_a_clear_error_or_a_counted_skip(case, dataset, defect, fragments, kept,
                                                                     tmp_path, capsys):
    root = GOOD[dataset](tmp_path / dataset)
    defect(root)
    args = ["prepare", "--dataset", dataset, "--root", str(root), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--workers", "1"]
    assert data_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path) in err, err
    for f in fragments:
        assert f in err, (f, err)
    cache = tmp_path / "cache"  # nothing half-built (listing errors stop before the folder is made)
    assert not cache.exists() or all(p.name.endswith(".lock") for p in cache.iterdir())
    with pytest.warns(UserWarning, match="skipped 1 bad file") if kept else _no_warning():
        code = data_main(args + ["--skip-bad"])
    out, err = capsys.readouterr()
    if kept is None:  # a layout problem: --skip-bad does not paper over it
        assert code == 2 and all(f in err for f in fragments), err
    else:
        assert code == 0, err
        assert f"built {dataset}/train: {kept} examples" in out and "skipped 1 bad file(s):" in out, out
        assert fragments[0] in out.split("skipped 1 bad file(s):")[1]  # the skipped file, by name


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- configuration files ------------------------------------------------------------------------
CONFIG_CASES = [
    ("unknown key", lambda t: 'colour = "red"\n' + t, ["unknown key 'colour'", "known keys: data, description"]),
    ("misspelled key", lambda t: t.replace("[finetune]\n", "[finetune]\nepoch = 3\n"),
     ["unknown key 'finetune.epoch'", "did you mean 'epochs'?"]),
    ("misspelled table", lambda t: t.replace("[finetune]", "[fine_tune]"),
     ["unknown key 'fine_tune'", "did you mean 'finetune'?"]),
    ("negative fine-tune size", lambda t: t.replace("sizes = [8, 16]", "sizes = [-8, 16]"),
     ["finetune.sizes must be positive", "[-8, 16]"]),
    ("wrong type", lambda t: t.replace("epochs = 2\nlr = 2e-3", 'epochs = "two"\nlr = 2e-3'),
     ["'finetune.epochs' must be int", "'two'"]),
    ("not TOML", lambda t: t.replace("[model]", "[model"), ["not valid TOML"]),
]


@pytest.mark.parametrize("case,edit,fragments", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_names_file_key_and_problem(case, edit, fragments, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(edit(fi.write_config(cfg, tmp_path / "data").read_text()))
    assert run.main(["--all", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}") or f"error: {cfg}:" in err, err
    for f in fragments:
        assert f in err, (f, err)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The tiny synthetic datasets and cache folder shared with the fault tests."""
    work = tmp_path_factory.getbasetemp() / "reliability"
    work.mkdir(exist_ok=True)
    return work, fi.make_data(work)


SIZE_CASES = [
    ("fine-tune size larger than the pool", "sizes = [8, 16]", "sizes = [8, 1000]",
     "fine-tuning subset (seed 0): asked for 1000 examples but only 28 are available"),
    ("test set larger than the data", "test_size = 12", "test_size = 100",
     "Pets test set: asked for 100 examples but only 40 are available"),
    ("pre-training size larger than the data", "sizes = [0, 16]", "sizes = [0, 500]",
     "pre-training subset (data_seed 0): asked for 500 examples but only 24 are available"),
]


@pytest.mark.parametrize("case,old,new,message", SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_too_large_sizes_stop_before_any_training(case, old, new, message, synth, tmp_path):
    work, data = synth
    cfg = tmp_path / "big.toml"
    cfg.write_text(fi.write_config(cfg, data).read_text().replace(old, new, 1))
    with pytest.raises(SystemExit) as e:
        run.main(["--all", "--no-progress", "--config", str(cfg), "--out", str(tmp_path / "out"),
                  "--cache-dir", str(work / "reference-cache")])
    assert str(e.value) == f"config tiny: {message}"
    assert not (tmp_path / "out" / "tiny" / "stages").exists()


# -- results files -------------------------------------------------------------------------------
def _halves(tmp_path: Path):
    """One config's results split into two complementary halves (as two shards' files would be)."""
    full = results.example_results(0)
    a, b = full.copy(deep=True), full.copy(deep=True)
    for v in ("accuracy", "miou", "iou", "train_seconds", "final_loss"):
        a[v].loc[dict(seed=2)] = np.nan
        b[v].loc[dict(seed=[0, 1])] = np.nan
    return full, results.write_results(a, tmp_path / "a.nc"), results.write_results(b, tmp_path / "b.nc")


def test_results_from_another_config_refuse_to_merge_unless_told(tmp_path, capsys):
    full, a, b = _halves(tmp_path)
    other = results.read_results(b)
    other.attrs.update(config_hash="0123456789abcdef", config_name="other")
    c = results.write_results(other, tmp_path / "other.nc")
    out = tmp_path / "merged.nc"
    assert results.main(["merge", str(a), str(c), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "results from different configurations" in err and "--allow-mixed" in err
    assert f"{a} (config 'example', config_hash example)" in err
    assert f"{c} (config 'other', config_hash 0123456789abcdef)" in err
    assert not out.exists()
    # the same config's halves merge without asking, into exactly the full set
    assert results.main(["merge", str(a), str(b), "--out", str(out)]) == 0
    merged = results.read_results(out)
    for v in ("accuracy", "miou", "iou"):
        np.testing.assert_array_equal(merged[v].values, full[v].values)
    # forced, the mixture is recorded in the file
    assert results.main(["merge", str(a), str(c), "--out", str(out), "--allow-mixed"]) == 0
    assert results.read_results(out).attrs["merged_from"] == "example,0123456789abcdef"


def test_a_file_that_is_not_a_results_file_is_named(tmp_path, capsys):
    fake = tmp_path / "results.nc"
    fake.write_text("this is not netCDF")
    assert results.main(["merge", str(fake), "--out", str(tmp_path / "m.nc")]) == 2
    err = capsys.readouterr().err
    assert f"{fake}: not a readable results file" in err


def test_analysis_names_the_missing_cells_it_leaves_out(tmp_path, capsys):
    from diminish.analysis.__main__ import main as analysis_main

    ds = results.example_results(0)
    ds["miou"].loc[dict(pretrain=45_000, intermediate=True, finetune=500, seed=1)] = np.nan
    path = results.write_results(ds, tmp_path / "holes.nc")
    assert analysis_main(["paired-tests", "--results", str(path)]) == 0
    err = capsys.readouterr().err
    assert "1 missing (NaN) entries, left out of every statistic: P=45000 I=True F=500 seed=1 (miou)" in err


# -- the command lines never show a traceback ----------------------------------------------------
def test_command_lines_report_bad_inputs_without_a_traceback(synth, tmp_path):
    work, data = synth
    # a runner config whose Pets folder has one truncated JPEG (the other datasets are fine)
    bad = tmp_path / "data"
    bad.mkdir()
    for name in ("intel-image-classification", "imagenet"):
        (bad / name).symlink_to(data / name)
    shutil.copytree(data / "oxford-iiit-pet", bad / "oxford-iiit-pet")
    victim = sorted((bad / "oxford-iiit-pet" / "images").glob("*.jpg"))[3]
    truncate(victim)
    cfg = fi.write_config(tmp_path / "bad-data.toml", bad)
    pets = good_pets(tmp_path / "pets")
    truncate(pets / "images" / "Cat_0.jpg")
    full, a, b = _halves(tmp_path)
    other = results.read_results(b)
    other.attrs["config_hash"] = "0123456789abcdef"
    c = results.write_results(other, tmp_path / "other.nc")
    py = [sys.executable, "-m"]
    runner = ["diminish.run", "--all", "--no-progress", "--out", str(tmp_path / "out"),
              "--cache-dir", str(work / "reference-cache"), "--config"]
    cases = {  # name: (argv, exit status, fragments of stderr)
        "data prepare": (py + ["diminish.data", "prepare", "--dataset", "pets", "--root", str(pets),
                               "--cache-dir", str(tmp_path / "c"), "--no-progress", "--workers", "1"],
                         2, ["images/Cat_0.jpg", "truncated"]),
        "runner, bad image": (py + runner + [str(cfg)], 1, [str(victim), "truncated", "--skip-bad"]),
        "results merge": (py + ["diminish.results", "merge", str(a), str(c), "--out", str(tmp_path / "m.nc")],
                          2, ["different configurations"]),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {k: subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, (argv, _, _) in cases.items()}
    for name, p in procs.items():
        _, err = p.communicate(timeout=300)
        code, fragments = cases[name][1], cases[name][2]
        assert p.returncode == code, (name, err)
        assert "Traceback" not in err and err.startswith("error: "), (name, err)
        for f in fragments:
            assert f in err, (name, f, err)
    assert not (tmp_path / "out" / "tiny" / "stages").exists()
