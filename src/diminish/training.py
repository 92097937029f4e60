"""Training one stage's model over its epochs, resumably. :class:`TrainState` is the one object
that holds what a checkpoint restores (epoch, step, running loss, seconds, loss history, and the
model, optimiser, LR scheduler and AMP scaler); :class:`Checkpointer` writes and reads it
(``checkpoint.pt`` with its size and SHA-256 in ``checkpoint.json``, loaded with
``weights_only=True``, a damaged one set aside); :func:`train` runs the epochs, writing a
checkpoint at epoch ends and when a stop is requested, and emits the stage's log events, progress
bar, tracker values and the heartbeat callback its caller passes in (the claim of the unit being
run). The steps of one epoch are :func:`diminish.engine.train_one_epoch`'s."""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import StageConfig
from .context import Context
from .digests import digest_problem
from .plan import Stage
from .store import atomic_torch_save, atomic_write_json, read_json

# torch, numpy, tqdm and the torch modules (engine, fastpath) load inside the functions that use
# them: schedule.py imports this module for StageInterrupted, and `python -m diminish.run` answers
# --help, --dry-run and --status without loading torch.


class StageInterrupted(Exception):
    """A stop was requested; the stage saved its progress."""

    def __init__(self, stage: Stage, epoch: int, step: int, where: Path) -> None:
        super().__init__(f"interrupted in {stage.label} at epoch {epoch}, step {step}; "
                         f"progress saved in {where}")
        self.stage = stage


def _scheduler(opt, sc: StageConfig):
    import torch

    if sc.warmup_epochs <= 0:
        return torch.optim.lr_scheduler.MultiStepLR(opt, list(sc.milestones), sc.gamma)
    w, ms, g = sc.warmup_epochs, sc.milestones, sc.gamma
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, (e + 1) / w) * g ** sum(m <= e for m in ms))


CHECKPOINT_KEYS = ("key", "model", "optimizer", "scheduler", "state", "rng")


def rng_state() -> dict:
    """The torch, numpy and python RNG states in types that ``torch.load(weights_only=True)`` reads
    (numpy's key array as a tensor)."""
    import numpy as np
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}}


