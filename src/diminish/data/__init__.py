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

from importlib import import_module

from .cache import Cache, prepare
from .classes import INTEL_CLASSES, TRIMAP_CLASSES
from .readers import DataError, DataMissingError
from .synth import write_synthetic

# The torch-using parts load on first use, so that the class names, readers and caches can be
# imported (by the results schema, the analysis and the report) without torch.
_LAZY = {
    "finetune_subset": "splits", "pets_split": "splits", "pretrain_subset": "splits",
    "IMAGENET_MEAN": "transforms", "IMAGENET_STD": "transforms", "cls_augment": "transforms",
    "normalize": "transforms", "seg_augment": "transforms", "simmim_augment": "transforms",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "INTEL_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TRIMAP_CLASSES",
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
