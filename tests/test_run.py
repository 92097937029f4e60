"""The runner end to end on a tiny synthetic grid (in-process), plus --dry-run and data errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from _runner import REPO, faulty, make_data, write_config
from diminish.core.loop import NonFiniteLossError
from diminish.core.tasks import load_model
from diminish.results import read_results
from diminish.runner import accel
from diminish.runner import cli as run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    data = make_data(base)
    cfg = write_config(base / "tiny.toml", data)
    args = ["--config", str(cfg), "--cache-dir", str(base / "cache"), "--out", str(base / "out"), "--no-progress"]
    assert run.main(["--all", *args]) == 0
    return base, data, args


def _events(base):
    return [json.loads(x) for x in (base / "out" / "tiny" / "executions.jsonl").read_text().splitlines()]


def test_results_file_has_the_grid_filled_and_provenance(tiny):
    base, _, _ = tiny
    ds = read_results(base / "out" / "tiny" / "results.nc")
    assert dict(ds.sizes) == {"pretrain": 2, "intermediate": 2, "finetune": 2, "seed": 1, "class": 3,
                              "pretrain_epoch": 2, "intermediate_epoch": 2, "finetune_epoch": 2}
    assert list(ds.pretrain.values) == [0, 16] and list(ds.intermediate.values) == [False, True]
    # training curves: one value per epoch of every stage that ran (none for P = 0's pre-training)
    assert np.isnan(ds.pretrain_loss_curve.sel(pretrain=0)).all()
    last = ds.pretrain_loss_curve.sel(pretrain=16, pretrain_epoch=2)
    np.testing.assert_allclose(last, ds.pretrain_loss.sel(pretrain=16))
    for v in ("intermediate_loss_curve", "intermediate_accuracy_curve", "finetune_loss_curve", "miou_image"):
        assert np.isfinite(ds[v].values).all(), v
    np.testing.assert_allclose(ds.finetune_loss_curve.isel(finetune_epoch=-1), ds.final_loss)
    assert ((ds.intermediate_accuracy_curve >= 0) & (ds.intermediate_accuracy_curve <= 100)).all()
    assert np.isnan(ds.miou_original.values).all()  # off unless finetune.eval_original_resolution
    for v in ("accuracy", "miou", "iou", "train_seconds", "final_loss", "intermediate_accuracy"):
        assert np.isfinite(ds[v].values).all(), v
    assert np.isnan(ds.pretrain_loss.sel(pretrain=0)).all() and np.isfinite(ds.pretrain_loss.sel(pretrain=16)).all()
    assert ((ds.miou >= 0) & (ds.miou <= 100)).all() and float(ds.accuracy.max()) > 1  # percent
    for key in ("config_text", "config_hash", "package_version", "git_commit", "torch_version",
                "accelerate_version", "device", "pets_root", "cache_hash_pets", "created"):
        assert ds.attrs[key], key
    assert ds.attrs["synthetic"] == 1 and "[finetune]" in ds.attrs["config_text"]
    ex = np.load(base / "out" / "tiny" / "examples.npz")
    assert ex["image"].shape[1:] == (128, 128, 3) and ex["image"].dtype == np.uint8
    assert ex["truth"].shape == ex["pred"].shape == ex["image"].shape[:3] and ex["pred"].max() <= 2
    assert "pretrain=16 intermediate=False finetune=16 seed=0" in str(ex["cell"])


def test_rerun_of_a_finished_grid_trains_nothing(tiny, capsys):
    base, _, args = tiny
    before = len(_events(base))
    assert run.main(["--all", *args]) == 0
    assert len(_events(base)) == before
    assert run.main(["--status", *args]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line[:1].isalpha()}
    assert rows["evaluate"] == ["8", "0", "0", "0"] and rows["pretrain"] == ["1", "0", "0", "0"]


def test_changing_a_finetune_setting_does_not_redo_pretraining(tiny):
    base, data, args = tiny
    cfg2 = write_config(base / "tiny2.toml", data, ft_lr=1e-3)
    before = len(_events(base))
    assert run.main(["--all", *args, "--config", str(cfg2), "--save-models"]) == 0
    new = _events(base)[before:]
    started = {e["kind"] for e in new if e["event"] == "start"}
    assert started == {"finetune"}
    assert sum(e["event"] == "done" and e["kind"] == "finetune" for e in new) == 8
    assert not [e for e in new if e["kind"] in ("pretrain", "intermediate")]


def test_non_finite_loss_names_stage_epoch_and_step(tiny, monkeypatch, capsys):
    base, data, args = tiny
    cfg3 = write_config(base / "tiny3.toml", data, ft_lr=5e-4)
    with pytest.raises(NonFiniteLossError, match=r"finetune P=\d+ I=\d F=\d+ seed=0: epoch 1, step 0"):
        run.main(["--all", *args, "--config", str(cfg3)], step_hook=faulty().Fault("nan@finetune:1:0"))
    # the command line: a message, status 1
    assert run.cli(["--all", *args, "--config", str(cfg3)], step_hook=faulty().Fault("nan@finetune:1:0")) == 1
    assert re.search(r"error: non-finite loss \(nan\) in finetune .*: epoch 1, step 0", capsys.readouterr().err)
    assert run.main(["--status", *args, "--config", str(cfg3)]) == 0
    out = capsys.readouterr().out
    assert "failed: finetune" in out and "non-finite loss" in out
    assert not list((base / "out" / "tiny" / "claims").iterdir())  # the claim was released


def test_dry_run_of_the_paper_config_needs_no_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ folder here
    assert run.main(["--dry-run", "--config", str(REPO / "experiments" / "paper.toml")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:5] for line in out.splitlines() if line[:1].isalpha()}
    assert rows["pretrain"] == ["9", "0", "9", "103,500,000"]  # (45k + 100k + 200k) x 100 epochs x 3 seeds
    assert rows["intermediate"] == ["12", "0", "12", "33,681,600"]  # 14,034 (assumed) x 200 x 12
    assert rows["finetune"] == ["144", "0", "144", "33,000,000"]


def test_missing_data_fails_at_once_naming_path_and_layout(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml", tmp_path / "nowhere")
    with pytest.raises(SystemExit) as e:
        run.main(["--all", "--config", str(cfg), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")])
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "oxford-iiit-pet") in msg and "expected layout" in msg
    assert "imagenet" in msg and "intel" in msg
    assert not (tmp_path / "o" / "tiny" / "stages").exists()


def test_saved_model_scores_the_same_on_a_folder_of_the_test_images(tiny, tmp_path):
    """--save-models + diminish.evaluate on a pets-layout folder holding exactly the test images."""
    from diminish import evaluate
    from diminish.data import prepare
    from diminish.data.splits import pets_split

    base, data, args = tiny
    models = sorted((base / "out" / "tiny" / "models").glob("*.pt"))
    assert len(models) == 8, "run by test_changing_a_finetune_setting_does_not_redo_pretraining"
    model = next(m for m in models if m.name == "P=16_I=1_F=16_seed=0.pt")
    cache = prepare("pets", data / "oxford-iiit-pet", base / "cache", progress=False)
    test_idx, _ = pets_split(len(cache), 12, 42)
    folder = tmp_path / "pets"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations" / "trimaps").mkdir(parents=True)
    for i in test_idx:
        img = data / "oxford-iiit-pet" / cache.files[i]
        (folder / "images" / img.name).symlink_to(img)
        tri = data / "oxford-iiit-pet" / "annotations" / "trimaps" / (img.stem + ".png")
        (folder / "annotations" / "trimaps" / tri.name).symlink_to(tri)
    r = evaluate.score(model, folder, tmp_path / "cache", progress=False)
    ds = read_results(base / "out" / "tiny" / "results.nc")
    cell = ds.sel(pretrain=16, intermediate=True, finetune=16, seed=0)
    assert r["images"] == 12
    assert r["accuracy"] == pytest.approx(float(cell.accuracy), abs=1e-9)
    assert r["miou"] == pytest.approx(float(cell.miou), abs=1e-9)
    assert evaluate.main([str(model), "--pets-root", str(folder), "--cache-dir", str(tmp_path / "cache"),
                          "--no-progress"]) == 0


def test_a_tracker_that_is_not_installed_is_skipped_with_a_note(capsys):
    assert accel._tracker_available("no_such_tracker_pkg") is False
    assert "not installed; skipping it" in capsys.readouterr().err


def test_intel_without_a_test_folder_reports_training_accuracy(tiny, tmp_path):
    from accelerate import Accelerator

    from diminish import config
    from diminish.config import RuntimeConfig
    from diminish.runner import stages
    from diminish.runner.context import Context, Datasets
    from diminish.runner.plan import build_plan
    from diminish.runner.store import Store

    base, data, _ = tiny
    intel = tmp_path / "intel"
    intel.mkdir()
    (intel / "seg_train").symlink_to(data / "intel-image-classification" / "seg_train")
    cfg = config.loads(write_config(tmp_path / "c.toml", data).read_text().replace(
        str(data / "intel-image-classification"), str(intel)))
    rt, acc = RuntimeConfig(cache_dir=base / "cache", progress=False), Accelerator(cpu=True)
    ctx = Context(cfg, rt, Store(tmp_path / "o"), acc, Datasets(cfg, rt, acc))
    assert ctx.data.intel_test() is None
    plan = build_plan(cfg)
    record = stages.run_intermediate(ctx, plan, plan.intermediate[0, 0])
    assert record["accuracy_split"] == "train" and sum(map(sum, record["confusion"])) == 24


_PATCHED_RUN = """
import functools, sys, torch
calls = []
real = torch.compile
def compile_eager(model, **kw):  # the runner's compile path (a class's forward), without a C++ compile
    calls.append(getattr(model, "__qualname__", type(model).__name__).removesuffix(".forward"))
    return real(model, backend="eager")
