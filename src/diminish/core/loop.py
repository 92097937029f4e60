"""The training step and the evaluation pass, for one model and one batch source; nothing here knows
the grid, the files or the processes beyond the accelerator.

What one fine-tuning step computes reads in four files: this loop (:func:`train_one_epoch`: the
loss, the backward pass, the optimiser step, the loss checks), the batches
(:mod:`diminish.core.batches`: order, indexing, transfer, the per-step generator), the task
(:mod:`diminish.core.tasks`: augmentation, loss and prediction of each stage kind) and the model
(:mod:`diminish.core.model`). Precision: the runner's forward runs under Accelerate's autocast
(``accelerator.prepare`` wraps it); evaluation here under :func:`diminish.core.fastpath.autocast`,
the same context.

A *batch source* is any sequence: ``len(batches)`` steps, ``batches[step]`` returns that step's
batch already on the device (indexing, augmentation and transfer happen inside the source).
A *loss function* maps ``(model, batch)`` to ``(loss, n_images)``, a *predict function*
``(model, batch)`` to ``(pred, target)``; each stage kind's are :mod:`diminish.core.tasks`'s.
The *accelerator* is Accelerate's ``Accelerator`` in the runner, or :class:`SingleProcess` (one
process, no Accelerate) in the benchmark and ``python -m diminish.evaluate``.

Reproducibility contract (what makes an interrupted run resume bit-identically on CPU):
* the data order of an epoch is a pure function of the stage's seed parts and the epoch
  (:func:`diminish.core.batches.epoch_order`; the runner's parts are e.g. ``(seed, "finetune", F)``),
* the randomness of a step (augmentation, SimMIM masks) comes from a generator re-seeded from
  ``(*parts, epoch, rank, step)`` by the source (:func:`diminish.seeds.derive_seed`), never from global state,
* so a run can restart at any step boundary given the model, optimiser and scheduler states.

Signals: :class:`StopRequest` turns SIGINT/SIGTERM into a flag; the loop finishes the current step
and returns ``interrupted=True`` so the caller can save and exit. A non-finite loss raises
:class:`NonFiniteLossError` naming the stage, epoch and step.

A *step hook* ``step_hook(kind, epoch, step, loss) -> loss`` sees every step's loss before the
backward pass and returns the loss to use; the runner passes none, the fault-injection harness
(``tools/fault_injection.py``) one that kills, terminates or poisons a chosen step.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import NonFiniteLossError, NonFiniteWeightsError
from . import fastpath
from .metrics import ConfusionMatrix


def check_finite_weights(model: torch.nn.Module, where: str, advice: str, loss_fn=None, batch=None) -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``where``, the problem and ``advice`` when a
    parameter or buffer of ``model`` is NaN or infinite, or (given ``loss_fn`` and a ``batch``) when
    the loss of the final weights on that batch is: finite but huge weights (a learning rate of
    1e30) give NaN outputs although every parameter is finite."""
    problem = None
    tensors = [(name, t) for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_floating_point()]
    finite = [torch.isfinite(t.detach()).all() for _, t in tensors]
    if finite and not bool(torch.stack(finite).all()):  # one host read for the whole model
        problem = f"parameter {next(name for (name, _), ok in zip(tensors, finite) if not bool(ok))}"
    if problem is None and loss_fn is not None:
        with torch.no_grad():
            loss = float(loss_fn(model, batch)[0])
        problem = None if math.isfinite(loss) else f"their loss on a training batch is {loss}"
    if problem is not None:
        raise NonFiniteWeightsError(f"non-finite weights in {where} after its last step ({problem}); "
                                    f"nothing was evaluated or saved: {advice}")


