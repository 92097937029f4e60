"""The runner's batch delivery: the device-resident path used on GPUs gives exactly the batches of
the memory-map path (exercised here on the CPU by forcing it on)."""

from __future__ import annotations

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from diminish.core.batches import Batches, DeviceData


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
    assert (mapped.resident_bytes, resident.resident_bytes) == (0, cache.images.nbytes + cache.masks.nbytes)


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


class HostToDevice(TorchFunctionMode):
    """Records the host-to-device copies that make the host wait for the device (on CUDA: a sync
    with all queued work). Exempt are copies of pinned tensors with ``non_blocking=True``;
    ``pin_memory`` is recorded, not run (no CUDA here). Run on the meta device, standing in for a GPU."""

    def __init__(self):
        super().__init__()
        self.blocking, self.pinned = [], set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.pin_memory:
            self.pinned.add(id(args[0]))
            return args[0]
        if func in (torch.tensor, torch.as_tensor) and torch.device(kwargs.get("device") or "cpu").type != "cpu":
            self.blocking.append(f"torch.{func.__name__}(..., device={kwargs['device']})")
        if func is torch.Tensor.to and args[0].device.type == "cpu":
            target = kwargs.get("device", next((a for a in args[1:] if isinstance(a, (str, torch.device))), None))
            if target is not None and torch.device(target).type != "cpu":
                if not (kwargs.get("non_blocking") and id(args[0]) in self.pinned):
                    self.blocking.append(f"Tensor.to({target}, non_blocking={kwargs.get('non_blocking')})")
        return func(*args, **kwargs)


def test_a_device_resident_step_never_waits_for_the_device():
    """Between the engine's syncs (every 25 steps on GPUs) a step's batch delivery (index, gather,
    augmentation, normalisation, SimMIM mask) copies nothing from the host that would block."""
    from diminish.core.model import ViNy, ViNyConfig
    from diminish.core.simmim import SimMIM
    from diminish.core.transforms import cls_augment, normalize, seg_augment, simmim_augment

    meta = torch.device("meta")
    cache = FakeCache()
    data = DeviceData(cache, meta)
    data.on_device = True
    data._t = {k: torch.from_numpy(getattr(cache, k).copy()).to(meta) for k in ("images", "masks")}
    simmim = SimMIM(ViNy(ViNyConfig(image_size=32, dim=8, depth=1, heads=1, dim_head=8, mlp_dim=8)))
    normalize(data._t["images"][:1])  # per-device constants may be made once, before the first step
    with HostToDevice() as rec:
        for _step in range(2):
            raw = data.take(np.array([7, 2, 11, 5]))
            assert raw["images"].device == meta and raw["images"].shape == (4, 3, 8, 8)
            seg_augment(raw["images"], raw["masks"])
            simmim_augment(raw["images"])
            cls_augment(raw["images"])
            simmim.random_mask(4, meta)
    assert rec.blocking == []
    assert len(rec.pinned) == 2  # the index went over pinned, once per step


def test_the_host_to_device_recorder_sees_blocking_copies():
    meta = torch.device("meta")
    with HostToDevice() as rec:
        torch.tensor([1.0, 2.0], device=meta)
        torch.from_numpy(np.arange(3)).to(meta)
        torch.from_numpy(np.arange(3)).to(meta, non_blocking=True)  # pageable: may still sync
        torch.from_numpy(np.arange(3)).pin_memory().to(meta, non_blocking=True)  # the one allowed
        torch.zeros(3).to("cpu")
    assert len(rec.blocking) == 3 and len(rec.pinned) == 1


def test_gpu_cache_budget_is_a_quarter_of_the_card_split_among_its_workers(monkeypatch):
    from types import SimpleNamespace

    from diminish.runner import context

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=80 << 30))
    cuda = torch.device("cuda")
    assert context.resident_budget(cuda) == 20 << 30  # 200k ImageNet (9.8 GB) + Intel + Pets fit
    assert context.resident_budget(cuda, workers_per_gpu=8) == (20 << 30) // 8  # ImageNet stays in host memory
    assert context.resident_budget(torch.device("cpu")) == 0
