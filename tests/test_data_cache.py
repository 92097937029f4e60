"""The preprocessed cache: built once, reused without decoding, rebuilt on change, never half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from diminish.data import INTEL_CLASSES, Cache, prepare, readers, write_synthetic
from diminish.data.__main__ import main as cli

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
needs_real = pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata absent")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> dict[str, Path]:
    return write_synthetic(tmp_path_factory.mktemp("synth"), seed=3, pets=24, intel_per_class=4, imagenet=30,
                           intel_test_per_class=2, workers=1)


def _forbid_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("decoded an image although the cache is valid")

    monkeypatch.setattr(readers, "load_item", boom)


# ---------------------------------------------------------------------------------------------
# synthetic data: build, reuse, rebuild, atomicity
# ---------------------------------------------------------------------------------------------
def test_build_reuse_and_rebuild_on_change(synth_root, tmp_path, monkeypatch):
    src = tmp_path / "pets"
    # a private copy we may modify (symlinks: stat follows them, so replacing one is a change)
    (src / "images").mkdir(parents=True)
    (src / "annotations" / "trimaps").mkdir(parents=True)
    for f in (synth_root["pets"] / "images").iterdir():
        (src / "images" / f.name).symlink_to(f)
    for f in (synth_root["pets"] / "annotations" / "trimaps").iterdir():
        (src / "annotations" / "trimaps" / f.name).symlink_to(f)
    cache_dir = tmp_path / "cache"

    readers.DECODE_COUNT = 0
    c1 = prepare("pets", src, cache_dir, workers=1, progress=False)
    assert c1.built and readers.DECODE_COUNT == 24 and len(c1) == 24
    assert c1.images.shape == (24, 3, 128, 128) and c1.images.dtype == np.uint8
    assert isinstance(c1.images, np.memmap) and not c1.images.flags.writeable
    assert c1.masks.shape == (24, 128, 128) and set(np.unique(c1.masks)) == {0, 1, 2}
    assert c1.labels is None
    assert c1.files == sorted(c1.files) and c1.files[0].startswith("images/")
    m = c1.manifest
    assert m["settings"]["image_size"] == 128 and m["hash"] == c1.hash and m["count"] == 24
    assert len(m["sources"]) == 48 and all(len(s) == 3 and s[1] > 0 for s in m["sources"])  # path, size, mtime

    readers.DECODE_COUNT = 0
    c2 = prepare("pets", src, cache_dir, workers=1, progress=False)
    assert not c2.built and readers.DECODE_COUNT == 0 and c2.hash == c1.hash and c2.path == c1.path

    # a changed source file rebuilds; the content hash changes with it
    victim = src / "images" / c1.files[5].split("/")[-1]
    with Image.open(victim) as im:
        inverted = ImageOps.invert(im.convert("RGB"))
    victim.unlink()
    inverted.save(victim, quality=95)
    c3 = prepare("pets", src, cache_dir, workers=1, progress=False)
    assert c3.built and readers.DECODE_COUNT == 24 and c3.hash != c1.hash
    assert np.abs(c3.images[5].astype(int) + c1.images[5] - 255).mean() < 6  # the inverted picture
    assert np.array_equal(c3.images[6], c1.images[6]) and np.array_equal(c3.masks, c1.masks)

    # only an mtime change: rebuilt (cannot know without decoding), same content hash
    os.utime(victim, ns=(1, 1))
    c4 = prepare("pets", src, cache_dir, workers=1, progress=False)
    assert c4.built and c4.hash == c3.hash

    # a changed setting is a different cache; the old one stays reusable
    readers.DECODE_COUNT = 0
    c5 = prepare("pets", src, cache_dir, limit=10, workers=1, progress=False)
    assert c5.built and readers.DECODE_COUNT == 10 and len(c5) == 10 and c5.path != c4.path
    _forbid_decoding(monkeypatch)
    assert not prepare("pets", src, cache_dir, workers=1, progress=False).built
    assert not prepare("pets", src, cache_dir, limit=10, workers=2, progress=False).built


def test_limit_is_a_nested_spread_subset(synth_root, tmp_path):
    full = prepare("imagenet", synth_root["imagenet"], tmp_path, workers=1, progress=False)
    small = prepare("imagenet", synth_root["imagenet"], tmp_path, limit=8, workers=1, progress=False)
    mid = prepare("imagenet", synth_root["imagenet"], tmp_path, limit=15, workers=1, progress=False)
    assert len(full) == 30 and len(small) == 8 and len(mid) == 15
    assert set(small.files) <= set(mid.files) <= set(full.files)
    assert small.files == sorted(small.files)
    assert len({f.split("/")[1] for f in small.files}) >= 4, "limit should spread over class folders"
    i = full.files.index(small.files[3])
    assert np.array_equal(full.images[i], small.images[3])


def test_parallel_build_equals_serial_build(synth_root, tmp_path):
    a = prepare("intel", synth_root["intel"], tmp_path / "a", workers=1, progress=False)
    b = prepare("intel", synth_root["intel"], tmp_path / "b", workers=2, progress=False)
    assert a.hash == b.hash and np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels) and a.labels.dtype == np.int64
    assert np.bincount(a.labels).tolist() == [4] * 6 and a.masks is None
    assert a.manifest["classes"] == list(INTEL_CLASSES)
    t = prepare("intel", synth_root["intel"], tmp_path / "a", split="test", workers=1, progress=False)
    assert len(t) == 12 and t.path != a.path


def test_interrupted_build_leaves_no_complete_looking_cache(synth_root, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = readers.load_item

    def flaky(item, size=128):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(item, size)

    monkeypatch.setattr(readers, "load_item", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare("pets", synth_root["pets"], tmp_path, workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []
    monkeypatch.setattr(readers, "load_item", real)
    assert len(prepare("pets", synth_root["pets"], tmp_path, workers=1, progress=False)) == 24


def test_killed_build_is_not_mistaken_for_a_cache(synth_root, tmp_path):
    # a process killed (SIGKILL) in the middle of decoding: no cleanup code runs at all
    script = textwrap.dedent(f"""
        import os, signal
        from diminish.data import prepare, readers
        real, n = readers.load_item, [0]
        def dying(item, size=128):
            n[0] += 1
            if n[0] == 10:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(item, size)
        readers.load_item = dying
        prepare("pets", {str(synth_root['pets'])!r}, {str(tmp_path)!r}, workers=1, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert leftovers and all(p.name.startswith(".tmp-") for p in leftovers)
    assert not any((p / "manifest.json").exists() for p in leftovers)
    readers.DECODE_COUNT = 0
    cache = prepare("pets", synth_root["pets"], tmp_path, workers=1, progress=False)
    assert cache.built and readers.DECODE_COUNT == 24
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [cache.path.name]  # leftover cleared


def test_damaged_cache_is_rebuilt(synth_root, tmp_path):
    c = prepare("pets", synth_root["pets"], tmp_path, workers=1, progress=False)
    (c.path / "images.npy").write_bytes(b"garbage")
    c2 = prepare("pets", synth_root["pets"], tmp_path, workers=1, progress=False)
    assert c2.built and c2.hash == c.hash and Cache.open(c2.path).images.shape == (24, 3, 128, 128)


def test_cli_prepare(synth_root, tmp_path, capsys):
    args = ["prepare", "--dataset", "intel", "--root", str(synth_root["intel"]), "--cache-dir", str(tmp_path),
            "--no-progress", "--workers", "1"]
    assert cli(args) == 0
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "built intel/train: 24 examples" in out and "reused intel/train: 24 examples" in out
    assert cli(["prepare", "--dataset", "pets", "--root", str(tmp_path / "missing"), "--cache-dir",
                str(tmp_path)]) == 2
    assert "missing: does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["prepare", "--help"])
    assert e.value.code == 0 and "--skip-bad" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the real subsets, every file
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("realcache")


@pytest.mark.realdata
@needs_real
def test_real_pets_cache_built_once_then_reused(real_cache_dir, monkeypatch):
    root = REALDATA / "oxford-iiit-pet"
    c = prepare("pets", root, real_cache_dir, progress=False)
    assert len(c) == 400 and c.images.shape == (400, 3, 128, 128)
    assert len(c.manifest["ignored"]) == 3 and not c.skipped
    assert {"images/Abyssinian_34.jpg", "images/Abyssinian_5.jpg"} <= set(c.files)  # GIF / PNG inside
    counts = np.bincount(np.asarray(c.masks).ravel(), minlength=3)
    assert counts.size == 3 and (counts > 0).all()
    assert 0.1 < counts[0] / counts.sum() < 0.6  # pets are a sizable part of the picture
    # the cache holds what the reader decodes
    item = readers.list_pets(root).items[17]
    img, mask = readers.load_item(item)
    assert np.array_equal(c.images[17], img) and np.array_equal(c.masks[17], mask)
    readers.DECODE_COUNT = 0
    _forbid_decoding(monkeypatch)
    again = prepare("pets", root, real_cache_dir, progress=False)
    assert not again.built and again.hash == c.hash and readers.DECODE_COUNT == 0


@pytest.mark.realdata
@needs_real
def test_real_intel_caches(real_cache_dir):
    root = REALDATA / "intel-image-classification"
    train = prepare("intel", root, real_cache_dir, progress=False)
    test = prepare("intel", root, real_cache_dir, split="test", progress=False)
    assert len(train) == 1200 and np.bincount(train.labels).tolist() == [200] * 6
    assert len(test) == 300 and np.bincount(test.labels).tolist() == [50] * 6
    assert not set(train.files) & set(test.files)
    assert all(f.split("/")[2] == INTEL_CLASSES[k] for f, k in zip(train.files, train.labels))
    # the few non-150x150 originals were squashed to 128x128 like the rest
    assert train.images.shape[1:] == (3, 128, 128)


@pytest.mark.realdata
@needs_real
def test_real_imagenet_cache(real_cache_dir):
    c = prepare("imagenet", REALDATA / "imagenet-subset", real_cache_dir, progress=False)
    assert len(c) == 3000 and c.labels is None and c.masks is None
    assert len({f.split("/")[1] for f in c.files}) == 10
    # the greyscale JPEGs among them became RGB with three equal channels
    grey = [(im[0] == im[1]).all() and (im[1] == im[2]).all() for im in c.images[:: 7]]
    assert 0 < sum(grey) < len(grey)
    manifest = json.loads((c.path / "manifest.json").read_text())
    assert manifest["count"] == 3000 and manifest["hash"] == c.hash
