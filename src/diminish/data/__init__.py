"""Data: readers for the study's three datasets, a one-time uint8 cache, the paper's splits (torch's
generator: ``diminish.data.splits``), and synthetic stand-ins written in the real layouts. The
batched tensor transforms are the core's (``diminish.core.transforms``).

Typical use::

    from diminish.data import prepare
    from diminish.data.splits import pets_split, finetune_subset
    from diminish.core.transforms import seg_augment
    pets = prepare("pets", "data/oxford-iiit-pet", "cache")      # decodes once, then reuses
    test_idx, pool_idx = pets_split(len(pets))                     # 1000 test, seed 42
    idx = finetune_subset(pool_idx, 1000, seed=0)                  # nested in size
    x, y = seg_augment(torch.from_numpy(pets.images[np.sort(idx[:64])]), ...)

The module docstrings of ``readers``, ``cache``, ``splits``, ``synth`` and ``core/transforms`` list every
choice the paper leaves open.
"""

from .cache import Cache, prepare
from .classes import INTEL_CLASSES, TRIMAP_CLASSES
from .readers import DataError, DataMissingError
from .synth import write_synthetic

__all__ = ["INTEL_CLASSES", "TRIMAP_CLASSES", "Cache", "DataError", "DataMissingError", "prepare", "write_synthetic"]
