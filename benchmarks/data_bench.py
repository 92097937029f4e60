"""Data throughput benchmark (not a test): images/s for ``prepare`` and for reading + augmenting
batches from the cache, so later work can show the cache is never the bottleneck.

    .venv/bin/python benchmarks/data_bench.py [--root ../shared/realdata/oxford-iiit-pet]
        [--workers N] [--batch 256] [--batches 40] [--device cpu|cuda]

Without a real Pets folder it benchmarks a synthetic one (written to a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diminish.data import (
    finetune_subset,
    pets_split,
    prepare,
    readers,
    seg_augment,
    simmim_augment,
    write_synthetic,
)

REAL_PETS = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "oxford-iiit-pet"


def bench_prepare(root: Path, cache_dir: Path, workers: int | None) -> float:
    t0 = time.perf_counter()
    cache = prepare("pets", root, cache_dir, workers=workers, progress=False)
    dt = time.perf_counter() - t0
    assert cache.built
    print(f"prepare pets ({len(cache)} images, workers={workers or 'all'}): {dt:.2f} s, "
          f"{len(cache) / dt:.0f} images/s")
    t0 = time.perf_counter()
    again = prepare("pets", root, cache_dir, workers=workers, progress=False)
    print(f"prepare again (reused={not again.built}): {time.perf_counter() - t0:.3f} s")
    return len(cache) / dt


def bench_single_decode(root: Path, n: int = 200) -> None:
    items = readers.list_pets(root).items[:n]
    t0 = time.perf_counter()
    for it in items:
        readers.load_item(it)
    dt = time.perf_counter() - t0
    print(f"decode+validate+resize, one process: {len(items) / dt:.0f} images/s")


def bench_batches(cache, batch: int, batches: int, device: str) -> None:
    _, pool = pets_split(len(cache), test_size=min(1000, len(cache) // 4))
    idx_all = finetune_subset(pool, len(pool), seed=0)
    gen = torch.Generator(device=device).manual_seed(0)
    for name, fn in (("read only", None), ("read + seg_augment", seg_augment),
                     ("read + simmim_augment", simmim_augment)):
        n = 0
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        for _ in range(batches):
            idx = np.sort(rng.choice(idx_all, size=min(batch, len(idx_all)), replace=False))
            x = torch.from_numpy(np.ascontiguousarray(cache.images[idx])).to(device, non_blocking=True)
            if fn is seg_augment:
                m = torch.from_numpy(np.ascontiguousarray(cache.masks[idx])).to(device)
                out = fn(x, m, gen)[0]
            elif fn is not None:
                out = fn(x, gen)
            else:
                out = x
            n += len(idx)
        if device == "cuda":
            torch.cuda.synchronize()
        del out
        dt = time.perf_counter() - t0
        print(f"{name:>22}: {n / dt:,.0f} images/s  (batch {batch}, {device}, "
              f"torch threads {torch.get_num_threads()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=REAL_PETS if REAL_PETS.is_dir() else None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    print(f"cores usable: {len(os.sched_getaffinity(0))}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            print("no real Pets folder: using 600 synthetic pets")
            root = write_synthetic(Path(tmp) / "synth", pets=600, intel_per_class=0, imagenet=0,
                                   intel_test_per_class=0)["pets"]
        print(f"pets root: {root}")
        bench_single_decode(root)
        bench_prepare(root, Path(tmp) / "cache", args.workers)
        cache = prepare("pets", root, Path(tmp) / "cache", workers=args.workers, progress=False)
        bench_batches(cache, args.batch, args.batches, args.device)


if __name__ == "__main__":
    main()
