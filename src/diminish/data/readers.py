"""Readers for the three datasets of the study, in the layouts users actually have them.

Each ``list_*`` function walks a root folder and returns :class:`Item` records (which files make one
example, and its label); :func:`load_item` decodes one item into fixed-size uint8 arrays. Listing is
cheap (names and ``stat`` only), so the cache can decide whether it is still valid without decoding.

Layouts accepted
----------------
* Oxford-IIIT Pet (torchvision / official release): ``<root>/images/*.jpg`` and
  ``<root>/annotations/trimaps/*.png``; ``<root>`` may also be the folder *containing*
  ``oxford-iiit-pet/`` (torchvision's ``root``). Trimap values: 1 pet, 2 background, 3 border.
* Intel Image Classification (Kaggle archive): ``<root>/seg_train/seg_train/<class>/*.jpg``, or the
  un-nested ``<root>/seg_train/<class>/``; the test split reads ``seg_test`` the same way.
* ImageNet-1K training set, ImageFolder layout: ``<root>/train/<wnid>/*.JPEG`` (also accepted:
  ``<root>`` being that ``train`` folder, or the Kaggle ``ILSVRC/Data/CLS-LOC/train``). Labels unused.

Choices the paper leaves open (ours, documented here)
----------------------------------------------------
* **Pet pool**: every image in ``images/`` that has a trimap, sorted by file name, whatever the
  official ``trainval.txt``/``test.txt`` lists say (the paper draws 6000 + 1000 examples, more than
  either list holds). Images that appear in neither list are in the pool too (the small real
  subset in ``shared/realdata`` has 400 images but 398 list entries). An image without a trimap is an error
  (``skip_bad`` skips it); a trimap
  without an image is ignored.
* **Intel class order**: :data:`INTEL_CLASSES` (alphabetical, the Kaggle folder names); label =
  position in that tuple. Items are sorted by (class, file name).
* **Which files are images**: hidden files (``.DS_Store``, macOS ``._name.jpg`` forks) are ignored;
  files with a usual image extension are images; any other file is sniffed for an image signature
  (so ``.mat`` files in the Pet image folder are ignored, an extension-less JPEG is not).
  The decoder is then chosen from the content by PIL, never from the extension (the Pet release
  has a GIF and a PNG named ``.jpg``).
* **Colour**: every image becomes 8-bit RGB with ``convert("RGB")`` (palette, greyscale, CMYK;
  RGBA drops its alpha, as torchvision's loader does); 16/32-bit greyscale is rescaled to 8 bits.
  Multi-frame files use their first frame. EXIF orientation is *not* applied: the trimaps are
  aligned with the stored pixels, and torchvision does not apply it either.
* **Geometry**: the whole image is resized to ``size x size`` (128) without keeping the aspect
  ratio, so no trimap pixel is cropped away. Images use PIL's antialiased BICUBIC filter; JPEGs
  are first decoded at a reduced DCT scale (``draft``) that still leaves at least twice the target
  size, which is several times faster and indistinguishable after the antialiased resize. Trimaps
  use NEAREST. Masks are stored as the trimap value minus one (0 pet, 1 background, 2 border,
  matching ``classes.TRIMAP_CLASSES``).
* **Validation**: a trimap must have exactly its image's size and only values {1, 2, 3}; a
  truncated or unreadable file is an error. All errors are :class:`DataError` and name the file.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from .classes import INTEL_CLASSES, TRIMAP_CLASSES  # noqa: F401 - the readers' label order

DATASETS = ("pets", "intel", "imagenet")

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
# File signatures of the formats above, for files whose extension says nothing.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"P6", b"P5")

PETS_LAYOUT = "<root>/images/*.jpg and <root>/annotations/trimaps/*.png (Oxford-IIIT Pet release)"
INTEL_LAYOUT = "<root>/seg_train/seg_train/<class>/*.jpg (or <root>/seg_train/<class>/), classes " + ", ".join(
    INTEL_CLASSES
)
IMAGENET_LAYOUT = "<root>/train/<wnid>/*.JPEG (ImageFolder layout of the ImageNet-1K training set)"

# Number of examples decoded by this process (tests use it to prove that a cache is reused).
DECODE_COUNT = 0


class DataError(ValueError):
    """A problem with the data on disk; the message names the file or folder and the problem."""


class DataMissingError(DataError, FileNotFoundError):
    """A root, split or layout folder that does not exist."""


@dataclass(frozen=True)
class Item:
    """One example: its image, its trimap (Pets only) and its label (Intel only, else -1)."""

    image: Path
    trimap: Path | None = None
    label: int = -1

    def sources(self) -> tuple[Path, ...]:
        return (self.image,) if self.trimap is None else (self.image, self.trimap)


@dataclass
class Listing:
    """What a reader found under a root."""

    root: Path  # the dataset folder that relative paths are relative to
    items: list[Item]
    ignored: list[str]  # files that are not images (relative paths)
    skipped: list[tuple[str, str]]  # (relative path, reason), only with skip_bad


# ---------------------------------------------------------------------------------------------
# Which files are images
# ---------------------------------------------------------------------------------------------
def is_image_file(path: Path) -> bool:
    """Hidden files: no. Usual image extension: yes. Otherwise: sniff the first bytes."""
    if path.name.startswith("."):
        return False
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _link_problem(entry: os.DirEntry) -> str | None:
    """Why a directory entry that is a symbolic link cannot be followed (None: it can, or is no link)."""
    if not entry.is_symlink():
        return None
    try:
        os.stat(entry.path)
    except FileNotFoundError:
        return f"dangling symbolic link (to {os.readlink(entry.path)}, which does not exist)"
    except OSError as e:
        return f"symbolic link that cannot be followed ({e.strerror}; a loop?)"
    return None


def _entries(folder: Path, want_dirs: bool, broken: list | None) -> list[Path]:
    """Files (or folders) in ``folder`` by name; links that lead nowhere go to ``broken`` as
    (path, reason), or raise :class:`DataError` naming them when ``broken`` is None."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            why = _link_problem(e)
            if why is not None:
                if broken is None:
                    raise DataError(f"{e.path}: {why} (pass skip_bad / --skip-bad to leave it out)")
                broken.append((Path(e.path), why))
            elif e.is_dir() if want_dirs else e.is_file():
                out.append(Path(e.path))
    return sorted(out, key=lambda p: p.name)