def set_rng_state(rng: dict) -> None:
    import numpy as np
    import torch

    n = rng["numpy"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(rng["python"])


def read_checkpoint(path: Path, stage: Stage) -> dict | None:
    """The stage's checkpoint, read with ``weights_only=True`` (no code in it runs) and checked
    against the size and SHA-256 recorded beside it (``checkpoint.json``); None when there is none.
    A damaged or unreadable one (truncated, overwritten, or written by an older version) is set
    aside as ``checkpoint.damaged-<time>.pt`` with one line saying so, and the stage restarts."""
    import torch

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


HEARTBEAT_SECONDS = 30.0  # between claim refreshes while training (the claim timeout is far longer)


class _Progress:
    """The progress bar and the throttled heartbeat, fed by the epoch loop's sync points."""

    def __init__(self, bar, heartbeat: Callable[[], None]) -> None:
        self.bar, self.heartbeat = bar, heartbeat
        self.epoch = self.done = 0
        self.last_beat = time.time()

    def start_epoch(self, epoch: int, step: int) -> None:
        self.epoch, self.done = epoch, step

    def on_sync(self, step: int, loss: float, ips: float) -> None:
        self.bar.set_postfix(epoch=self.epoch, loss=f"{loss:.4f}", img_s=f"{ips:.0f}", refresh=False)
        self.bar.update(step + 1 - self.done)
        self.done = step + 1
        if time.time() - self.last_beat > HEARTBEAT_SECONDS:
            self.heartbeat()
            self.last_beat = time.time()


def _no_heartbeat() -> None:
    pass


def train(ctx: Context, stage: Stage, model, sc: StageConfig, loss_fn, make_batches, n_images: int,
          heartbeat: Callable[[], None] | None = None) -> tuple[Any, TrainState]:
    """Train ``model`` for ``sc.epochs`` epochs with checkpoints, resuming from the stage's
    checkpoint when there is one; returns (unwrapped model, final :class:`TrainState`).
    ``heartbeat`` refreshes the claim of the unit being run (the main process calls it at each
    checkpoint and every 30 s); None: no claim to keep fresh."""
    import torch
    from tqdm.auto import tqdm

    from . import engine, fastpath

    acc, store, d = ctx.acc, ctx.store, ctx.store.dir(stage)
    beat = heartbeat if heartbeat is not None and ctx.is_main else _no_heartbeat
    model.to(ctx.device)
    opt = fastpath.make_optimizer(model.parameters(), sc.lr, sc.weight_decay, ctx.device)
    state = TrainState(model, opt, _scheduler(opt, sc), acc.scaler)
    ckpt = Checkpointer(d, stage, ctx.is_main)
    if ckpt.load(state):
        if ctx.is_main:
            store.log(stage, "resume", epoch=state.epoch, step=state.step)
    elif ctx.is_main:
        store.log(stage, "start")
    every = ctx.rt.checkpoint_every
    if every is None:  # CPU epochs are long next to a write; GPU epochs of small stages are not
        every = 0.0 if ctx.device.type == "cpu" else 30.0

    pmodel, popt = acc.prepare(model, opt)  # pmodel, not the compiled wrapper, is saved and returned
    state.model = acc.unwrap_model(pmodel)  # the same module (DDP only wraps it)
    fmodel = fastpath.maybe_compile(pmodel, ctx.rt.compile)  # the same parameters, a compiled forward
    steps = math.ceil(n_images / sc.batch_size) if n_images else 0
    bar = tqdm(total=sc.epochs * steps, initial=state.epoch * steps + state.step, desc=stage.label,
               unit="step", leave=False, dynamic_ncols=True, disable=not (ctx.is_main and ctx.rt.progress))
    progress = _Progress(bar, beat)

    def save() -> float:
        ckpt.save(state)
        beat()
        return time.time()

    last_save = time.time()
    try:
        for epoch in range(state.epoch, sc.epochs):
            progress.start_epoch(epoch, state.step)
            res = engine.train_one_epoch(
                fmodel, popt, loss_fn, make_batches(epoch), accelerator=acc, kind=stage.kind, epoch=epoch,
                where=stage.label, start_step=state.step, loss_sum=state.loss_sum, count=state.count,
                grad_clip=sc.grad_clip, stop=ctx.stop, sync_every=ctx.sync_every, on_sync=progress.on_sync,
                fault=ctx.fault)
            state.seconds += res.seconds
            if res.interrupted:
                state.epoch, state.step, state.loss_sum, state.count = epoch, res.next_step, res.loss_sum, res.count
                save()
                if ctx.is_main:
                    store.log(stage, "interrupted", epoch=epoch, step=res.next_step)
                raise StageInterrupted(stage, epoch, res.next_step, d)
            state.scheduler.step()
            totals = torch.tensor([res.loss_sum, float(res.count)], dtype=torch.float64, device=ctx.device)
            if acc.num_processes > 1:
                totals = acc.reduce(totals, reduction="sum")
            loss = float(totals[0] / totals[1]) if totals[1] > 0 else math.nan
            state.epoch, state.step, state.loss_sum, state.count = epoch + 1, 0, 0.0, 0
            state.history.append(loss)
            stopping = ctx.stop is not None and epoch + 1 < sc.epochs and engine.agree(ctx.stop.requested, acc)
            if stopping or time.time() - last_save >= every:
                last_save = save()
            if ctx.is_main:
                lr = opt.param_groups[0]["lr"]
                store.log(stage, "epoch", epoch=epoch, loss=loss, lr=lr, seconds=res.seconds,
                          images_per_s=res.count * acc.num_processes / res.seconds if res.seconds else None)
                if ctx.trackers is not None:
                    ctx.trackers.log(stage, {"loss": loss, "lr": lr}, epoch)
            if stopping:
                if ctx.is_main:
                    store.log(stage, "interrupted", epoch=epoch + 1, step=0)
                raise StageInterrupted(stage, epoch + 1, 0, d)
    finally:
        bar.close()
    final = acc.unwrap_model(pmodel)
    last = make_batches(sc.epochs - 1) if steps else None
    engine.check_finite_weights(final, stage.label, f"lower [{stage.kind}] lr (now {sc.lr:g})"
                                + ("" if sc.grad_clip else " or set grad_clip") + " and rerun",
                                loss_fn if last is not None and len(last) else None, last[0] if last else None)
    return final, state
