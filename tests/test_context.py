"""The runner's batch delivery: the device-resident path used on GPUs gives exactly the batches of
the memory-map path (exercised here on the CPU by forcing it on)."""

from __future__ import annotations

import numpy as np
import torch

from diminish.context import Batches, DeviceData


class FakeCache:
    def __init__(self, n=12):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
        self.masks = rng.integers(0, 3, (n, 8, 8), dtype=np.uint8)
        self.labels = None

    def __len__(self):
        return len(self.images)


def _resident(cache):
    """DeviceData with its GPU path switched on, on the CPU."""
    d = DeviceData(cache, torch.device("cpu"))
    assert not d.on_device  # only CUDA devices hold caches by default
    d.on_device = True
    d._t = {k: torch.from_numpy(getattr(cache, k).copy()) for k in ("images", "masks")}
    return d


def test_device_resident_batches_equal_memory_map_batches():
    cache = FakeCache()
    mapped, resident = DeviceData(cache, torch.device("cpu")), _resident(cache)
    idx = np.array([7, 2, 11, 2 + 3])
    a, b = mapped.take(idx), resident.take(idx)
    assert a.keys() == b.keys() == {"n", "images", "masks"} and a["n"] == b["n"] == 4
    for k in ("images", "masks"):
        assert a[k].dtype == b[k].dtype == torch.uint8
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(a["images"], torch.from_numpy(cache.images[np.sort(idx)]))


def test_batches_reseed_per_step_so_a_step_does_not_depend_on_the_ones_before():
    cache = FakeCache()
    data = DeviceData(cache, torch.device("cpu"))

    def make(raw, gen):
        return raw["images"].float() + torch.rand(raw["images"].shape, generator=gen)

    index = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)]
    src = Batches(data, index, make, seed_parts=(0, "finetune", 12, 0, 0))
    in_order = [src[s] for s in range(3)]
    again = Batches(data, index, make, seed_parts=(0, "finetune", 12, 0, 0))
    assert torch.equal(again[2], in_order[2])  # step 2 alone, as after a resume at step 2
    assert not torch.equal(in_order[0] - in_order[0].floor(), in_order[1] - in_order[1].floor())
