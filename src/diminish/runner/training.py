"""Training one stage's model over its epochs, resumably: :func:`train` builds the optimiser and LR
schedule, restores the stage's checkpoint when there is one (:mod:`.checkpoint`), runs the epochs
(each one :func:`diminish.core.loop.train_one_epoch`), writes a checkpoint at epoch ends and when a
stop is requested, and emits the stage's log events, progress bar, tracker values and heartbeat.
Everything it uses comes in as an argument; it knows no store, claim or grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import StageConfig
from ..core import fastpath, loop
from .checkpoint import Checkpointer, TrainState
from .plan import Stage
from .store import StageInterrupted

HEARTBEAT_SECONDS = 30.0  # between claim refreshes while training (the claim timeout is far longer)


def scheduler(opt, sc: StageConfig):
    """The stage's LR schedule, stepped once per epoch: steps down by ``gamma`` at each milestone,
    after a linear warm-up of ``warmup_epochs`` when set."""
    if sc.warmup_epochs <= 0:
        return torch.optim.lr_scheduler.MultiStepLR(opt, list(sc.milestones), sc.gamma)
    w, ms, g = sc.warmup_epochs, sc.milestones, sc.gamma
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, (e + 1) / w) * g ** sum(m <= e for m in ms))


class _Progress:
    """The progress bar and the throttled heartbeat, fed by the epoch loop's sync points (a loss
    window may span an epoch's end, so the bar is set from the stage's step count)."""

    def __init__(self, bar, heartbeat: Callable[[], None], steps: int) -> None:
        self.bar, self.heartbeat, self.steps = bar, heartbeat, steps
        self.epoch = 0
        self.last_beat = time.time()

    def start_epoch(self, epoch: int, step: int) -> None:  # noqa: ARG002 - the bar counts from on_sync's step
        self.epoch = epoch

    def on_sync(self, step: int, loss: float, ips: float) -> None:
        self.bar.set_postfix(epoch=self.epoch, loss=f"{loss:.4f}", img_s=f"{ips:.0f}", refresh=False)
        self.bar.update(self.epoch * self.steps + step + 1 - self.bar.n)
        if time.time() - self.last_beat > HEARTBEAT_SECONDS:
            self.heartbeat()
            self.last_beat = time.time()


def _nothing(*args, **kwargs) -> None:
    pass


def train(model, stage: Stage, sc: StageConfig, loss_fn, make_batches, n_images: int, *, accelerator,
          checkpointer: Checkpointer, log: Callable[..., None] = _nothing, stop: loop.StopRequest | None = None,
          heartbeat: Callable[[], None] = _nothing, track: Callable[[dict, int], None] = _nothing,
          step_hook: Callable | None = None, compile: bool = False, checkpoint_every: float | None = None,
          progress: bool = True, sync_every: int | None = None, optimizer: str = "auto") -> tuple[Any, TrainState]:
    """Train ``model`` for ``sc.epochs`` epochs on ``make_batches(epoch)`` with ``loss_fn``, resuming
    from ``checkpointer``'s file when there is one; returns (unwrapped model, final :class:`TrainState`).

    ``log(event, **fields)`` records the stage's events (start, resume, epoch, interrupted);
    ``track(values, epoch)`` sends the epoch's loss and LR to the trackers; ``heartbeat()`` refreshes
    the claim of the unit being run (at each checkpoint and every 30 s); ``step_hook`` is the
    loop's (:func:`diminish.core.loop.train_one_epoch`). ``checkpoint_every``: the least seconds
    between epoch-end checkpoints (None: every epoch on a CPU, 30 s elsewhere). ``sync_every``: the
    steps between host reads of the losses (None: :func:`diminish.core.loop.default_sync_every`);
    one :class:`~diminish.core.loop.LossWindow` spans the stage, so an epoch's end reads nothing
    unless a checkpoint is due or training ends, and an epoch's loss is logged once read.
    ``optimizer``: the AdamW kernel (:func:`diminish.core.fastpath.make_optimizer`). Call it on every
    process; the callbacks of the processes other than the main one should do nothing.
    """
    acc = accelerator
    device = acc.device
    model.to(device)
    opt = fastpath.make_optimizer(model.parameters(), sc.lr, sc.weight_decay, device, optimizer)
    state = TrainState(model, opt, scheduler(opt, sc), acc.scaler)
    if checkpointer.load(state):
        log("resume", epoch=state.epoch, step=state.step)
    else:
        log("start")
    every = checkpoint_every
    if every is None:  # CPU epochs are long next to a write; GPU epochs of small stages are not
        every = 0.0 if device.type == "cpu" else 30.0

    if compile:  # under Accelerate's autocast wrapper, once per model class (fastpath.compile_forward)
        fastpath.compile_forward(model)
    pmodel, popt = acc.prepare(model, opt)
    state.model = acc.unwrap_model(pmodel)  # the same module (DDP only wraps it)
    fmodel = pmodel
    steps = math.ceil(n_images / sc.batch_size) if n_images else 0
    bar = tqdm(total=sc.epochs * steps, initial=state.epoch * steps + state.step, desc=stage.label,
               unit="step", leave=False, dynamic_ncols=True, disable=not (acc.is_main_process and progress))
    bars = _Progress(bar, heartbeat, steps)
    window = loop.LossWindow(sync_every or loop.default_sync_every(device))
    ended: list = []  # (epoch, EpochResult) of finished epochs whose losses are not all read yet

    def save() -> float:
        checkpointer.save(state)
        heartbeat()
        return time.time()

    def read_ended() -> list:
        """The finished epochs whose losses are all read, with their mean loss (all processes:
        one reduce for them all), in order; their loss goes into the history."""
        nonlocal ended
        if window.pending or not ended:
            return []
        done, ended = ended, []
        sums = [window.totals.pop(e) for e, _, _ in done]
        if acc.num_processes > 1:
            t = acc.reduce(torch.tensor(sums, dtype=torch.float64, device=device), reduction="sum")
            sums = t.cpu().tolist()
        out = []
        for (e, res, lr), (loss_sum, count) in zip(done, sums):
            loss = loss_sum / count if count > 0 else math.nan
            state.history.append(loss)
            out.append((e, res, loss, lr))
        return out

    def log_ended(finished: list) -> None:
        for e, res, loss, lr in finished:
            log("epoch", epoch=e, loss=loss, lr=lr, seconds=res.seconds,
                images_per_s=res.seen * acc.num_processes / res.seconds if res.seconds else None)
            track({"loss": loss, "lr": lr}, e)

    last_save = time.time()
    try:
        for epoch in range(state.epoch, sc.epochs):
            bars.start_epoch(epoch, state.step)
            res = loop.train_one_epoch(
                fmodel, popt, loss_fn, make_batches(epoch), accelerator=acc, kind=stage.kind, epoch=epoch,
                where=stage.label, start_step=state.step, loss_sum=state.loss_sum, count=state.count,
                grad_clip=sc.grad_clip, stop=stop, on_sync=bars.on_sync, step_hook=step_hook, window=window)
            state.seconds += res.seconds
            if res.interrupted:  # the window was just read: every earlier epoch is complete
                log_ended(read_ended())
                window.totals.pop(epoch, None)
                state.epoch, state.step, state.loss_sum, state.count = epoch, res.next_step, res.loss_sum, res.count
                save()
                log("interrupted", epoch=epoch, step=res.next_step)
                raise StageInterrupted(stage, epoch, res.next_step, checkpointer.path.parent)
            state.scheduler.step()
            state.epoch, state.step, state.loss_sum, state.count = epoch + 1, 0, 0.0, 0
            ended.append((epoch, res, opt.param_groups[0]["lr"]))  # the LR the next epoch trains with
            due = time.time() - last_save >= every
            if window.pending and (due or epoch + 1 == sc.epochs):  # a checkpoint holds every epoch's loss
                window.check(acc, stage.label)
            finished = read_ended()
            stopping = (not window.pending and stop is not None and epoch + 1 < sc.epochs
                        and loop.agree(stop.requested, acc))
            if stopping or due:
                last_save = save()
            log_ended(finished)
            if stopping:
                log("interrupted", epoch=epoch + 1, step=0)
                raise StageInterrupted(stage, epoch + 1, 0, checkpointer.path.parent)
    finally:
        bar.close()
    final = acc.unwrap_model(pmodel)
    last = make_batches(sc.epochs - 1) if steps else None
    loop.check_finite_weights(final, stage.label, f"lower [{stage.kind}] lr (now {sc.lr:g})"
                              + ("" if sc.grad_clip else " or set grad_clip") + " and rerun",
                              loss_fn if last is not None and len(last) else None, last[0] if last else None)
    return final, state
