"""The work being timed: each stage's task (:mod:`diminish.core.tasks`: model, synthetic batch, loss,
prediction) trained by the runner's own epoch loop (:func:`diminish.core.loop.train_one_epoch`) and
evaluated by the task's prediction; and the optimiser ``--optimizer`` asks for.

A training row feeds the loop a batch source that holds one pre-made synthetic batch (random,
already normalised images: the data path has rows of its own, see ``extras.py``), so a step
measures the model, the loss and the optimiser. The loop checks the loss as the runner's does
(:func:`diminish.core.loop.default_sync_every`: every step on a CPU, every 25 steps on a GPU, so one call of a
GPU row is 25 steps); the timer synchronises around whole runs of calls. The one process's stand-in
for Accelerate is :class:`diminish.core.loop.SingleProcess`; the forward passes run under
:func:`diminish.core.fastpath.autocast`, as Accelerate's ``prepare`` runs the runner's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..config import ExperimentConfig
from ..core import fastpath, loop
from ..core.tasks import BY_KIND, Task
from .options import Options


def task_of(stage: str) -> Task:
    """The task that the stage kind ``stage`` trains (pretrain, intermediate, finetune)."""
    if stage not in BY_KIND:
        raise ValueError(f"unknown stage {stage!r}")
    return BY_KIND[stage]


def stage_config(stage: str, cfg: ExperimentConfig):
    return getattr(cfg, stage)


def stage_optimizer(opts: Options, params, sc, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``--optimizer`` asks for, with the stage's learning rate and weight decay."""
    if opts.optimizer == "auto":
        return fastpath.make_optimizer(params, sc.lr, sc.weight_decay, device)
    if opts.optimizer == "foreach":
        return torch.optim.AdamW(params, lr=sc.lr, weight_decay=sc.weight_decay, foreach=True)
    raise ValueError(f"optimizer must be auto or foreach, got {opts.optimizer!r}")


class Repeated(Sequence):
    """A batch source of ``steps`` steps that all deliver the same pre-made ``batch``."""

    def __init__(self, batch, steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        if not 0 <= step < self.steps:
            raise IndexError(step)
        return self.batch


def steps_per_call(device: torch.device) -> int:
    """Training steps in one call of a row: one loss check's worth (see the module docstring)."""
    return loop.default_sync_every(device)


def train_step_fn(loss: Callable, model, opt, batch, accelerator, grad_clip: float = 0.0,
                  name: str = "the benchmark") -> Callable[[], None]:
    """:func:`steps_per_call` training steps of the runner's loop on ``batch``, the forward
    passes and ``loss`` (a task's, or any engine loss function) under the accelerator's precision."""
    device, precision = accelerator.device, accelerator.mixed_precision
    source = Repeated(batch, steps_per_call(device))

    def loss_fn(m, b):
        with fastpath.autocast(device, precision):
            return loss(m, b)

    def step() -> None:
        loop.train_one_epoch(model, opt, loss_fn, source, accelerator=accelerator, kind="bench", epoch=0,
                               where=name, grad_clip=grad_clip, sync_every=len(source))

    return step


def eval_step_fn(task: Task, model, batch, accelerator) -> Callable[[], object]:
    """One evaluation forward: the task's prediction (SimMIM, which predicts nothing that is
    scored: its loss) under ``inference_mode`` and the accelerator's precision."""
    fn = task.predict or task.loss

    def step():
        model.eval()
        with fastpath.eval_context(accelerator.device, accelerator.mixed_precision):
            return fn(model, batch)

    return step
