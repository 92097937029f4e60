"""The study's data splits: the Pets test set, nested fine-tuning subsets, nested pre-training subsets.

All indices refer to positions in a prepared cache (``Cache.images[idx]``); the Pets pool is sorted
by file name, so an index means the same image on every machine with the same files.

What the paper fixes, and what we chose where it does not:

* **Pets test set** (paper: 1000 held-out examples drawn with a generator seeded at 42). We draw
  ``perm = torch.randperm(n_pool, generator=torch.Generator().manual_seed(42))`` and take its *last*
  ``test_size`` entries as the test set and the rest as the fine-tuning pool, which is exactly what
  ``torch.utils.data.random_split(pool, [n_pool - 1000, 1000], generator=...)`` returns (a test
  proves it). Both arrays keep the permutation's order. The paper's own image order is unknown,
  so its exact test images cannot be recovered; the procedure is the same.
* **Fine-tuning subsets**: for seed ``s``, one permutation of the fine-tuning pool (a CPU
  ``torch.Generator`` seeded from ``("finetune", s)``) and its first F entries for every F, so the
  subsets are nested in F. They depend on nothing but the pool and the seed, so every pre-training
  and intermediate condition sees exactly the same examples for a seed: the grid's cells pair by seed.
* **Pre-training subsets**: one permutation of the ImageNet cache fixed by ``data_seed`` (stream
  ``("pretrain", data_seed)``), first N entries for N = 45k, 100k, 200k: nested, and shared by all seeds
  (the paper varies the amount, not the draw).
* Seeds are turned into generator states through SHA-256 of the stream name and the seed, so
  seed 0 of one stream is unrelated to seed 0 of another and to the training seeds.
* Asking for more examples than a pool holds is a ``ValueError`` that states both numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from ..seeds import subset_seed


def _perm(n: int, seed: int) -> np.ndarray:
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randperm(n, generator=g).numpy().astype(np.int64)


def _check(what: str, size: int, available: int) -> None:
    if size < 0:
        raise ValueError(f"{what}: size must be >= 0, got {size}")
    if size > available:
        raise ValueError(f"{what}: asked for {size} examples but only {available} are available")


def pets_split(n_pool: int, test_size: int = 1000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(test_idx, pool_idx): the held-out Pets test set and the fine-tuning pool (disjoint, cover all)."""
    _check("Pets test set", test_size, n_pool)
    perm = _perm(n_pool, seed)
    n_train = n_pool - test_size
    return perm[n_train:].copy(), perm[:n_train].copy()


def finetune_subset(pool_idx: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The first ``size`` of a seed's fixed permutation of the fine-tuning pool (nested in size)."""
    pool_idx = np.asarray(pool_idx, dtype=np.int64)
    _check(f"fine-tuning subset (seed {seed})", size, len(pool_idx))
    return pool_idx[_perm(len(pool_idx), subset_seed("finetune", seed))[:size]]


def pretrain_subset(n_pool: int, size: int, data_seed: int) -> np.ndarray:
    """The first ``size`` of the data seed's fixed permutation of the ImageNet cache (nested in size)."""
    _check(f"pre-training subset (data_seed {data_seed})", size, n_pool)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return _perm(n_pool, subset_seed("pretrain", data_seed))[:size].copy()
