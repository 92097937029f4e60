"""Synthetic stand-ins for the three datasets, written in the real on-disk layouts.

``write_synthetic(out)`` writes JPEG images (and PNG trimaps) that the real readers then read, so the
demo and the tests exercise exactly the code paths a user's download goes through::

    out/oxford-iiit-pet/images/<Breed>_<i>.jpg, annotations/trimaps/<Breed>_<i>.png,
        annotations/{list,trainval,test}.txt
    out/intel-image-classification/seg_train/seg_train/<class>/<i>.jpg (+ seg_test/seg_test/...)
    out/imagenet/train/<wnid>/<wnid>_<i>.JPEG

What the images look like (our design, meant to be learnable by a small ViT in a few epochs while
leaving room for more data to help):

* **Pets**: a textured "animal" (a smooth star-shaped blob with fur-like stripes, spots, patches or
  plain fur in warm or grey tones, shaded towards its rim) on a textured background of any hue
  (smooth noise, gratings or blocks) with a few small distractor shapes that belong to the
  background. The trimap is 1 inside, 2 outside, and 3 on a thin band (about 3 pixels) straddling
  the boundary, like the real annotations' border class. Image sizes vary around 160x160.
* **Intel**: six scene-like classes with distinct layout, colour and texture statistics
  (buildings: facades with window grids; forest: green with trunks; glacier: bright low-saturation
  ice with cracks; mountain: sky over a ridge line; sea: horizon over waves; street: a road in
  perspective between facades), with colour jitter, noise and flips so that they overlap a little.
  150x150 like the real ones.
* **ImageNet**: unlabelled, varied images: objects (blobs, boxes, triangles) on textured
  backgrounds, scene-like images with random colours, and abstract compositions; sizes vary.

Every image has its own generator seeded from (seed, dataset, index), so the output is identical
for a seed whatever the order, the counts of the other datasets or the number of workers.
"""

from __future__ import annotations

import colorsys
import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..host import usable_cores
from .readers import INTEL_CLASSES

DEFAULT_SIZES = {"pets": 600, "intel": 100, "intel_test": 20, "imagenet": 800}
PET_BREEDS = ("Stripy", "Spotty", "patchy", "plain")  # capitalised = cat, as in the real file names
WNIDS = tuple(f"n0{i:07d}" for i in range(1, 11))
_STREAMS = {"pets": 1, "intel": 2, "intel_test": 3, "imagenet": 4}


# ---------------------------------------------------------------------------------------------
# Building blocks (all float32 images in [0, 1], shape (H, W, 3))
# ---------------------------------------------------------------------------------------------
def _rng(seed: int, stream: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], index])


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)), np.float32)


def _smooth(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a random cells x cells grid upsampled bicubically."""
    small = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.clip(np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC)), -1, 1)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)  # yy, xx


def _grating(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, period: tuple[float, float]) -> np.ndarray:
    a = rng.uniform(0, np.pi)
    f = 2 * np.pi / rng.uniform(*period)
    return np.sin(xx * float(f * np.cos(a)) + yy * float(f * np.sin(a)) + rng.uniform(0, 2 * np.pi))


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A background texture in about [-1, 1]."""
    h, w = yy.shape
    kind = rng.integers(3)
    if kind == 0:
        return 0.7 * _smooth(rng, h, w, int(rng.integers(3, 7))) + 0.3 * _smooth(rng, h, w, 16)
    if kind == 1:
        return 0.6 * _grating(rng, yy, xx, (12, 40)) + 0.4 * _smooth(rng, h, w, 5)
    b = int(rng.integers(8, 24))
    blocks = rng.uniform(-1, 1, (h // b + 1, w // b + 1)).astype(np.float32)
    return 0.7 * np.kron(blocks, np.ones((b, b), np.float32))[:h, :w] + 0.3 * _smooth(rng, h, w, 6)


def _colourise(tex: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    t = tex[..., None] * np.float32(0.5) + np.float32(0.5)
    return c1 + (c2 - c1) * t


def _ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _background(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, distractors: int) -> np.ndarray:
    h, w = yy.shape
    hue = rng.uniform()
    c1 = _hsv(hue, rng.uniform(0.15, 0.7), rng.uniform(0.25, 0.9))
    c2 = _hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.1, 0.7), rng.uniform(0.25, 0.95))
    img = _colourise(_texture(rng, yy, xx), c1, c2)
    for _ in range(distractors):
        c = _hsv(rng.uniform(), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.95))
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.04, 0.12) * h, rng.uniform(0.04, 0.12) * w
        if rng.uniform() < 0.5:
            m = _ellipse(yy, xx, cy, cx, ry, rx)
        else:
            m = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        img[m] = c
    return img


