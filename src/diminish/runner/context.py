"""What the stages of one process share, fixed when the run starts: :class:`Context` (the config,
the runtime switches, the accelerator, the rank-aware store, the datasets, the stop flag, the
trackers and an optional step hook), and :class:`Datasets`, the prepared caches and their arrays
on the device (a quarter of a GPU's memory at most, shared among the ``--jobs`` workers on it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import ExperimentConfig, RuntimeConfig
from ..core.batches import DeviceData
from ..core.loop import StopRequest
from ..data.cache import prepare
from ..data.readers import DataMissingError, intel_split_dir
from .store import Store


def resident_budget(device: torch.device, workers_per_gpu: int = 1) -> int:
    """Bytes of dataset caches one process may keep on its GPU: a quarter of the card's memory,
    split among the ``workers_per_gpu`` processes that share the card; 0 off CUDA."""
    if device.type != "cuda":
        return 0
    return torch.cuda.get_device_properties(device).total_memory // 4 // max(1, workers_per_gpu)


def prepare_caches(cfg: ExperimentConfig, rt: RuntimeConfig, needed, speaks: bool = True) -> dict:
    """The caches of the ``needed`` datasets (and the Intel test split when the intermediate stage
    scores on it), built or found before the accelerator exists: under a multi-process launch no
    rank waits in a collective while another decodes images (the first multi-GPU run would die
    on the process group's timeout, 10 minutes, while rank 0 decoded 200k ImageNet JPEGs). The
    ranks take :func:`diminish.data.cache.prepare`'s file lock in turn: the first builds, the
    others find the cache made. ``speaks``: this process shows the progress bars."""
    caches: dict = {}
    for dataset in sorted(needed):
        splits = ["train"]
        if dataset == "intel" and cfg.intermediate.evaluate_test:
            try:
                intel_split_dir(cfg.data.intel_root, "test")
                splits.append("test")
            except DataMissingError:
                caches["intel", "test"] = None
        for split in splits:
            caches[dataset, split] = prepare(dataset, getattr(cfg.data, f"{dataset}_root"), rt.cache_dir,
                                             split=split, limit=cfg.data.limit or None,
                                             skip_bad=cfg.data.skip_bad, progress=rt.progress and speaks)
    return caches


class Datasets:
    """The run's dataset caches (those of :func:`prepare_caches`, given; any other built on first
    use: the main process builds, the others wait) and their device-resident arrays."""

    def __init__(self, cfg: ExperimentConfig, rt: RuntimeConfig, accelerator, workers_per_gpu: int = 1,
                 caches: dict | None = None) -> None:
        self.cfg, self.rt, self.acc = cfg, rt, accelerator
        self.resident_left = resident_budget(accelerator.device, workers_per_gpu)
        self._caches: dict = dict(caches or {})
        self._data: dict = {}

    def root_of(self, dataset: str) -> str:
        return getattr(self.cfg.data, f"{dataset}_root")

    def cache(self, dataset: str, split: str = "train"):
        """The prepared cache of ``dataset`` (its ``split``)."""
        if (dataset, split) not in self._caches:
            with self.acc.main_process_first():
                c = prepare(dataset, self.root_of(dataset), self.rt.cache_dir, split=split,
                            limit=self.cfg.data.limit or None, skip_bad=self.cfg.data.skip_bad,
                            progress=self.rt.progress and self.acc.is_main_process)
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

    def on_device(self, dataset: str, split: str = "train") -> DeviceData:
        """The cache's arrays on the device (copied once when they fit what is left of the budget)."""
        if (dataset, split) not in self._data:
            d = DeviceData(self.cache(dataset, split), self.acc.device, max_bytes=self.resident_left,
                           resident=self.rt.resident)
            self.resident_left -= d.resident_bytes
            self._data[dataset, split] = d
        return self._data[dataset, split]


@dataclass(frozen=True)
class Context:
    """What all stages of one process share; built once by the run (:mod:`.launch`)."""

    cfg: ExperimentConfig
    rt: RuntimeConfig
    store: Store
    acc: Any
    data: Datasets
    stop: StopRequest | None = None
    trackers: Any = None
    step_hook: Any = None
    claim_timeout: float = 1800.0

    @property
    def device(self) -> torch.device:
        return self.acc.device

    @property
    def is_main(self) -> bool:
        return self.acc.is_main_process
