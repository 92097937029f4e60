"""Training one stage's model over its epochs, resumably: the optimiser and learning-rate
schedule, checkpoints (model, optimiser, scheduler, scaler, epoch, step, RNG states) written at
epoch ends and when a stop is requested, the stage's log events, progress bar, trackers and the
claim's heartbeat. The steps of one epoch are :func:`diminish.engine.train_one_epoch`'s."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from .config import StageConfig
from .context import Context
from .digests import digest_problem
from .plan import Stage
from .store import atomic_torch_save, atomic_write_json, read_json


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
    import random

    import numpy as np
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}}


def set_rng_state(rng: dict) -> None:
    import random

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


def train(ctx: Context, stage: Stage, model, sc: StageConfig, loss_fn, make_batches, n_images: int):
    """Train ``model`` for ``sc.epochs`` epochs with checkpoints; returns (unwrapped model, state)."""
    import math

    import torch
    from tqdm.auto import tqdm

    from . import engine, fastpath

    acc, store, d = ctx.acc, ctx.store, ctx.store.dir(stage)
    model.to(ctx.device)
    opt = fastpath.make_optimizer(model.parameters(), sc.lr, sc.weight_decay, ctx.device)
    sched = _scheduler(opt, sc)
    state = {"epoch": 0, "step": 0, "loss_sum": 0.0, "count": 0, "seconds": 0.0, "history": []}
    ck = d / "checkpoint.pt"
    blob = read_checkpoint(ck, stage)
    if blob is not None:
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        if blob.get("scaler") is not None and acc.scaler is not None:
            acc.scaler.load_state_dict(blob["scaler"])
        set_rng_state(blob["rng"])
        state = blob["state"]
        if ctx.is_main:
            store.log(stage, "resume", epoch=state["epoch"], step=state["step"])
    elif ctx.is_main:
        store.log(stage, "start")

    last_save = [time.time()]
    every = ctx.rt.checkpoint_every
    if every is None:  # CPU epochs are long next to a write; GPU epochs of small stages are not
        every = 0.0 if ctx.device.type == "cpu" else 30.0

    def save() -> None:
        last_save[0] = time.time()
        if not ctx.is_main:
            return
        with contextlib.suppress(FileNotFoundError):  # a kill before the new one is written leaves none
            ck.with_suffix(".json").unlink()
        written = atomic_torch_save(ck, {
            "key": stage.key, "model": acc.unwrap_model(pmodel).state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": acc.scaler.state_dict() if acc.scaler else None,
            "state": state, "rng": rng_state()})
        atomic_write_json(ck.with_suffix(".json"), written)
        store.heartbeat(ctx.unit or stage)

    pmodel, popt = acc.prepare(model, opt)  # pmodel, not the compiled wrapper, is saved and returned
    fmodel = fastpath.maybe_compile(pmodel, ctx.rt.compile)  # the same parameters, a compiled forward
    steps = math.ceil(n_images / sc.batch_size) if n_images else 0
    bar = tqdm(total=sc.epochs * steps, initial=state["epoch"] * steps + state["step"], desc=stage.label,
               unit="step", leave=False, dynamic_ncols=True, disable=not (ctx.is_main and ctx.rt.progress))
    beat = [time.time()]
    done_steps = [state["step"]]

    def on_sync(step: int, loss: float, ips: float) -> None:
        bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", img_s=f"{ips:.0f}", refresh=False)
        bar.update(step + 1 - done_steps[0])
        done_steps[0] = step + 1
        if ctx.is_main and time.time() - beat[0] > 30:
            store.heartbeat(ctx.unit or stage)
            beat[0] = time.time()

    try:
        for epoch in range(state["epoch"], sc.epochs):
            done_steps[0] = state["step"]
            res = engine.train_one_epoch(
                fmodel, popt, loss_fn, make_batches(epoch), accelerator=acc, kind=stage.kind, epoch=epoch,
                where=stage.label, start_step=state["step"], loss_sum=state["loss_sum"], count=state["count"],
                grad_clip=sc.grad_clip, stop=ctx.stop, sync_every=ctx.sync_every, on_sync=on_sync,
                fault=ctx.fault)
            state["seconds"] += res.seconds
            if res.interrupted:
                state.update(epoch=epoch, step=res.next_step, loss_sum=res.loss_sum, count=res.count)
                save()
                if ctx.is_main:
                    store.log(stage, "interrupted", epoch=epoch, step=res.next_step)
                raise StageInterrupted(stage, epoch, res.next_step, d)
            sched.step()
            totals = torch.tensor([res.loss_sum, float(res.count)], dtype=torch.float64, device=ctx.device)
            if acc.num_processes > 1:
                totals = acc.reduce(totals, reduction="sum")
            loss = float(totals[0] / totals[1]) if totals[1] > 0 else math.nan
            state.update(epoch=epoch + 1, step=0, loss_sum=0.0, count=0)
            state["history"].append(loss)
            stopping = ctx.stop is not None and epoch + 1 < sc.epochs and engine.agree(ctx.stop.requested, acc)
            if stopping or time.time() - last_save[0] >= every:
                save()
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