def _fur(rng: np.random.Generator, yy, xx, kind: int) -> np.ndarray:
    """Fur texture in [0, 1] (H, W, 3) for breed ``kind``: stripes, spots, patches or plain."""
    h, w = yy.shape
    if rng.uniform() < 0.7:  # warm browns / oranges
        base = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.35, 0.85), rng.uniform(0.35, 0.95))
    else:  # greys, blacks, whites
        base = _hsv(rng.uniform(), rng.uniform(0, 0.12), rng.uniform(0.15, 0.95))
    dark = base * rng.uniform(0.3, 0.6)
    fine = _smooth(rng, h, w, 40)  # hair-scale noise
    if kind == 0:
        t = _grating(rng, yy, xx, (7, 14)) + 0.5 * fine
    elif kind == 1:
        t = np.where(_smooth(rng, h, w, 14) > 0.35, np.float32(-1), np.float32(1)) + 0.3 * fine
    elif kind == 2:
        light = _hsv(rng.uniform(0.05, 0.12), 0.1, rng.uniform(0.85, 1.0))
        patches = _smooth(rng, h, w, 6) > 0
        fur = np.where(patches[..., None], light, base) + 0.12 * fine[..., None]
        return fur.astype(np.float32)
    else:
        t = 0.6 + 0.4 * fine
    return _colourise(np.clip(t, -1, 1), dark, base)


