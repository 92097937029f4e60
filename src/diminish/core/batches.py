"""The batch path of every stage kind: the data order of an epoch (:func:`epoch_order`), its cut into
this process's batches (:func:`split_batches`, :func:`eval_batches`), a cache's arrays delivered on the
device (:class:`DeviceData`) and the batch source the loop steps through (:class:`Batches`, re-seeded
at every step so a step's augmentation depends on nothing but its position).

A *batch source* is any sequence: ``len(batches)`` steps, ``batches[step]`` that step's batch on the
device. What a batch holds is the task's (:mod:`diminish.core.tasks`): ``make(raw, generator)``
turns the raw uint8 arrays into it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from ..seeds import derive_seed


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """A permutation of ``range(n)`` that depends only on ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(derive_seed(seed, "order", epoch))
    return torch.randperm(n, generator=g).numpy()


def split_batches(order: np.ndarray, batch_size: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """Cut an epoch's order into global batches (the last may be smaller) and keep this process's part.

    Every process gets the same number of steps; a global batch smaller than the number of
    processes is padded by repetition so that no process is left without data.
    """
    out = []
    for start in range(0, len(order), batch_size):
        b = np.asarray(order[start : start + batch_size])
        if world > 1:
            if len(b) < world:
                b = np.resize(b, world)
            b = np.array_split(b, world)[rank]
        out.append(b)
    return out


def eval_batches(idx, batch_size: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """This process's share of ``idx`` (no example twice, none left out), in batches."""
    part = np.array_split(np.asarray(idx), world)[rank]
    return [part[i : i + batch_size] for i in range(0, len(part), batch_size)]


class DeviceData:
    """A cache's arrays, indexed by batch and delivered on the device as tensors.

    ``resident`` ``auto``: on a CUDA device a cache that fits ``max_bytes`` is copied there once as
    uint8 and indexed in place; ``always``: so on any device (the CPU too, where the GPU's path
    can be tested), whatever the budget; ``never``: batches are gathered from the memory map and
    transferred. The runner's ``max_bytes`` is what is left of its resident budget
    (:func:`diminish.runner.context.resident_budget`) after the caches already moved.
    """

    def __init__(self, cache, device, max_bytes: int = 12 << 30, resident: str = "auto") -> None:
        if resident not in ("auto", "always", "never"):
            raise ValueError(f"resident must be auto, always or never; got {resident!r}")
        self.cache = cache
        self.device = device
        fits = device.type == "cuda" and cache.images.nbytes <= max_bytes
        self.on_device = resident == "always" or (resident == "auto" and fits)
        self._t: dict[str, torch.Tensor] = {}
        if self.on_device:
            for name in ("images", "masks", "labels"):
                arr = getattr(cache, name)
                if arr is not None:
                    t = torch.from_numpy(np.ascontiguousarray(arr))
                    self._t[name] = t.to(device) if device.type != "cpu" else t.clone()

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def resident_bytes(self) -> int:
        """Bytes this cache holds on the device (0 when batches come from the memory map)."""
        return sum(t.nbytes for t in self._t.values())

    def gather(self, idx) -> dict:
        """Host side of :meth:`take` for a cache read from the memory map: this batch's rows
        (``idx`` sorted), gathered in one copy into pinned memory when the device is a GPU (so the
        transfer that follows does not block), else into ordinary tensors."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        out: dict = {"n": len(idx)}
        pin = self.device.type == "cuda"
        for name in ("images", "masks", "labels"):
            arr = getattr(self.cache, name)
            if arr is None:
                continue
            t = torch.empty((len(idx), *arr.shape[1:]), dtype=torch.from_numpy(np.empty(0, arr.dtype)).dtype,
                            pin_memory=pin)
            np.take(arr, idx, axis=0, out=t.numpy())
            out[name] = t
        return out

    def upload(self, host: dict) -> dict:
        """:meth:`gather`'s tensors on the device (non-blocking copies from pinned memory)."""
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in host.items()}

    def take(self, idx) -> dict:
        """This batch's arrays on the device: indexed in place when resident, else gathered from
        the memory map (:meth:`gather`) and transferred (:meth:`upload`)."""
        if not self.on_device:
            return self.upload(self.gather(idx))
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        out = {"n": len(idx)}
        t = torch.from_numpy(idx)
        if self.device.type != "cpu":  # a blocking copy from pageable memory would sync every step
            t = t.pin_memory()
        t = t.to(self.device, non_blocking=True)
        out.update({k: v[t] for k, v in self._t.items()})
        return out


_PREFETCH: list = []  # the process's one prefetch thread, made on first use


def _prefetcher() -> ThreadPoolExecutor:
    """One background thread for every batch source of the process: a source dropped before its
    last step (the final-weights check takes one batch) leaves at most one finished gather behind."""
    if not _PREFETCH:
        _PREFETCH.append(ThreadPoolExecutor(1, thread_name_prefix="diminish-prefetch"))
    return _PREFETCH[0]


class Batches:
    """A batch source for the engine: ``batches[step]`` indexes, moves and transforms one batch.

    The generator handed to ``make`` is re-seeded from ``(*seed_parts, step)`` at every step, so
    a step's augmentation and masks depend on nothing but its position.

    ``prefetch`` (default: on when the data is read from the memory map for a GPU): while step
    ``s`` trains, a background thread gathers step ``s + 1``'s rows into pinned memory, so the
    host's gather overlaps the device's work. The rows are a pure function of the step, so the
    batches are the same with it or without it.
    """

    def __init__(self, data: DeviceData, index_batches: list, make, seed_parts: tuple | None = None,
                 prefetch: bool | None = None) -> None:
        self.data, self.index_batches, self.make, self.seed_parts = data, index_batches, make, seed_parts
        self.gen = torch.Generator(device=data.device) if seed_parts is not None else None
        if prefetch is None:
            prefetch = not data.on_device and data.device.type == "cuda"
        self.prefetch = prefetch and not data.on_device
        self._next: tuple[int, Future] | None = None

    def __len__(self) -> int:
        return len(self.index_batches)

    def _raw(self, step: int) -> dict:
        if not self.prefetch:
            return self.data.take(self.index_batches[step])
        pending, self._next = self._next, None
        host = pending[1].result() if pending is not None and pending[0] == step else None
        if host is None:
            host = self.data.gather(self.index_batches[step])
        if step + 1 < len(self.index_batches):
            self._next = (step + 1, _prefetcher().submit(self.data.gather, self.index_batches[step + 1]))
        return self.data.upload(host)

    def __getitem__(self, step: int):
        raw = self._raw(step)
        if self.gen is not None:
            self.gen.manual_seed(derive_seed(*self.seed_parts, step))
        return self.make(raw, self.gen)