def _files(folder: Path, broken: list | None = None) -> list[Path]:
    return _entries(folder, False, broken)


def _subdirs(folder: Path, broken: list | None = None) -> list[Path]:
    return [d for d in _entries(folder, True, broken) if not d.name.startswith((".", "__"))]


def _one_per_stem(files: list[Path], what: str) -> dict[str, Path]:
    """stem -> file; two files with one stem (``Cat_1.jpg`` and ``Cat_1.JPG``) is an error naming both."""
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(f"{out[f.stem]} and {f}: two {what} for one example ({f.stem}); keep one of them")
        out[f.stem] = f
    return out


def _class_images(d: Path, base: Path, skip_bad: bool, ignored: list, skipped: list) -> list[Path]:
    """A class folder's image files; an empty folder is an error, or recorded in ``skipped``."""
    images, ign = _split_images(d, base, skip_bad, skipped)
    ignored += ign
    if not images:
        msg = "empty class folder (no image files)"
        if not skip_bad:
            raise DataError(f"{d}: {msg}")
        skipped.append((str(d.relative_to(base)), msg))
    return images


def _split_images(folder: Path, root: Path, skip_bad: bool = False,
                  skipped: list | None = None) -> tuple[list[Path], list[str]]:
    """Image files and the relative paths of the others; broken links are an error, or (with
    ``skip_bad``) recorded in ``skipped``."""
    images, ignored, broken = [], [], []
    for f in _files(folder, broken if skip_bad else None):
        (images if is_image_file(f) else ignored).append(f)
    if skipped is not None:
        skipped += [(str(f.relative_to(root)), why) for f, why in broken]
    return images, [str(f.relative_to(root)) for f in ignored]


