"""Data: readers for the study's three datasets, a one-time uint8 cache, the paper's splits,
batched tensor transforms, and synthetic stand-ins written in the real layouts.

Typical use::

    from diminish.data import prepare, pets_split, finetune_subset, seg_augment
    pets = prepare("pets", "data/oxford-iiit-pet", "cache")      # decodes once, then reuses
    test_idx, pool_idx = pets_split(len(pets))                     # 1000 test, seed 42
    idx = finetune_subset(pool_idx, 1000, seed=0)                  # nested in size
    x, y = seg_augment(torch.from_numpy(pets.images[np.sort(idx[:64])]), ...)

The module docstrings of ``readers``, ``cache``, ``splits``, ``transforms`` and ``synth`` list every
choice the paper leaves open.
"""

from .cache import Cache, prepare
from .readers import INTEL_CLASSES, DataError, DataMissingError
from .splits import finetune_subset, pets_split, pretrain_subset
from .synth import write_synthetic
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    cls_augment,
    normalize,
    seg_augment,
    simmim_augment,
)

__all__ = [
    "INTEL_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Cache",
    "DataError",
    "DataMissingError",
    "cls_augment",
    "finetune_subset",
    "normalize",
    "pets_split",
    "prepare",
    "pretrain_subset",
    "seg_augment",
    "simmim_augment",
    "write_synthetic",
]