def pet_scene(rng: np.random.Generator, h: int, w: int, breed: int) -> tuple[np.ndarray, np.ndarray]:
    """One pet-like scene: uint8 image (H, W, 3) and trimap (H, W) with values 1 pet / 2 bg / 3 border."""
    yy, xx = _grid(h, w)
    img = _background(rng, yy, xx, int(rng.integers(0, 4)))
    s = min(h, w)
    cy = float(np.clip(rng.normal(h / 2, 0.1 * h), 0.3 * h, 0.7 * h))
    cx = float(np.clip(rng.normal(w / 2, 0.1 * w), 0.3 * w, 0.7 * w))
    r0 = rng.uniform(0.2, 0.34) * s
    theta = np.arctan2(yy - cy, xx - cx)
    dist = np.hypot(yy - cy, xx - cx)
    radius = np.full_like(theta, r0)
    for k in range(2, 6):
        radius += r0 * rng.uniform(0, 0.22 / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    # stretch into an ellipse-like body
    radius *= 1 + rng.uniform(-0.2, 0.2) * np.cos(2 * (theta - rng.uniform(0, np.pi)))
    signed = dist - radius  # < 0 inside, in pixels along the ray (close to a distance for smooth shapes)
    fur = _fur(rng, yy, xx, breed)
    shade = 1 - 0.35 * np.clip(dist / np.maximum(radius, 1), 0, 1) ** 2
    inside = signed < 0
    img = np.where(inside[..., None], fur * shade[..., None], img)
    # a soft 1-pixel anti-aliased edge, and camera noise
    edge = np.clip(0.5 - signed, 0, 1)[..., None]
    img = img * (1 - 0.15 * edge * (1 - edge) * 4)
    img = img + _noise(rng, img.shape, 0.025)
    band = rng.uniform(1.2, 2.0)  # half-width of the border band, pixels
    trimap = np.where(signed < -band, 1, np.where(signed > band, 2, 3)).astype(np.uint8)
    return _to_uint8(img), trimap


# ---------------------------------------------------------------------------------------------
# Intel-like scenes
# ---------------------------------------------------------------------------------------------
def _sky(rng, yy, h) -> np.ndarray:
    top = _hsv(rng.uniform(0.53, 0.63), rng.uniform(0.2, 0.6), rng.uniform(0.6, 1.0))
    low = _hsv(rng.uniform(0.53, 0.63), rng.uniform(0.05, 0.3), rng.uniform(0.75, 1.0))
    t = (yy / h)[..., None]
    return top * (1 - t) + low * t


def _facades(rng, yy, xx, img, y_top: float, muted=True) -> np.ndarray:
    h, w = yy.shape
    x = 0.0
    while x < w:
        bw = rng.uniform(0.2, 0.45) * w
        top = y_top + rng.uniform(-0.15, 0.1) * h
        c = _hsv(rng.uniform(0.02, 0.15), rng.uniform(0.05, 0.35 if muted else 0.7), rng.uniform(0.35, 0.85))
        m = (xx >= x) & (xx < x + bw) & (yy >= top)
        img[m] = c
        px, py = rng.uniform(7, 14), rng.uniform(9, 16)
        win = m & ((xx - x) % px < px * 0.5) & ((yy - top) % py < py * 0.5) & ((xx - x) > 3)
        img[win] = c * rng.uniform(0.3, 0.6)
        x += bw
    return img


def _scene(rng: np.random.Generator, cls: int, h: int, w: int, free_colour: bool = False) -> np.ndarray:
    yy, xx = _grid(h, w)
    name = INTEL_CLASSES[cls]
    if name == "buildings":
        img = _sky(rng, yy, h)
        img = _facades(rng, yy, xx, img, rng.uniform(0.05, 0.3) * h)
    elif name == "forest":
        g = _hsv(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.55))
        img = _colourise(_smooth(rng, h, w, 24), g * 0.5, g * 1.4)
        for _ in range(int(rng.integers(4, 10))):
            x0, tw = rng.uniform(0, w), rng.uniform(2, 7)
            img[np.abs(xx - x0) < tw] = _hsv(rng.uniform(0.05, 0.1), 0.5, rng.uniform(0.1, 0.35))
    elif name == "glacier":
        c = _hsv(rng.uniform(0.5, 0.6), rng.uniform(0.05, 0.3), rng.uniform(0.75, 1.0))
        img = _colourise(_smooth(rng, h, w, 5), c * 0.8, np.minimum(c * 1.15, 1))
        for _ in range(int(rng.integers(2, 6))):
            cr = np.abs(_grating(rng, yy, xx, (60, 200))) < 0.04
            img[cr] = c * rng.uniform(0.5, 0.75)
    elif name == "mountain":
        img = _sky(rng, yy, h)
        ridge = h * rng.uniform(0.25, 0.5) + h * 0.18 * _smooth(rng, 1, w, int(rng.integers(3, 7)))[0]
        rock = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.6))
        m = yy >= ridge[None, :]
        tex = _colourise(_smooth(rng, h, w, 20), rock * 0.7, rock * 1.2)
        img = np.where(m[..., None], tex, img)
        snow = m & (yy < ridge[None, :] + rng.uniform(0, 0.12) * h)
        img[snow] = _hsv(0.58, 0.05, rng.uniform(0.85, 1.0))
    elif name == "sea":
        img = _sky(rng, yy, h)
        hz = rng.uniform(0.3, 0.6) * h
        water = _hsv(rng.uniform(0.52, 0.62), rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.75))
        waves = np.sin(2 * np.pi * yy / rng.uniform(4, 9) + 0.4 * _smooth(rng, h, w, 8) * 6)
        img = np.where((yy >= hz)[..., None], _colourise(0.5 * waves, water * 0.8, water * 1.2), img)
    else:  # street
        img = _sky(rng, yy, h)
        img = _facades(rng, yy, xx, img, rng.uniform(0.1, 0.35) * h, muted=False)
        vx, vy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.5) * h
        half = (yy - vy) / (h - vy) * w * rng.uniform(0.5, 0.8)
        road = (yy > vy) & (np.abs(xx - vx) < half)
        img[road] = _hsv(0, 0, rng.uniform(0.25, 0.45))
        lane = road & (np.abs(xx - vx) < 0.03 * half + 0.5) & ((yy // 8) % 2 == 0)
        img[lane] = _hsv(0.14, rng.uniform(0, 0.8), 0.95)
    if free_colour:  # ImageNet: any colours
        img = img[..., rng.permutation(3)]
    # jitter: brightness, a small hue-like channel mix, noise, flip
    img = img * rng.uniform(0.75, 1.2) + rng.uniform(-0.04, 0.04, 3).astype(np.float32)
    img = img + _noise(rng, img.shape, 0.03)
    if rng.uniform() < 0.5:
        img = img[:, ::-1]
    return _to_uint8(img)


def _abstract(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    img = _background(rng, yy, xx, int(rng.integers(3, 9)))
    for _ in range(int(rng.integers(1, 4))):  # large shapes: boxes, triangles, discs
        c = _hsv(rng.uniform(), rng.uniform(0.2, 1), rng.uniform(0.2, 1))
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.15, 0.35) * min(h, w)
        kind = rng.integers(3)
        if kind == 0:
            m = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * rng.uniform(0.5, 1.5))
        elif kind == 1:
            m = (yy > cy - r) & (np.abs(xx - cx) < (yy - cy + r) * 0.6)  & (yy < cy + r)
        else:
            m = _ellipse(yy, xx, cy, cx, r, r * rng.uniform(0.6, 1.4))
        img[m] = _colourise(_grating(rng, yy, xx, (6, 30))[m] * 0.5, c * 0.7, c)
    return _to_uint8(img + _noise(rng, img.shape, 0.03))


def imagenet_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    u = rng.uniform()
    if u < 0.4:
        return pet_scene(rng, h, w, int(rng.integers(len(PET_BREEDS))))[0]
    if u < 0.7:
        return _scene(rng, int(rng.integers(len(INTEL_CLASSES))), h, w, free_colour=True)
    return _abstract(rng, h, w)


_NOISE: np.ndarray | None = None


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian pixel noise: a random window of a fixed noise bank (much faster than fresh draws)."""
    global _NOISE
    if _NOISE is None:
        _NOISE = np.random.default_rng(20240601).standard_normal((320, 320, 3), dtype=np.float32)
    h, w, _ = shape
    if h > 320 or w > 320:
        return sigma * rng.standard_normal(shape, dtype=np.float32)
    oy, ox = int(rng.integers(0, 321 - h)), int(rng.integers(0, 321 - w))
    return np.float32(sigma) * _NOISE[oy : oy + h, ox : ox + w]


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def _save_jpeg(a: np.ndarray, path: Path) -> None:
    Image.fromarray(np.ascontiguousarray(a)).save(path, format="JPEG", quality=90)


def _pet_job(seed: int, i: int, images: Path, trimaps: Path) -> str:
    rng = _rng(seed, "pets", i)
    breed = i % len(PET_BREEDS)
    name = f"{PET_BREEDS[breed]}_{i // len(PET_BREEDS) + 1}"
    h, w = int(rng.integers(130, 190)), int(rng.integers(130, 190))
    img, tri = pet_scene(rng, h, w, breed)
    _save_jpeg(img, images / f"{name}.jpg")
    Image.fromarray(tri, "L").save(trimaps / f"{name}.png")
    return name


def _intel_job(seed: int, stream: str, i: int, folder: Path) -> None:
    cls = i % len(INTEL_CLASSES)
    rng = _rng(seed, stream, i)
    img = _scene(rng, cls, 150, 150)
    _save_jpeg(img, folder / INTEL_CLASSES[cls] / f"{i // len(INTEL_CLASSES) + 1}.jpg")


def _imagenet_job(seed: int, i: int, folder: Path) -> None:
    rng = _rng(seed, "imagenet", i)
    h, w = int(rng.integers(120, 230)), int(rng.integers(120, 230))
    wnid = WNIDS[i % len(WNIDS)]
    _save_jpeg(imagenet_image(rng, h, w), folder / wnid / f"{wnid}_{i // len(WNIDS) + 1}.JPEG")


def _run(jobs: list[tuple[Callable, tuple]], workers: int | None) -> list:
    workers = workers if workers is not None else min(usable_cores(), 8)
    if workers <= 1 or len(jobs) < 64:
        return [fn(*args) for fn, args in jobs]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        futs = [pool.submit(_batch, jobs[k::workers]) for k in range(workers)]
        parts = [f.result() for f in futs]
    out: list = [None] * len(jobs)
    for k, part in enumerate(parts):
        out[k::workers] = part
    return out


def _batch(jobs: list[tuple[Callable, tuple]]) -> list:
    return [fn(*args) for fn, args in jobs]


def write_synthetic(
    out: str | Path,
    seed: int = 0,
    pets: int = DEFAULT_SIZES["pets"],
    intel_per_class: int = DEFAULT_SIZES["intel"],
    imagenet: int = DEFAULT_SIZES["imagenet"],
    *,
    intel_test_per_class: int = DEFAULT_SIZES["intel_test"],
    workers: int | None = None,
) -> dict[str, Path]:
    """Write the three synthetic datasets under ``out``; returns their roots for the readers."""
    for name, n in (("pets", pets), ("intel_per_class", intel_per_class), ("imagenet", imagenet),
                    ("intel_test_per_class", intel_test_per_class)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    out = Path(out)
    pet_root = out / "oxford-iiit-pet"
    intel_root = out / "intel-image-classification"
    imnet_root = out / "imagenet"
    images, trimaps = pet_root / "images", pet_root / "annotations" / "trimaps"
    for d in (images, trimaps):
        d.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Callable, tuple]] = [(_pet_job, (seed, i, images, trimaps)) for i in range(pets)]
    for stream, per_class, split in (("intel", intel_per_class, "train"), ("intel_test", intel_test_per_class, "test")):
        if per_class == 0 and split == "test":
            continue
        folder = intel_root / f"seg_{split}" / f"seg_{split}"
        for c in INTEL_CLASSES:
            (folder / c).mkdir(parents=True, exist_ok=True)
        jobs += [(_intel_job, (seed, stream, i, folder)) for i in range(per_class * len(INTEL_CLASSES))]
    for wnid in WNIDS:
        (imnet_root / "train" / wnid).mkdir(parents=True, exist_ok=True)
    jobs += [(_imagenet_job, (seed, i, imnet_root / "train")) for i in range(imagenet)]
    names = _run(jobs, workers)[:pets]
    _write_pet_lists(pet_root / "annotations", names)
    return {"pets": pet_root, "intel": intel_root, "imagenet": imnet_root}


def _write_pet_lists(folder: Path, names: list[str]) -> None:
    """list.txt / trainval.txt / test.txt in the release's format (the readers do not need them)."""
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:4 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
    rows = []
    for n in names:
        breed = PET_BREEDS.index(n.rsplit("_", 1)[0])
        species = 1 if n[0].isupper() else 2
        rows.append(f"{n} {breed + 1} {species} {breed + 1}\n")
    (folder / "list.txt").write_text(header + "".join(rows))
    (folder / "trainval.txt").write_text("".join(rows[0::2]))
    (folder / "test.txt").write_text("".join(rows[1::2]))
