"""Synthetic stand-ins: deterministic, in the real layouts, read by the real readers, learnable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diminish.data import INTEL_CLASSES, prepare, write_synthetic
from diminish.data.__main__ import main as cli


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Path]:
    return write_synthetic(tmp_path_factory.mktemp("s"), seed=0, pets=40, intel_per_class=16, imagenet=20,
                           intel_test_per_class=8)


def test_layouts_and_formats(synth):
    pets = synth["pets"]
    images = sorted((pets / "images").iterdir())
    trimaps = sorted((pets / "annotations" / "trimaps").iterdir())
    assert len(images) == len(trimaps) == 40
    assert [p.stem for p in images] == [p.stem for p in trimaps]
    with Image.open(images[0]) as im, Image.open(trimaps[0]) as tm:
        assert im.format == "JPEG" and im.mode == "RGB" and tm.format == "PNG" and tm.mode == "L"
        assert im.size == tm.size
    sizes = {Image.open(p).size for p in images[:20]}
    assert len(sizes) > 5  # sizes vary, so the resize path is exercised
    assert len((pets / "annotations" / "list.txt").read_text().splitlines()) == 3 + 40
    for split, n in (("train", 16), ("test", 8)):
        folder = synth["intel"] / f"seg_{split}" / f"seg_{split}"
        assert sorted(p.name for p in folder.iterdir()) == list(INTEL_CLASSES)
        assert all(len(list((folder / c).glob("*.jpg"))) == n for c in INTEL_CLASSES)
    files = list((synth["imagenet"] / "train").glob("n*/*.JPEG"))
    assert len(files) == 20 and len({f.parent.name for f in files}) == 10


def test_deterministic_and_independent_of_counts(tmp_path):
    a = write_synthetic(tmp_path / "a", seed=5, pets=6, intel_per_class=1, imagenet=4, workers=1)
    b = write_synthetic(tmp_path / "b", seed=5, pets=6, intel_per_class=1, imagenet=4, workers=2)
    c = write_synthetic(tmp_path / "c", seed=6, pets=6, intel_per_class=1, imagenet=4, workers=1)
    d = write_synthetic(tmp_path / "d", seed=5, pets=9, intel_per_class=2, imagenet=0, workers=1)
    da, db, dc, dd = (_digest(tmp_path / k) for k in "abcd")
    assert da == db
    assert sum(da[k] != dc.get(k) for k in da) > 20
    shared_images = [k for k in da if k.endswith((".jpg", ".png")) and "oxford" in k]
    assert shared_images and all(da[k] == dd[k] for k in shared_images)
    assert a.keys() == b.keys() == c.keys() == d.keys() == {"pets", "intel", "imagenet"}


def test_read_by_the_real_readers(synth, tmp_path):
    pets = prepare("pets", synth["pets"], tmp_path, progress=False, workers=1)
    intel = prepare("intel", synth["intel"], tmp_path, progress=False, workers=1)
    test = prepare("intel", synth["intel"], tmp_path, split="test", progress=False, workers=1)
    imnet = prepare("imagenet", synth["imagenet"], tmp_path, progress=False, workers=1)
    assert (len(pets), len(intel), len(test), len(imnet)) == (40, 96, 48, 20)
    assert not pets.skipped and not pets.manifest["ignored"]


def test_trimaps_have_a_thin_border_band_between_pet_and_background(synth):
    for p in sorted((synth["pets"] / "annotations" / "trimaps").iterdir())[:20]:
        t = np.asarray(Image.open(p))
        assert set(np.unique(t)) == {1, 2, 3}
        frac = np.bincount(t.ravel(), minlength=4)[1:] / t.size
        assert 0.05 < frac[0] < 0.6 and frac[1] > 0.3 and 0.01 < frac[2] < 0.12, (p.name, frac)
        # pet never touches background directly: the border band separates them
        for a, b in ((t[1:], t[:-1]), (t[:, 1:], t[:, :-1])):
            assert not (((a == 1) & (b == 2)) | ((a == 2) & (b == 1))).any(), p.name


def test_pet_differs_from_its_background(synth):
    # the signal a segmenter can learn: the pet's colour statistics differ from the background's
    gaps = []
    for p in sorted((synth["pets"] / "images").iterdir())[:20]:
        img = np.asarray(Image.open(p)).astype(float)
        t = np.asarray(Image.open(synth["pets"] / "annotations" / "trimaps" / (p.stem + ".png")))
        gaps.append(np.abs(img[t == 1].mean(0) - img[t == 2].mean(0)).max())
    assert np.median(gaps) > 25


def test_intel_classes_are_learnable_but_not_identical(synth, tmp_path):
    def features(cache):
        x = np.asarray(cache.images, dtype=np.float32) / 255  # (N, 3, 128, 128)
        bands = x.reshape(len(x), 3, 4, 32, 128)  # four horizontal bands
        mean = bands.mean((3, 4)).reshape(len(x), -1)
        grad_x = np.abs(np.diff(x, axis=3)).mean((1, 2, 3))[:, None]
        grad_y = np.abs(np.diff(x, axis=2)).mean((1, 2, 3))[:, None]
        return np.concatenate([mean, 4 * grad_x, 4 * grad_y], 1)

    train = prepare("intel", synth["intel"], tmp_path, progress=False, workers=1)
    test = prepare("intel", synth["intel"], tmp_path, split="test", progress=False, workers=1)
    ftr, fte = features(train), features(test)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    centroids = np.stack([((ftr - mu) / sd)[train.labels == k].mean(0) for k in range(6)])
    d = (((fte - mu) / sd)[:, None] - centroids[None]) ** 2
    acc = (d.sum(-1).argmin(1) == test.labels).mean()
    assert acc > 0.7, acc  # a nearest-centroid on 20 numbers already separates them
    # images within a class vary (noise, jitter, layout): no two are alike
    first = np.asarray(train.images[train.labels == 0][:4], dtype=np.float32)
    assert min(np.abs(first[i] - first[j]).mean() for i in range(4) for j in range(i)) > 5


def test_cli_synth(tmp_path, capsys):
    assert cli(["synth", "--out", str(tmp_path), "--seed", "1", "--sizes",
                "pets=3,intel=1,intel_test=0,imagenet=2"]) == 0
    assert "synthetic data (seed 1)" in capsys.readouterr().out
    assert len(list((tmp_path / "oxford-iiit-pet" / "images").iterdir())) == 3
    assert not (tmp_path / "intel-image-classification" / "seg_test").exists()
    with pytest.raises(SystemExit):
        cli(["synth", "--out", str(tmp_path), "--sizes", "dogs=3"])
    assert "KEY=N with KEY in pets, intel, intel_test, imagenet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["synth", "--help"])
    assert e.value.code == 0 and "--sizes" in capsys.readouterr().out
