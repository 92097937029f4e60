"""A one-time preprocessed cache: every used image decoded and resized once into uint8 arrays.

``prepare(dataset, root, cache_dir)`` returns a :class:`Cache` whose arrays are memory-mapped
``.npy`` files, so training never decodes a JPEG again and many processes can share one copy.

On disk, one folder per (dataset, split, resolved root, reader settings)::

    <cache_dir>/<dataset>-<split>-<key>/
        images.npy     uint8 (N, 3, 128, 128)
        masks.npy      uint8 (N, 128, 128), values 0 pet / 1 background / 2 border   (Pets only)
        labels.npy     int64 (N,), index into readers.INTEL_CLASSES                  (Intel only)
        manifest.json  source files with sizes and mtimes, settings, skipped files, content hash

Choices (ours):

* **Validity.** A cache is reused when its manifest's *fingerprint* (the settings plus every source
  file's relative path, size and mtime) equals the one computed from the folder now; listing and
  ``stat`` cost no decoding. Otherwise it is rebuilt. A changed setting (``limit``, ``skip_bad``,
  image size, reader version) gives a different folder, so caches for two settings coexist.
* **Content hash.** ``Cache.hash`` hashes the decoded arrays, the file list and the settings, not the
  mtimes: copying a dataset elsewhere (new mtimes) rebuilds the cache but keeps its hash, so results
  keyed on it stay valid.
* **Atomicity.** A build writes into a temporary folder next to the target, writes the manifest last
  and renames the folder into place; a killed ``prepare`` leaves only a ``.tmp-*`` folder, never a
  folder that looks complete. A lock file serialises concurrent ``prepare`` calls on one cache.
* **limit.** ``limit=N`` keeps N examples chosen by a fixed permutation (seed 0) of the sorted
  file list, then re-sorted: a spread over all classes and breeds (not the first N names), and
  nested across limits.
* **Bad files.** By default the first bad file raises :class:`DataError`; with ``skip_bad`` every
  bad file is left out, and the manifest, ``Cache.skipped`` and a warning say how many and which.
* **Parallelism.** Decoding runs in worker processes (``workers`` defaults to the usable cores)
  in chunks; small jobs and ``workers=1`` decode in this process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..host import usable_cores
from ..locks import locked
from ..seeds import stable_hash
from . import readers
from .readers import DataError, Item, list_dataset

FORMAT = 1
READER_VERSION = 1  # bump when decoding/resizing changes, to invalidate old caches
IMAGE_SIZE = 128
CHUNK = 32


@dataclass
class Cache:
    """The arrays of one prepared dataset (read-only memory maps) and its manifest.

    Read a batch with sorted integer indices, e.g. ``torch.from_numpy(cache.images[np.sort(idx)])``:
    fancy indexing copies the rows out of the map, so the tensor is writable and the reads are
    sequential on disk.
    """

    path: Path
    images: np.ndarray  # (N, 3, S, S) uint8 memmap
    masks: np.ndarray | None  # (N, S, S) uint8 memmap, values 0/1/2
    labels: np.ndarray | None  # (N,) int64
    files: list[str]  # image paths relative to the dataset root, in array order
    hash: str
    manifest: dict[str, Any]
    built: bool = False  # True when this call decoded the images, False when it reused them
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (
            f"Cache({self.manifest['dataset']}/{self.manifest['split']}, n={len(self)}, "
            f"hash={self.hash}, path={str(self.path)!r})"
        )

    @classmethod
    def open(cls, path: str | Path) -> Cache:
        """Open a built cache, checking that every array its dataset needs is there with the shape
        the manifest gives and, where the manifest recorded them, the size and mtime it had when
        written (so an array replaced or truncated since is caught without reading it all)."""
        path = Path(path)
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
        n, s = len(files), manifest["shape"][-1]
        shapes = {"images": (n, 3, s, s), "masks": (n, s, s) if manifest["dataset"] == "pets" else None,
                  "labels": (n,) if manifest["dataset"] == "intel" else None}
        arrays = {}
        for name, shape in shapes.items():
            f = path / f"{name}.npy"
            if shape is None:
                arrays[name] = None
                continue
            if not f.is_file():
                raise DataError(f"{f}: missing from the cache")
            written = (manifest.get("arrays") or {}).get(name)
            st = f.stat()
            if written is not None and [st.st_size, st.st_mtime_ns] != written:
                raise DataError(f"{f}: changed since the cache was built (size or modification time)")
            arrays[name] = np.load(f, mmap_mode=None if name == "labels" else "r")
            if arrays[name].shape != shape:
                raise DataError(f"{f}: shape {arrays[name].shape}, but the manifest lists {shape}")
        return cls(path, arrays["images"], arrays["masks"], arrays["labels"], files, manifest["hash"], manifest,
                   skipped=[tuple(s) for s in manifest["skipped"]])


def prepare(
    dataset: str,
    root: str | Path,
    cache_dir: str | Path,
    *,
    split: str = "train",
    limit: int | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> Cache:
    """Return the cache of ``dataset`` under ``root``, building it only if missing or stale."""
    if dataset not in readers.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(readers.DATASETS)}")
    limit = int(limit or 0)
    if limit < 0:
        raise ValueError(f"limit must be >= 0 (0 = all), got {limit}")
    root = Path(root).expanduser()
    settings = {
        "dataset": dataset,
        "split": split,
        "root": str(root.resolve()),
        "limit": limit,
        "skip_bad": bool(skip_bad),
        "image_size": IMAGE_SIZE,
        "reader_version": READER_VERSION,
        "format": FORMAT,
    }
    listing = list_dataset(dataset, root, split, skip_bad=skip_bad)
    items = _apply_limit(listing.items, limit, listing.root)
    sources = [_stat(p, listing.root) for it in items for p in it.sources()]
    fingerprint = stable_hash({"settings": settings, "sources": sources, "skipped": listing.skipped})

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{dataset}-{split}-{stable_hash(settings, 12)}"
    with locked(cache_dir / f".{target.name}.lock"):
        existing, problem = _try_open(target)
        if existing is not None and existing.manifest.get("fingerprint") == fingerprint:
            return existing
        if problem is not None:
            print(f"warning: {problem}; rebuilding the cache {target}", file=sys.stderr, flush=True)
        return _build(target, listing, items, settings, sources, fingerprint, workers, progress, skip_bad)


# ---------------------------------------------------------------------------------------------
def _build(target: Path, listing: readers.Listing, items: list[Item], settings: dict, sources: list,
           fingerprint: str, workers: int | None, progress: bool, skip_bad: bool) -> Cache:
    t0 = time.perf_counter()
    # We hold the lock, so any other temporary folder of this cache is a killed build's leftover.
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    tmp.mkdir()
    try:
        n, s = len(items), IMAGE_SIZE
        pets = settings["dataset"] == "pets"
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, 3, s, s))
        masks = np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, s, s)) if pets else None
        bad: dict[int, str] = {}
        for start, imgs, msks, errors in _decode_all(items, s, workers, progress, skip_bad, settings):
            images[start : start + len(imgs)] = imgs
            if masks is not None:
                masks[start : start + len(imgs)] = msks
            bad.update(errors)
        keep = [i for i in range(n) if i not in bad]
        skipped = list(listing.skipped) + [(_rel(items[i].image, listing.root), bad[i]) for i in sorted(bad)]
        if not keep:
            raise DataError(f"{listing.root}: no readable example left after skipping {len(bad)} bad files")
        if bad:  # compact the arrays
            images = _compact(tmp / "images.npy", images, keep)
            if masks is not None:
                masks = _compact(tmp / "masks.npy", masks, keep)
        items = [items[i] for i in keep]
        images.flush()
        if masks is not None:
            masks.flush()
        labels = None
        if settings["dataset"] == "intel":
            labels = np.array([it.label for it in items], dtype=np.int64)
            np.save(tmp / "labels.npy", labels)
        files = [_rel(it.image, listing.root) for it in items]
        content = hashlib.blake2b(digest_size=16)
        content.update(json.dumps({"settings": {k: v for k, v in settings.items() if k != "root"},
                                   "files": files}, sort_keys=True).encode())
        for arr in (images, masks, labels):
            if arr is not None:
                for i in range(0, len(arr), 4096):
                    content.update(np.ascontiguousarray(arr[i : i + 4096]).data)
        manifest = {
            "format": FORMAT,
            "dataset": settings["dataset"],
            "split": settings["split"],
            "root": settings["root"],
            "settings": settings,
            "count": len(files),
            "shape": [len(files), 3, s, s],
            "classes": list(readers.INTEL_CLASSES) if settings["dataset"] == "intel" else None,
            "mask_classes": ["pet", "background", "border"] if pets else None,
            "files": files,
            "sources": sources,
            "ignored": listing.ignored,
            "skipped": skipped,
            "fingerprint": fingerprint,
            "hash": content.hexdigest(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - t0, 3),
        }
        del images, masks
        manifest["arrays"] = {f.stem: [f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(tmp.glob("*.npy"))}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        warnings.warn(
            f"{settings['dataset']}: skipped {len(skipped)} bad file(s) under {listing.root}: "
            + "; ".join(f"{f} ({why})" for f, why in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
            stacklevel=3,
        )
    cache = Cache.open(target)
    cache.built = True
    return cache


def _decode_chunk(items: list[Item], size: int) -> tuple[np.ndarray, np.ndarray | None, dict[int, str]]:
    n = len(items)
    imgs = np.zeros((n, 3, size, size), np.uint8)
    msks = np.zeros((n, size, size), np.uint8) if items[0].trimap is not None else None
    errors: dict[int, str] = {}
    for i, it in enumerate(items):
        try:
            img, msk = readers.load_item(it, size)
        except DataError as e:
            errors[i] = str(e)
            continue
        imgs[i] = img
        if msks is not None:
            msks[i] = msk
    return imgs, msks, errors


def _decode_all(items: list[Item], size: int, workers: int | None, progress: bool, skip_bad: bool,
                settings: dict) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, dict[int, str]]]:
    """Decode ``items`` in chunks, in this process or a pool; yields (start, images, masks, errors)."""
    chunks = [(i, items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
    workers = min(workers or usable_cores(), len(chunks))

    def new_bar():  # created after the workers are forked: no tqdm monitor thread gets copied
        return tqdm(total=len(items), desc=f"prepare {settings['dataset']}/{settings['split']}",
                    unit="img", disable=not progress, file=sys.stderr)

    def handle(bar, start: int, res: tuple) -> tuple:
        imgs, msks, errors = res
        if errors and not skip_bad:
            raise DataError(next(iter(errors.values())) + " (pass skip_bad / --skip-bad to leave bad files out)")
        bar.update(len(imgs))
        return start, imgs, msks, {start + k: v for k, v in errors.items()}

    if workers <= 1:
        with new_bar() as bar:
            for start, chunk in chunks:
                yield handle(bar, start, _decode_chunk(chunk, size))
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending = {}
        queue = iter(chunks)
        try:
            for start, chunk in queue:  # keep a bounded number of chunks in flight
                pending[pool.submit(_decode_chunk, chunk, size)] = start
                if len(pending) >= 4 * workers:
                    break
            with new_bar() as bar:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=pending.get):
                        start = pending.pop(fut)
                        yield handle(bar, start, fut.result())
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending[pool.submit(_decode_chunk, nxt[1], size)] = nxt[0]
        finally:
            for fut in pending:
                fut.cancel()


# ---------------------------------------------------------------------------------------------
def _apply_limit(items: list[Item], limit: int, root: Path) -> list[Item]:
    if not limit or limit >= len(items):
        return items
    order = np.random.default_rng(0).permutation(len(items))[:limit]
    return [items[i] for i in np.sort(order)]


def _stat(path: Path, root: Path) -> list:
    st = path.stat()
    return [_rel(path, root), st.st_size, st.st_mtime_ns]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _compact(path: Path, arr: np.memmap, keep: list[int]) -> np.memmap:
    out_path = path.with_suffix(".compact.npy")
    out = np.lib.format.open_memmap(out_path, "w+", np.uint8, (len(keep), *arr.shape[1:]))
    for j in range(0, len(keep), 1024):
        out[j : j + 1024] = arr[keep[j : j + 1024]]
    out.flush()
    del arr
    os.replace(out_path, path)
    return out


def _try_open(path: Path) -> tuple[Cache | None, str | None]:
    """(the cache, None), or (None, what is wrong with it) when it is damaged, or (None, None)."""
    if not (path / "manifest.json").is_file():
        return None, None
    try:
        return Cache.open(path), None
    except DataError as e:
        return None, str(e)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        return None, f"{path}: unreadable cache ({type(e).__name__}: {e})"


def _replace(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".old-{target.name}-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