def _missing(what: Path, layout: str, detail: str = "does not exist") -> DataMissingError:
    return DataMissingError(f"{what}: {detail}; expected layout {layout}")


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------
def pets_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, PETS_LAYOUT)
    for cand in (root, root / "oxford-iiit-pet"):
        if (cand / "images").is_dir():
            if not (cand / "annotations" / "trimaps").is_dir():
                raise _missing(cand / "annotations" / "trimaps", PETS_LAYOUT)
            return cand
    raise _missing(root / "images", PETS_LAYOUT)


def list_pets(root: str | Path, *, skip_bad: bool = False) -> Listing:
    """Every image that has a trimap, sorted by file name."""
    base = pets_root(root)
    skipped: list = []
    images, ignored = _split_images(base / "images", base, skip_bad, skipped)
    _one_per_stem(images, "images")
    trimap_dir = base / "annotations" / "trimaps"
    tri_files, _ = _split_images(trimap_dir, base, skip_bad, skipped)
    trimaps = _one_per_stem(tri_files, "trimaps")  # files that are not images (notes, XML) are ignored
    items = []
    for img in images:
        tri = trimaps.get(img.stem)
        if tri is None:
            rel = str(img.relative_to(base))
            msg = f"no trimap {trimap_dir / (img.stem + '.png')} for this image"
            if not skip_bad:
                raise DataError(f"{img}: {msg}")
            skipped.append((rel, msg))
            continue
        items.append(Item(img, tri))
    if not items:
        raise DataError(f"{base / 'images'}: no image with a trimap found; expected layout {PETS_LAYOUT}")
    return Listing(base, items, ignored, skipped)


def intel_split_dir(root: str | Path, split: str = "train") -> Path:
    if split not in ("train", "test"):
        raise ValueError(f"Intel split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, INTEL_LAYOUT)
    name = f"seg_{split}"
    for cand in (root / name / name, root / name):
        if cand.is_dir() and any((cand / c).is_dir() for c in INTEL_CLASSES):
            return cand
    if (root / name).is_dir():  # present, but holds no class folder at either depth
        return root / name / name if (root / name / name).is_dir() else root / name
    raise _missing(root / name, INTEL_LAYOUT.replace("seg_train", name))


def list_intel(root: str | Path, split: str = "train", *, skip_bad: bool = False) -> Listing:
    folder = intel_split_dir(root, split)
    base = Path(root)
    found = _subdirs(folder)  # a broken link among the class folders is an error: the layout is in doubt
    unexpected = [d for d in found if d.name not in INTEL_CLASSES]
    if unexpected:
        raise DataError(
            f"{unexpected[0]}: unexpected class folder {unexpected[0].name!r}; "
            f"the Intel classes are {', '.join(INTEL_CLASSES)}"
        )
    items, ignored, skipped = [], [], []
    for label, cls in enumerate(INTEL_CLASSES):
        d = folder / cls
        if not d.is_dir():
            raise _missing(d, INTEL_LAYOUT, "class folder missing")
        images = _class_images(d, base, skip_bad, ignored, skipped)
        items += [Item(f, None, label) for f in images]
    if not items:
        raise DataError(f"{folder}: no images found; expected layout {INTEL_LAYOUT}")
    return Listing(base, items, ignored, skipped)


_WNID = re.compile(r"n\d{8}$")


def imagenet_train_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, IMAGENET_LAYOUT)
    for cand in (root / "train", root / "ILSVRC" / "Data" / "CLS-LOC" / "train"):
        if cand.is_dir():
            return cand
    if any(_WNID.match(d.name) for d in _subdirs(root)):
        return root
    raise _missing(root / "train", IMAGENET_LAYOUT)


