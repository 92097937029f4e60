"""What the stages of one process share: the :class:`Context` (config, runtime switches,
accelerator, store, prepared caches), the caches' arrays on the device (:class:`DeviceData`) and
the engine's batch source (:class:`Batches`, seeded per step so a step's augmentation depends on
nothing but its position)."""

from __future__ import annotations

import os

import numpy as np

from .config import ExperimentConfig
from .data.cache import prepare
from .data.readers import DataMissingError, intel_split_dir
from .store import Store

# torch, and the engine that imports it, load in the methods that use them (only when a grid
# trains): diminish.run imports this module through schedule and training, and its --help,
# --dry-run and --status need no torch.


def resident_budget(device) -> int:
    """Bytes of dataset caches one process may keep on its GPU: a quarter of the card's memory,
    split among the ``--jobs`` workers that share the card (``DIMINISH_WORKERS_PER_GPU``); 0 off CUDA."""
    import torch  # lazy: see the note at the top

    if device.type != "cuda":
        return 0
    share = max(1, int(os.environ.get("DIMINISH_WORKERS_PER_GPU", "1")))
    return torch.cuda.get_device_properties(device).total_memory // 4 // share


class DeviceData:
    """A cache's arrays, indexed by batch and delivered on the device as tensors.

    On a CUDA device a cache that fits ``max_bytes`` is copied there once as uint8 and indexed in
    place; otherwise batches are gathered from the memory map and transferred. The runner's
    ``max_bytes`` is what is left of :func:`resident_budget` after the caches already moved.
    """

    def __init__(self, cache, device, max_bytes: int = 12 << 30) -> None:
        import torch  # lazy: see the note at the top

        self.cache = cache
        self.device = device
        self.on_device = device.type == "cuda" and cache.images.nbytes <= max_bytes
        self._t: dict[str, torch.Tensor] = {}
        if self.on_device:
            for name in ("images", "masks", "labels"):
                arr = getattr(cache, name)
                if arr is not None:
                    self._t[name] = torch.from_numpy(np.ascontiguousarray(arr)).to(device)

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def resident_bytes(self) -> int:
        """Bytes this cache holds on the device (0 when batches come from the memory map)."""
        return sum(t.nbytes for t in self._t.values())

    def take(self, idx) -> dict:
        import torch  # lazy: see the note at the top

        idx = np.sort(np.asarray(idx, dtype=np.int64))
        out = {"n": len(idx)}
        if self.on_device:
            t = torch.from_numpy(idx)
            if self.device.type != "cpu":  # a blocking copy from pageable memory would sync every step
                t = t.pin_memory()
            t = t.to(self.device, non_blocking=True)
            out.update({k: v[t] for k, v in self._t.items()})
            return out
        for name in ("images", "masks", "labels"):
            arr = getattr(self.cache, name)
            if arr is not None:
                out[name] = torch.from_numpy(np.ascontiguousarray(arr[idx])).to(self.device, non_blocking=True)
        return out


class Batches:
    """A batch source for the engine: ``batches[step]`` indexes, moves and transforms one batch.

    The generator handed to ``make`` is re-seeded from ``(*seed_parts, step)`` at every step, so
    a step's augmentation and masks depend on nothing but its position.
    """

    def __init__(self, data: DeviceData, index_batches: list, make, seed_parts: tuple | None = None) -> None:
        import torch  # lazy: see the note at the top

        self.data, self.index_batches, self.make, self.seed_parts = data, index_batches, make, seed_parts
        self.gen = torch.Generator(device=data.device) if seed_parts is not None else None

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, step: int):
        from .engine import derive_seed  # lazy: see the note at the top

        raw = self.data.take(self.index_batches[step])
        if self.gen is not None:
            self.gen.manual_seed(derive_seed(*self.seed_parts, step))
        return self.make(raw, self.gen)


class Context:
    """What all stages of one process share: config, switches, accelerator, store, caches."""

    def __init__(self, cfg: ExperimentConfig, rt, store: Store, accelerator, stop=None, fault=None,
                 claim_timeout: float = 1800.0) -> None:
        self.cfg, self.rt, self.store, self.acc = cfg, rt, store, accelerator
        self.device = accelerator.device
        self.is_main = accelerator.is_main_process
        self.stop, self.fault, self.claim_timeout = stop, fault, claim_timeout
        from .engine import default_sync_every

        self.sync_every = default_sync_every(self.device)
        self.resident_left = resident_budget(self.device)  # bytes of caches that may still move to the GPU
        self._caches: dict = {}
        self._data: dict = {}
        self.trackers = None

    def root_of(self, dataset: str) -> str:
        return getattr(self.cfg.data, f"{dataset}_root")

    def cache(self, dataset: str, split: str = "train"):
        """The prepared cache (built on first use; the main process builds, the others wait)."""
        if (dataset, split) not in self._caches:
            with self.acc.main_process_first():
                c = prepare(dataset, self.root_of(dataset), self.rt.cache_dir, split=split,
                            limit=self.cfg.data.limit or None, skip_bad=self.cfg.data.skip_bad,
                            progress=self.rt.progress and self.is_main)
            self._caches[dataset, split] = c
        return self._caches[dataset, split]

    def intel_test(self):
        """The Intel test cache, or None when the dataset has no seg_test folder."""
        if ("intel", "test") not in self._caches:
            try:  # decided before prepare(), so that every process takes the same path
                intel_split_dir(self.root_of("intel"), "test")
            except DataMissingError:
                self._caches["intel", "test"] = None
            else:
                self.cache("intel", "test")
        return self._caches["intel", "test"]

    def data(self, dataset: str, split: str = "train") -> DeviceData:
        if (dataset, split) not in self._data:
            d = DeviceData(self.cache(dataset, split), self.device, max_bytes=self.resident_left)
            self.resident_left -= d.resident_bytes
            self._data[dataset, split] = d
        return self._data[dataset, split]

    def index_batches(self, order, batch_size: int) -> list:
        from .engine import split_batches  # lazy: see the note at the top

        return split_batches(order, batch_size, self.acc.process_index, self.acc.num_processes)

    def eval_batches(self, idx, batch_size: int) -> list:
        """This process's share of ``idx`` (no example twice), in batches."""
        part = np.array_split(np.asarray(idx), self.acc.num_processes)[self.acc.process_index]
        return [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
