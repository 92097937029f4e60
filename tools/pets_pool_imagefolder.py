"""The Pets fine-tuning pool of experiments/pretrain-real*.toml as an ImageFolder of symlinks, for the
control that pre-trains on the Pets images themselves (experiments/pretrain-real-pets-control.toml).

    python tools/pets_pool_imagefolder.py [--pets ../shared/realdata/oxford-iiit-pet] [--out data/pets-pool-imagefolder]

The pool is what the study fine-tunes from: every Pets image with a trimap except the held-out test
set (``pets_split`` with the config's test_size and split_seed), so no test image is pre-trained on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from diminish.data.readers import list_pets
from diminish.data.splits import pets_split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pets", default="../shared/realdata/oxford-iiit-pet")
    ap.add_argument("--out", default="data/pets-pool-imagefolder")
    ap.add_argument("--test-size", type=int, default=100)
    ap.add_argument("--split-seed", type=int, default=42)
    a = ap.parse_args()
    items = list_pets(a.pets).items  # sorted by file name: the cache's order
    test, pool = pets_split(len(items), a.test_size, a.split_seed)
    out = Path(a.out) / "train" / "pets"
    out.mkdir(parents=True, exist_ok=True)
    for i in pool:
        dst = out / items[i].image.name
        if not dst.exists():
            os.symlink(items[i].image.resolve(), dst)
    print(f"{out}: {len(pool)} pool images linked ({len(test)} test images left out)")


if __name__ == "__main__":
    main()