class StopRequest:
    """SIGINT/SIGTERM -> a flag checked between steps; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> StopRequest:
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def restore(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()

    def _handle(self, signum: int, frame) -> None:  # noqa: ARG002
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: finishing the current step, then saving "
              "(Ctrl-C again aborts without saving)", flush=True)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@dataclass
class EpochResult:
    loss_sum: float  # sum over this process's images of the per-batch mean loss times batch size, as read so far
    count: int  # images of this epoch whose losses were read (including earlier sessions)
    next_step: int  # == number of steps when the epoch finished
    interrupted: bool
    seconds: float
    seen: int = 0  # images this process trained on in this call (what images/s counts; not earlier sessions)
    pending: bool = False  # losses of this epoch still on the device (a shared window, read later)


class LossWindow:
    """The losses of the steps since the last host read, held on the device.

    Each step's loss is copied into a buffer of ``size`` entries at once (a CUDA-graph replay,
    ``--compile-mode reduce-overhead``, overwrites its outputs, so a kept reference would change
    under us), and :meth:`check` brings the whole window to the host in one transfer, adds each
    value times its batch size to its epoch's totals (in step order, the same float arithmetic as
    one read per step), and raises :class:`NonFiniteLossError` naming the first bad step. One
    window may span epoch ends (the runner's), so the host reads every ``size`` steps of a stage,
    not at every epoch's end; ``totals[epoch]`` is ``[loss_sum, count]`` of what was read."""

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, int(size))
        self.buf: torch.Tensor | None = None
        self.entries: list[tuple[int, int, int]] = []  # (epoch, step, n) of buf[0 .. len-1]
        self.totals: dict[int, list] = {}

    @property
    def pending(self) -> bool:
        return bool(self.entries)

    @property
    def full(self) -> bool:
        return len(self.entries) >= self.size

    def add(self, epoch: int, step: int, loss: torch.Tensor, n: int) -> None:
        loss = loss.detach()
        if self.buf is None or self.buf.device != loss.device or self.buf.dtype != loss.dtype:
            if self.entries:  # a loss of another dtype or device: read what is held first (never in the runner)
                self._read()
            self.buf = torch.empty(self.size, dtype=loss.dtype, device=loss.device)
        self.buf[len(self.entries)].copy_(loss.reshape(()))
        self.entries.append((epoch, step, n))

    def _read(self) -> list[tuple[int, int, int, float]]:
        if not self.entries:
            return []
        values = self.buf[: len(self.entries)].to("cpu", copy=True).tolist()  # the window's one host read
        out = [(e, s, n, v) for (e, s, n), v in zip(self.entries, values)]
        self.entries.clear()
        return out

    def check(self, accelerator, where: str) -> float:
        """Read the window, tally it, raise on a non-finite loss (a collective with several
        processes: all stop together); returns the last value read (NaN when none)."""
        last, bad, epoch = math.nan, None, None
        for epoch, s, n, value in self._read():
            if not math.isfinite(value) and bad is None:
                bad = f"non-finite loss ({value}) in {where}: epoch {epoch}, step {s}"
            t = self.totals.setdefault(epoch, [0.0, 0])
            t[0] += value * n
            t[1] += n
            last = value
        if agree(bad is not None, accelerator):  # every process stops together
            on = "" if epoch is None else f": epoch {epoch}"
            raise NonFiniteLossError(bad or f"non-finite loss on another process in {where}{on}")
        return last


