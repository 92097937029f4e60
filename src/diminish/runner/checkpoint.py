"""What a stage's checkpoint restores, and the file it lives in. :class:`TrainState` is the one object
that holds it (epoch, step, running loss, seconds, loss history, and the model, optimiser, LR
scheduler and AMP scaler, with the RNG states; the shape of Accelerate's
``register_for_checkpointing``); :class:`Checkpointer` writes it as ``checkpoint.pt`` with its size
and SHA-256 in ``checkpoint.json`` and reads it back with ``weights_only=True`` (no code in it runs),
setting a damaged one aside. :func:`atomic_torch_save` writes any torch file atomically.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write_bytes, atomic_write_json, read_json
from .digests import digest, digest_problem
from .plan import Stage


def atomic_torch_save(path: Path, obj: Any) -> dict:
    """Write ``obj`` with torch.save, atomically; returns the file's :func:`digest`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
    return digest(buf.getvalue())


CHECKPOINT_KEYS = ("key", "model", "optimizer", "scheduler", "state", "rng")


def rng_state() -> dict:
    """The torch, numpy and python RNG states in types that ``torch.load(weights_only=True)`` reads
    (numpy's key array as a tensor)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}}


def set_rng_state(rng: dict) -> None:
    n = rng["numpy"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(rng["python"])


def read_checkpoint(path: Path, stage: Stage) -> dict | None:
    """The stage's checkpoint, read with ``weights_only=True`` (no code in it runs) and checked
    against the size and SHA-256 recorded beside it (``checkpoint.json``); None when there is none.
    A damaged or unreadable one (truncated, overwritten, or written by an older version) is set
    aside as ``checkpoint.damaged-<time>.pt`` with one line saying so, and the stage restarts."""
    if not path.is_file():
        return None
    side = path.with_suffix(".json")
    try:
        expected = read_json(side) if side.is_file() else None
        problem = digest_problem(path, expected if isinstance(expected, dict) else None)
        if problem is None:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(blob, dict) or any(k not in blob for k in CHECKPOINT_KEYS):
                problem = "not a checkpoint of this version (keys missing)"
    except Exception as e:  # noqa: BLE001 - whatever unpickling or unzipping raises, the file is unusable
        problem = f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    if problem is None:
        if blob["key"] != stage.key:
            raise RuntimeError(f"{path}: checkpoint belongs to stage {blob['key']}, not {stage.key}")
        return blob
    aside = path.with_name(f"checkpoint.damaged-{time.strftime('%Y%m%dT%H%M%S')}.pt")
    with contextlib.suppress(FileNotFoundError):
        path.rename(aside)
    with contextlib.suppress(FileNotFoundError):
        side.unlink()
    print(f"warning: {path}: {problem}; set aside as {aside.name}, {stage.label} restarts from its first epoch",
          file=sys.stderr, flush=True)
    return None


@dataclass
class TrainState:
    """Everything a stage's checkpoint restores, in one object (the shape of Accelerate's
    ``register_for_checkpointing``): the progress counters, the loss history and wall time, and
    the model, optimiser, LR scheduler and AMP scaler whose states are saved with them.

    ``epoch``/``step`` are where training continues; ``loss_sum``/``count`` the running loss of
    the epoch in progress (zero at an epoch's end); ``history`` one mean loss per finished epoch."""

    model: Any
    optimizer: Any
    scheduler: Any
    scaler: Any = None
    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    count: int = 0
    seconds: float = 0.0
    history: list[float] = field(default_factory=list)

    def progress(self) -> dict:
        """The counters as the checkpoint's ``state`` entry holds them."""
        return {"epoch": self.epoch, "step": self.step, "loss_sum": self.loss_sum, "count": self.count,
                "seconds": self.seconds, "history": self.history}

    def state_dict(self) -> dict:
        """The checkpoint's entries, but the stage key (:class:`Checkpointer` adds it)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "state": self.progress(), "rng": rng_state()}

    def load_state_dict(self, blob: dict) -> None:
        """Restore weights, optimiser, scheduler, scaler (when both sides have one), RNG states and
        counters from a checkpoint read by :func:`read_checkpoint`."""
        self.model.load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.scheduler.load_state_dict(blob["scheduler"])
        if blob.get("scaler") is not None and self.scaler is not None:
            self.scaler.load_state_dict(blob["scaler"])
        set_rng_state(blob["rng"])
        p = blob["state"]
        self.epoch, self.step, self.loss_sum, self.count = p["epoch"], p["step"], p["loss_sum"], p["count"]
        self.seconds, self.history = p["seconds"], p["history"]


class Checkpointer:
    """A stage's ``checkpoint.pt`` and its ``checkpoint.json`` (size and SHA-256): :meth:`load`
    restores a :class:`TrainState` from it (checked by :func:`read_checkpoint`), :meth:`save`
    writes one (main process only; the others return at once)."""

    def __init__(self, folder: Path, stage: Stage, is_main: bool = True) -> None:
        self.path, self.stage, self.is_main = folder / "checkpoint.pt", stage, is_main

    def load(self, state: TrainState) -> bool:
        """True when a checkpoint was found and restored into ``state``."""
        blob = read_checkpoint(self.path, self.stage)
        if blob is None:
            return False
        state.load_state_dict(blob)
        return True

    def save(self, state: TrainState) -> None:
        if not self.is_main:
            return
        side = self.path.with_suffix(".json")
        with contextlib.suppress(FileNotFoundError):  # a kill before the new one is written leaves none
            side.unlink()
        written = atomic_torch_save(self.path, {"key": self.stage.key, **state.state_dict()})
        atomic_write_json(side, written)
