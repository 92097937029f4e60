"""Readers: decoding by content, colour conversion, layouts, and one clear error per broken file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diminish.data import INTEL_CLASSES, DataError, prepare, readers

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


# ---------------------------------------------------------------------------------------------
# tiny datasets written on the fly
# ---------------------------------------------------------------------------------------------
def _img(h=40, w=50, colour=(200, 30, 30)) -> Image.Image:
    a = np.zeros((h, w, 3), np.uint8)
    a[:] = colour
    a[h // 4 : h // 2, w // 4 : w // 2] = (20, 200, 20)
    return Image.fromarray(a)


def _trimap(h=40, w=50) -> Image.Image:
    t = np.full((h, w), 2, np.uint8)
    t[10:30, 10:40] = 3
    t[12:28, 12:38] = 1
    return Image.fromarray(t, "L")


def make_pets(root: Path, n: int = 4) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for i in range(n):
        _img().save(root / "images" / f"Cat_{i}.jpg", quality=95)
        _trimap().save(root / "annotations" / "trimaps" / f"Cat_{i}.png")
    return root


def make_intel(root: Path, n: int = 2, split: str = "train", nested: bool = True) -> Path:
    base = root / f"seg_{split}" / (f"seg_{split}" if nested else "")
    for k, c in enumerate(INTEL_CLASSES):
        (base / c).mkdir(parents=True)
        for i in range(n):
            _img(colour=(40 * k, 100, 255 - 40 * k)).save(base / c / f"{i}.jpg")
    return root


def make_imagenet(root: Path, n: int = 3) -> Path:
    for w in ("n01440764", "n02102040"):
        (root / "train" / w).mkdir(parents=True)
        for i in range(n):
            _img().save(root / "train" / w / f"{w}_{i}.JPEG")
    return root


# ---------------------------------------------------------------------------------------------
# decoding by content
# ---------------------------------------------------------------------------------------------
def test_decode_by_content_and_convert_to_rgb(tmp_path):
    red = (220, 10, 10)
    src = _img(colour=red)
    pal = src.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(tmp_path / "gif_named.jpg", format="GIF")  # palette, wrong extension
    src.convert("RGBA").save(tmp_path / "rgba_named.jpg", format="PNG")
    src.convert("CMYK").save(tmp_path / "cmyk.jpg", format="JPEG", quality=95)
    src.convert("L").save(tmp_path / "grey.jpg", format="JPEG", quality=95)
    pal.save(tmp_path / "palette.png")
    Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    src.save(tmp_path / "no_extension", format="JPEG", quality=95)
    grey = np.asarray(src.convert("L"))[0, 0]
    for name, corner in [("gif_named.jpg", red), ("rgba_named.jpg", red), ("cmyk.jpg", red),
                         ("grey.jpg", (grey,) * 3), ("palette.png", red), ("grey16.png", (grey,) * 3),
                         ("no_extension", red)]:
        a = readers.decode_image(tmp_path / name)
        assert a.dtype == np.uint8 and a.shape == (40, 50, 3), name
        assert np.abs(a[0, 0].astype(int) - np.array(corner)).max() <= 6, (name, a[0, 0])
        small = readers.decode_image(tmp_path / name, size=16)
        assert small.shape == (16, 16, 3)


def test_non_image_files_are_ignored(tmp_path):
    root = make_pets(tmp_path / "pets", n=3)
    (root / "images" / "Cat_0.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64")
    (root / "images" / "README").write_text("not an image")
    (root / "images" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "images" / "._Cat_0.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS fork
    (root / "annotations" / "trimaps" / "._Cat_0.png").write_bytes(b"\x00\x05\x16\x07")
    listing = readers.list_pets(root)
    assert [it.image.name for it in listing.items] == ["Cat_0.jpg", "Cat_1.jpg", "Cat_2.jpg"]
    ignored = ["images/._Cat_0.jpg", "images/.DS_Store", "images/Cat_0.mat", "images/README"]
    assert sorted(listing.ignored) == sorted(ignored)


def test_resize_is_antialiased_and_trimap_nearest(tmp_path):
    # a fine checkerboard averages to grey when antialiased; a trimap keeps its exact values
    a = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(np.stack([a] * 3, -1)).save(tmp_path / "x.png")
    img = readers.decode_image(tmp_path / "x.png", size=128)
    assert abs(float(img.mean()) - 127.5) < 3 and img.std() < 10
    root = make_pets(tmp_path / "pets", n=1)
    img, mask = readers.load_item(readers.list_pets(root).items[0], size=128)
    assert img.shape == (3, 128, 128) and mask.shape == (128, 128) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2}  # 1/2/3 -> 0/1/2, no interpolated values


# ---------------------------------------------------------------------------------------------
# broken files: one clear error each, naming the file
# ---------------------------------------------------------------------------------------------
def _break(root: Path, kind: str, i: int = 1) -> tuple[Path, str]:
    img, tri = root / "images" / f"Cat_{i}.jpg", root / "annotations" / "trimaps" / f"Cat_{i}.png"
    if kind == "trimap_values":
        t = np.asarray(_trimap()).copy()
        t[0, :5] = 0
        t[1, :5] = 255
        Image.fromarray(t, "L").save(tri)
        return tri, "outside {1, 2, 3}"
    if kind == "size_mismatch":
        _trimap(30, 50).save(tri)
        return tri, "50x30 but its image is 50x40"
    if kind == "truncated_jpeg":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) * 2 // 3])
        return img, "truncated"
    if kind == "missing_trimap":
        tri.unlink()
        return img, "no trimap"
    if kind == "not_an_image":
        img.write_text("<html>this is not a JPEG</html>")
        return img, "unreadable"
    if kind == "truncated_trimap":
        data = tri.read_bytes()
        tri.write_bytes(data[: len(data) // 2])
        return tri, "trimap"
    raise AssertionError(kind)


BROKEN = ["trimap_values", "size_mismatch", "truncated_jpeg", "missing_trimap", "not_an_image", "truncated_trimap"]


@pytest.mark.parametrize("kind", BROKEN)
def test_broken_pets_file_gives_one_clear_error(tmp_path, kind):
    root = make_pets(tmp_path / "pets", n=3)
    culprit, words = _break(root, kind)
    with pytest.raises(DataError) as err:
        prepare("pets", root, tmp_path / "cache", workers=1, progress=False)
    msg = str(err.value)
    assert str(culprit) in msg and words in msg, msg
    assert not list((tmp_path / "cache").glob("pets-*")), "a failed prepare must leave no cache"


def test_skip_bad_skips_and_reports_every_bad_file(tmp_path):
    root = make_pets(tmp_path / "pets", n=8)
    kinds = ["trimap_values", "size_mismatch", "truncated_jpeg", "missing_trimap"]
    culprits = [_break(root, kind, i)[0].stem for i, kind in enumerate(kinds, start=1)]
    with pytest.warns(UserWarning, match="skipped 4 bad file"):
        cache = prepare("pets", root, tmp_path / "cache", skip_bad=True, workers=1, progress=False)
    assert len(cache) == 4
    assert sorted(Path(f).stem for f, _ in cache.skipped) == culprits
    assert sorted(Path(f).stem for f in cache.files) == ["Cat_0", "Cat_5", "Cat_6", "Cat_7"]
    assert len(cache.manifest["skipped"]) == 4
    # the kept examples are the right ones: every stored mask still looks like _trimap()
    ref = np.asarray(_trimap().resize((128, 128), Image.Resampling.NEAREST)) - 1
    assert all(np.array_equal(m, ref) for m in cache.masks)


def test_intel_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist.*expected layout"):
        readers.list_intel(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"seg_train.*expected layout .*seg_train/seg_train/<class>"):
        readers.list_intel(tmp_path / "empty")

    root = make_intel(tmp_path / "a", n=2)
    folder = root / "seg_train" / "seg_train"
    (folder / "Forest").mkdir()
    with pytest.raises(DataError, match=r"Forest.*unexpected class folder"):
        readers.list_intel(root)
    (folder / "Forest").rmdir()
    for f in (folder / "sea").iterdir():
        f.unlink()
    (folder / "sea" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"seg_train/seg_train/sea: empty class folder"):
        readers.list_intel(root)
    listing = readers.list_intel(root, skip_bad=True)
    assert len(listing.skipped) == 1 and len(listing.items) == 10
    (folder / "sea" / "notes.txt").unlink()
    (folder / "sea").rmdir()
    with pytest.raises(FileNotFoundError, match=r"seg_train/seg_train/sea: class folder missing"):
        readers.list_intel(root)
    with pytest.raises(FileNotFoundError, match=r"seg_test"):
        prepare("intel", root, tmp_path / "cache", split="test", progress=False)


def test_intel_accepts_unnested_layout_and_orders_classes(tmp_path):
    root = make_intel(tmp_path / "b", n=2, nested=False)
    listing = readers.list_intel(root)
    labels = [it.label for it in listing.items]
    assert labels == sorted(labels) and labels[::2] == list(range(6))
    assert [it.image.parent.name for it in listing.items][::2] == list(INTEL_CLASSES)


def test_pets_and_imagenet_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: does not exist; expected layout <root>/images"):
        prepare("pets", tmp_path / "nowhere", tmp_path / "cache", progress=False)
    (tmp_path / "p" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"annotations/trimaps: does not exist"):
        readers.list_pets(tmp_path / "p")
    # torchvision's root (the folder containing oxford-iiit-pet/) is accepted too
    make_pets(tmp_path / "tv" / "oxford-iiit-pet", n=2)
    assert len(readers.list_pets(tmp_path / "tv").items) == 2

    (tmp_path / "im").mkdir()
    with pytest.raises(DataError, match=r"train: does not exist; expected layout <root>/train/<wnid>"):
        readers.list_imagenet(tmp_path / "im")
    root = make_imagenet(tmp_path / "in", n=3)
    assert len(readers.list_imagenet(root).items) == 6
    assert len(readers.list_imagenet(root / "train").items) == 6  # the train folder itself
    (root / "train" / "n09999999").mkdir()
    with pytest.raises(DataError, match=r"n09999999: empty class folder"):
        readers.list_imagenet(root)
    with pytest.raises(ValueError, match="single pool"):
        prepare("imagenet", root, tmp_path / "cache", split="test")
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare("coco", root, tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# the real subsets: every file
# ---------------------------------------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata absent")
def test_real_pets_listing_handles_the_release_quirks():
    listing = readers.list_pets(REALDATA / "oxford-iiit-pet")
    names = [it.image.name for it in listing.items]
    assert len(names) == 400 and names == sorted(names)
    assert sorted(Path(f).suffix for f in listing.ignored) == [".mat"] * 3
    # the release's GIF and PNG named .jpg decode by content
    for name in ("Abyssinian_34.jpg", "Abyssinian_5.jpg"):
        item = next(it for it in listing.items if it.image.name == name)
        with Image.open(item.image) as im:
            assert im.format in ("GIF", "PNG")
        img, mask = readers.load_item(item)
        assert img.shape == (3, 128, 128) and mask.max() <= 2