def list_imagenet(root: str | Path, *, skip_bad: bool = False) -> Listing:
    folder = imagenet_train_dir(root)
    base = Path(root)
    items, ignored, skipped = [], [], []
    classes = _subdirs(folder)
    if not classes:
        raise DataError(f"{folder}: no class folders; expected layout {IMAGENET_LAYOUT}")
    for d in classes:
        images = _class_images(d, base, skip_bad, ignored, skipped)
        items += [Item(f) for f in images]
    if not items:
        raise DataError(f"{folder}: no images found; expected layout {IMAGENET_LAYOUT}")
    return Listing(base, items, ignored, skipped)


def list_dataset(dataset: str, root: str | Path, split: str = "train", *, skip_bad: bool = False) -> Listing:
    if dataset == "pets":
        _only_train(dataset, split)
        return list_pets(root, skip_bad=skip_bad)
    if dataset == "intel":
        return list_intel(root, split, skip_bad=skip_bad)
    if dataset == "imagenet":
        _only_train(dataset, split)
        return list_imagenet(root, skip_bad=skip_bad)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def _only_train(dataset: str, split: str) -> None:
    if split != "train":
        raise ValueError(
            f"{dataset} has a single pool (split='train'); got split={split!r}"
            + (" (the Pets test set is drawn by splits.pets_split)" if dataset == "pets" else "")
        )


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------
def _open(path: Path) -> Image.Image:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped PIL's global switch: refuse silently bad data
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; diminish needs it off")
    try:
        return Image.open(path)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: unreadable image ({e.__class__.__name__}: {e})") from None


def decode_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Decode by content to an 8-bit RGB (H, W, 3) array; with ``size``, resized (antialiased)."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter from PIL
        with _open(path) as im:
            try:
                if size is not None and im.format == "JPEG":
                    im.draft(None, (2 * size, 2 * size))
                im.load()
                rgb = to_rgb(im)
                if size is not None and rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
                return np.array(rgb, dtype=np.uint8)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise DataError(f"{path}: unreadable or truncated image ({e.__class__.__name__}: {e})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def read_trimap(path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Full-resolution trimap as a uint8 (H, W) array of values 1/2/3, validated."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(path) as im:
            if expect_size is not None and im.size != expect_size:
                raise DataError(
                    f"{path}: trimap is {im.size[0]}x{im.size[1]} but its image is "
                    f"{expect_size[0]}x{expect_size[1]}"
                )
            try:
                im.load()
            except (OSError, ValueError, SyntaxError) as e:
                raise DataError(f"{path}: unreadable or truncated trimap ({e.__class__.__name__}: {e})") from None
            mode = im.mode
            if mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                a = np.asarray(im)
            elif mode in ("RGB", "RGBA", "LA"):
                a = np.asarray(im)
                if mode != "LA" and not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
                    raise DataError(f"{path}: colour trimap (mode {mode}); expected one channel of values 1/2/3")
                a = a[..., 0]
            else:
                raise DataError(f"{path}: trimap has unsupported mode {mode}; expected 8-bit values 1/2/3")
    if a.dtype == np.uint8:
        counts = np.bincount(a.ravel(), minlength=256)
        counts[1:4] = 0
        bad = np.flatnonzero(counts)
    else:
        values = np.unique(a)
        bad = values[(values < 1) | (values > 3)]
    if bad.size:
        raise DataError(
            f"{path}: trimap values {sorted(int(v) for v in bad)[:8]} outside {{1, 2, 3}} "
            "(1 pet, 2 background, 3 border)"
        )
    return np.ascontiguousarray(a, dtype=np.uint8)


def load_item(item: Item, size: int = 128) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one example: image (3, size, size) uint8, mask (size, size) uint8 in {0,1,2} or None."""
    global DECODE_COUNT
    DECODE_COUNT += 1
    if item.trimap is None:
        return decode_image(item.image, size).transpose(2, 0, 1).copy(), None
    # Pets: check the trimap against the image's full size before any resizing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(item.image) as head:  # header only
            full_size = head.size
    tri = read_trimap(item.trimap, expect_size=full_size)
    img = decode_image(item.image, size)
    mask = np.asarray(Image.fromarray(tri).resize((size, size), Image.Resampling.NEAREST)) - np.uint8(1)
    return img.transpose(2, 0, 1).copy(), mask