torch.compile = compile_eager
from diminish.runner import cli as run
code = run.main(sys.argv[1:])
print("compiled:", ",".join(calls))
sys.exit(code)
"""


def test_bf16_autocast_and_compile_switches_run_the_grid_and_are_recorded(tiny, tmp_path):
    import os
    import subprocess
    import sys

    import torch

    base, _, args = tiny
    out = tmp_path / "out"
    args = [a if a != str(base / "out") else str(out) for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", _PATCHED_RUN, "--all", "--mixed-precision", "bf16", "--compile",
                        "--save-models", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    compiled = p.stdout.split("compiled:")[-1].split(",")
    assert {"SimMIM", "Classifier", "Segmenter"} <= {c.strip() for c in compiled}, p.stdout[-500:]
    ds = read_results(out / "tiny" / "results.nc")
    assert "bf16 autocast" in ds.attrs["device"]
    assert np.isfinite(ds.miou.values).all() and ((ds.miou >= 0) & (ds.miou <= 100)).all()
    saved = sorted((out / "tiny" / "models").glob("*.pt"))
    assert len(saved) == 8
    for f in saved:  # saved from the module, not the compiled wrapper, and loadable as such
        keys = torch.load(f, map_location="cpu", weights_only=True)["state_dict"].keys()
        assert keys and not any("_orig_mod" in k for k in keys), f
    assert type(load_model(saved[0])[0]).__name__ == "Segmenter"


def test_assembly_warns_when_stages_saw_different_versions_of_a_dataset(tiny, tmp_path, capsys):
    import shutil

    base, _, args = tiny
    out = tmp_path / "out"
    shutil.copytree(base / "out", out)
    args = [a if a != str(base / "out") else str(out) for a in args]
    assert run.main(["--all", *args]) == 0
    assert "mixes" not in capsys.readouterr().err
    from diminish.config import load
    from diminish.runner.plan import build_plan

    cell = build_plan(load(args[args.index("--config") + 1])).stages("evaluate")[0]
    record = out / "tiny" / "stages" / "evaluate" / cell.key / "record.json"
    rec = json.loads(record.read_text())
    rec["cache_hash"] = "0" * 16  # as if the pets folder had changed before this cell was evaluated
    record.write_text(json.dumps(rec))
    from diminish.runner.digests import file_digest

    done = json.loads((record.parent / "done").read_text())  # as written by the stage: its checksum matches
    done["files"]["record.json"] = file_digest(record)
    (record.parent / "done").write_text(json.dumps(done))
    assert run.main(["--all", *args]) == 0
    err = capsys.readouterr().err
    assert "results.nc mixes pets data versions" in err and "0" * 16 in err
    assert "0" * 16 in read_results(out / "tiny" / "results.nc").attrs["cache_hash_pets"]