def train_one_epoch(
    model: torch.nn.Module,
    optimizer,
    loss_fn: Callable[[torch.nn.Module, object], tuple[torch.Tensor, int]],
    batches: Sequence,
    *,
    accelerator,
    kind: str,
    epoch: int,
    where: str,
    start_step: int = 0,
    loss_sum: float = 0.0,
    count: int = 0,
    grad_clip: float = 0.0,
    stop: StopRequest | None = None,
    sync_every: int = 1,
    on_sync: Callable[[int, float, float], None] | None = None,
    step_hook: Callable[[str, int, int, torch.Tensor], torch.Tensor] | None = None,
    window: LossWindow | None = None,
) -> EpochResult:
    """Run steps ``start_step .. len(batches)-1`` of one epoch.

    ``loss_sum``/``count`` carry the totals of an epoch resumed mid-way. Every ``sync_every`` steps
    (and at the end) the losses are read and checked for finiteness (:class:`LossWindow`),
    ``on_sync(step, last_loss, images_per_s)`` is called and the stop flag is checked. With
    several processes both decisions are collective, so all processes stop at the same step (a
    NaN is detected after that step's update; the caller never saves the model then).

    ``window``: a :class:`LossWindow` the caller keeps across epochs (its size, not
    ``sync_every``, sets the period); the epoch's end then reads nothing, and what is still in the
    window is the caller's to read (``EpochResult.pending``). Between reads a step makes no host
    read of a device value.
    """
    model.train()
    world = accelerator.num_processes
    t0 = time.perf_counter()
    shared = window is not None
    window = window if shared else LossWindow(sync_every)
    window.totals[epoch] = [loss_sum, count]
    seen_since = 0
    step = start_step
    interrupted = False

    def sync() -> None:
        last = window.check(accelerator, where)
        if on_sync is not None:
            dt = time.perf_counter() - t0
            on_sync(step, last, seen_since * world / dt if dt > 0 else math.nan)

    for step in range(start_step, len(batches)):
        batch = batches[step]
        loss, n = loss_fn(model, batch)
        if step_hook is not None:
            loss = step_hook(kind, epoch, step, loss)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        window.add(epoch, step, loss, n)
        seen_since += n
        last_step = step == len(batches) - 1
        if window.full or (last_step and not shared):
            sync()
            if stop is not None and not last_step and agree(stop.requested, accelerator):
                interrupted = True
                break
    if window.pending and not shared:
        sync()
    next_step = step + 1 if interrupted else len(batches)
    loss_sum, count = window.totals[epoch] if shared else window.totals.pop(epoch)
    return EpochResult(loss_sum, count, next_step, interrupted, time.perf_counter() - t0, seen_since,
                       window.pending)


def default_sync_every(device: torch.device) -> int:
    """Steps between the loss checks of :func:`train_one_epoch`: every step on a CPU (a check
    costs nothing there), every 25 on an accelerator (each check waits for the device)."""
    return 1 if device.type == "cpu" else 25


class SingleProcess:
    """What the loops ask of an accelerator, for one process without Accelerate (the benchmark,
    ``python -m diminish.evaluate``). ``mixed_precision`` is one of
    :data:`diminish.config.PRECISIONS`; there is no gradient scaler, so fp16 training is not
    offered (evaluation in fp16 is fine)."""

    num_processes, process_index, is_main_process = 1, 0, True

    def __init__(self, device: torch.device, mixed_precision: str = "no") -> None:
        self.device, self.mixed_precision = device, mixed_precision

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, parameters, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:  # noqa: ARG002
        return tensor


def agree(flag: bool, accelerator) -> bool:
    """True when any process raised ``flag`` (a collective with several processes)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


def confusion_pass(
    model: torch.nn.Module,
    batches: Sequence,
    predict: Callable[[torch.nn.Module, object], tuple[torch.Tensor, torch.Tensor]],
    *,
    accelerator,
    num_classes: int,
) -> torch.Tensor:
    """Confusion matrix (K, K), int64 on the CPU, summed over all processes.

    ``predict(model, batch) -> (pred, target)`` label tensors of equal shape. Runs under
    ``torch.inference_mode`` with the model in eval mode (restored afterwards), each prediction
    under the accelerator's mixed precision (:func:`diminish.core.fastpath.autocast`).
    """
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, device=accelerator.device)
    try:
        with torch.inference_mode():
            for i in range(len(batches)):
                batch = batches[i]
                with fastpath.autocast(accelerator.device, accelerator.mixed_precision):
                    pred, target = predict(model, batch)
                cm.update(pred, target)
    finally:
        model.train(was_training)
    matrix = cm.matrix
    if accelerator.num_processes > 1:
        matrix = accelerator.reduce(matrix.clone(), reduction="sum")
    return matrix.cpu()
