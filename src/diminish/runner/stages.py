"""The study's stage kinds as the runner runs them: pre-training (SimMIM), the intermediate
classification stage, fine-tuning (segmentation) and the grid cell (fine-tuning when needed, then
evaluation on the held-out Pets test set). Each builds its model from the seed and its upstream
stage's weights inside its store lifecycle (``with ctx.store.running(stage)``) and returns the
record the store keeps; :func:`execute` runs one unit of work by its kind's registered function
(:mod:`.kinds`).

What each kind's model, batches, loss and prediction are is :mod:`diminish.core.tasks`'s (the same
objects serve the benchmark and ``python -m diminish.evaluate``); the batch path is
:mod:`diminish.core.batches`'s, the epochs with checkpoints :mod:`.training`'s.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np
import torch

from ..core import fastpath
from ..core.batches import Batches, DeviceData, epoch_order, eval_batches, split_batches
from ..core.image_metrics import trimap_paths, variant_scores
from ..core.metrics import scores_from_confusion
from ..core.model import load_backbone
from ..core.tasks import CLASSIFY, SEGMENT, SIMMIM, Task, load_model
from ..data.classes import TRIMAP_CLASSES
from ..data.splits import finetune_subset, pets_split, pretrain_subset
from ..seeds import derive_seed
from .atomic import atomic_save_npz
from .checkpoint import Checkpointer, atomic_torch_save
from .context import Context
from .digests import DamagedFile, UpstreamDamaged
from .kinds import KINDS, runner_of
from .plan import Plan, Stage
from .training import train


def _build(ctx: Context, stage: Stage, task: Task):
    """The stage's model: the seed's initialisation and head (:meth:`Task.build`), then the
    upstream stage's backbone loaded into it (nothing for a random initialisation)."""
    model = task.build(ctx.cfg, stage.seed)
    if stage.upstream is not None:
        _, blob = upstream_model(ctx, stage.upstream, build=False)
        load_backbone(model, blob["state_dict"])
    return model


def _save(ctx: Context, stage: Stage, task: Task, model) -> None:
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt", task.blob(model, ctx.cfg, stage))


def upstream_model(ctx: Context, up: Stage, build: bool = True):
    """A finished stage's model.pt, checked against the size and checksum recorded when it was
    written and read without running any code in it -> (module or None, blob); raises
    :class:`UpstreamDamaged` naming the file when it is missing, altered or unreadable."""
    path = ctx.store.dir(up) / "model.pt"
    bad = ctx.store.check(up, ("model.pt",))
    if bad:
        raise UpstreamDamaged(up, *bad[0])
    try:
        return load_model(path, build=build)
    except (ValueError, OSError) as e:
        raise UpstreamDamaged(up, path, str(e).removeprefix(f"{path}: ")) from None


def _epoch_batches(ctx: Context, data, idx, parts: tuple, batch_size: int, make):
    """epoch -> this process's batches in the epoch's seeded order (a function of parts and epoch)."""
    rank, world = ctx.acc.process_index, ctx.acc.num_processes

    def batches(epoch):
        order = idx[epoch_order(len(idx), derive_seed(*parts), epoch)]
        return Batches(data, split_batches(order, batch_size, rank, world), make, (*parts, epoch, rank))

    return batches


def _eval_batches(ctx: Context, idx, batch_size: int) -> list:
    return eval_batches(idx, batch_size, ctx.acc.process_index, ctx.acc.num_processes)


def _heartbeat(ctx: Context, unit: Stage):
    """Refreshes the claim of the unit being run (the main process's; the others do nothing)."""
    return functools.partial(ctx.store.claims.heartbeat, unit) if ctx.is_main else _nothing


def _nothing(*args, **kwargs) -> None:
    pass


def _trained(ctx: Context, stage: Stage, unit: Stage, task: Task, data, idx, parts: tuple, watch=None):
    """Build the stage's model and train it on ``data[idx]`` in the order seeded by ``parts``, with
    the task's augmentation and loss, keeping ``unit``'s claim fresh -> (model, TrainState).
    ``watch(batches, loss) -> (batches, loss)`` lets a stage see its training (:func:`_counting_accuracy`)."""
    sc = getattr(ctx.cfg, KINDS[stage.kind].section)
    model = _build(ctx, stage, task)
    batches = _epoch_batches(ctx, data, idx, parts, sc.batch_size, functools.partial(task.augment, ctx.cfg))
    loss = task.loss
    if watch is not None:
        batches, loss = watch(batches, loss)
    track = _nothing
    if ctx.trackers is not None and ctx.is_main:
        def track(values, epoch):
            ctx.trackers.log(stage, values, epoch)
    return train(model, stage, sc, loss, batches, len(idx), accelerator=ctx.acc,
                 checkpointer=Checkpointer(ctx.store.dir(stage), stage, ctx.is_main),
                 log=functools.partial(ctx.store.log, stage), stop=ctx.stop, heartbeat=_heartbeat(ctx, unit),
                 track=track, step_hook=ctx.step_hook, compile=ctx.rt.compile,
                 checkpoint_every=ctx.rt.checkpoint_every, progress=ctx.rt.progress,
                 sync_every=ctx.rt.sync_every, optimizer=ctx.rt.adamw)


def _final_loss(state) -> float:
    return state.history[-1] if state.history else float("nan")


def run_pretrain(ctx: Context, plan: Plan, stage: Stage) -> dict:
    with ctx.store.running(stage) as run:
        data = ctx.data.on_device("imagenet")
        idx = pretrain_subset(len(data), stage.pretrain, ctx.cfg.pretrain.data_seed)
        model, state = _trained(ctx, stage, stage, SIMMIM, data, idx, (stage.seed, "pretrain", stage.pretrain))
        _save(ctx, stage, SIMMIM, model)
        run.record = {"pretrain": stage.pretrain, "seed": stage.seed, "final_loss": _final_loss(state),
                      "history": state.history, "train_seconds": state.seconds,
                      "images": len(idx), "cache_hash": data.cache.hash, "device": _device_name(ctx)}
    return run.record


def _counting_accuracy(epochs: int):
    """A ``watch`` for :func:`_trained` that counts each epoch's training accuracy of a
    classification stage on the side, from the logits its loss is taken of (this process's share;
    no sync per step). Only training steps count (grad enabled): the check of the final weights
    takes one more loss, under ``no_grad``, which is no training image. Returns (watch,
    history(), images()) where history() lists the accuracy per epoch, None for epochs this process
    did not train (finished before a resume), and images() the images counted per epoch."""
    current, counts = [0], {}

    def watch(batches, loss):
        def epoch_batches(epoch):
            current[0] = epoch
            return batches(epoch)

        def loss_fn(m, b):
            def counted(x):
                logits = m(x)
                if torch.is_grad_enabled():
                    right = (logits.detach().float().argmax(1) == b["y"]).sum()
                    c = counts.setdefault(current[0], [0, 0])
                    c[0], c[1] = c[0] + right, c[1] + b["n"]
                return logits

            return loss(counted, b)

        return epoch_batches, loss_fn

    def history():
        return [float(counts[e][0]) / counts[e][1] if e in counts and counts[e][1] else None for e in range(epochs)]

    def images():
        return [counts[e][1] if e in counts else 0 for e in range(epochs)]

    return watch, history, images


def run_intermediate(ctx: Context, plan: Plan, stage: Stage) -> dict:
    sc = ctx.cfg.intermediate
    with ctx.store.running(stage) as run:
        data = ctx.data.on_device("intel")
        watch, accuracy_history, _ = _counting_accuracy(sc.epochs)
        model, state = _trained(ctx, stage, stage, CLASSIFY, data, np.arange(len(data)),
                                (stage.seed, "intermediate"), watch)
        test = ctx.data.intel_test() if sc.evaluate_test else None
        split = "test" if test is not None else "train"
        edata = ctx.data.on_device("intel", "test") if test is not None else data
        batches = _eval_batches(ctx, np.arange(len(edata)), ctx.cfg.finetune.eval_batch_size)
        cm = CLASSIFY.confusion(model, edata, batches, ctx.acc, ctx.cfg)
        accuracy = float(cm.diag().sum()) / max(float(cm.sum()), 1.0)
        _save(ctx, stage, CLASSIFY, model)
        run.record = {"pretrain": stage.pretrain, "seed": stage.seed, "accuracy": accuracy, "accuracy_split": split,
                      "final_loss": _final_loss(state), "history": state.history,
                      "accuracy_history": accuracy_history(), "train_seconds": state.seconds,
                      "confusion": cm.tolist(), "cache_hash": data.cache.hash, "device": _device_name(ctx)}
    _track(ctx, stage, {f"{split}/accuracy": 100.0 * accuracy})
    return run.record


def _pets(ctx: Context):
    data = ctx.data.on_device("pets")
    test_idx, pool_idx = pets_split(len(data), ctx.cfg.finetune.test_size, ctx.cfg.finetune.split_seed)
    return data, test_idx, pool_idx


def run_finetune(ctx: Context, plan: Plan, stage: Stage, unit: Stage | None = None):
    """Fine-tune ``stage`` (keeping the claim of ``unit``, its cell, fresh) -> (record, trained Segmenter)."""
    with ctx.store.running(stage) as run:
        data, _, pool = _pets(ctx)
        idx = finetune_subset(pool, stage.finetune, stage.seed)
        model, state = _trained(ctx, stage, unit or stage, SEGMENT, data, idx,
                                (stage.seed, "finetune", stage.finetune))
        _save(ctx, stage, SEGMENT, model)
        run.record = {"pretrain": stage.pretrain, "intermediate": stage.intermediate, "finetune": stage.finetune,
                      "seed": stage.seed, "final_loss": _final_loss(state),
                      "history": state.history, "train_seconds": state.seconds, "cache_hash": data.cache.hash}
    return run.record, model


def segment_scores(ctx: Context, model, data: DeviceData, idx, batch_size: int):
    """Confusion matrix of a Segmenter over ``data[idx]`` (all processes) -> (matrix, scores)."""
    cm = SEGMENT.confusion(model, data, _eval_batches(ctx, idx, batch_size), ctx.acc, ctx.cfg)
    return cm, scores_from_confusion(cm)


def run_evaluate(ctx: Context, stage: Stage, model=None, examples: int = 0) -> dict:
    """Score the fine-tuned model on the held-out Pets test set; optionally save example predictions."""
    ft = stage.upstream
    if model is None:
        model, _ = upstream_model(ctx, ft)
    data, test_idx, _ = _pets(ctx)
    cm, scores = segment_scores(ctx, model, data, test_idx, ctx.cfg.finetune.eval_batch_size)
    if examples and ctx.is_main:
        raw = data.take(test_idx[:examples])
        model.eval()
        with fastpath.eval_context(ctx.device, ctx.acc.mixed_precision):
            pred, _ = SEGMENT.predict(model, SEGMENT.eval_batch(raw))
        atomic_save_npz(ctx.store.dir(stage) / "examples.npz",
                        image=raw["images"].permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8),
                        truth=raw["masks"].cpu().numpy().astype(np.uint8),
                        pred=pred.cpu().numpy().astype(np.uint8),
                        cell=np.array(f"pretrain={stage.pretrain} intermediate={stage.intermediate} "
                                      f"finetune={stage.finetune} seed={stage.seed} (first {examples} "
                                      f"test images by cache index)"))
    try:
        ftrec = ctx.store.record(ft) if ctx.store.is_done(ft) else {}
    except DamagedFile as e:  # the fine-tuning reruns; this stage is not to blame
        raise UpstreamDamaged(ft, e.path, e.problem) from None
    return {"pretrain": stage.pretrain, "intermediate": stage.intermediate, "finetune": stage.finetune,
            "seed": stage.seed, "accuracy": scores["accuracy"], "miou": scores["miou"], "iou": scores["iou"],
            "confusion": cm.tolist(), "n_test": len(test_idx), "train_seconds": ftrec.get("train_seconds"),
            "final_loss": ftrec.get("final_loss"), "cache_hash": data.cache.hash,
            **(_metric_variants(ctx, model, data, test_idx) if ctx.is_main else {})}


def _metric_variants(ctx: Context, model, data: DeviceData, test_idx) -> dict:
    """Per-image mean mIoU, and with ``finetune.eval_original_resolution`` the scores at each test
    image's original trimap size (:mod:`diminish.core.image_metrics`)."""
    idx = np.sort(np.asarray(test_idx))  # the order DeviceData.take returns
    raw = data.take(idx)
    paths = None
    if ctx.cfg.finetune.eval_original_resolution:
        paths = trimap_paths(ctx.data.root_of("pets"), [data.cache.files[i] for i in idx])
    with fastpath.autocast(ctx.device, ctx.acc.mixed_precision):
        return variant_scores(model.to(ctx.device), raw["images"], raw["masks"], paths,
                              ctx.cfg.finetune.eval_batch_size)


EXAMPLES = 8  # test predictions kept from the examples cell


def run_cell(ctx: Context, plan: Plan, unit: Stage) -> dict:
    """A grid cell: its ``evaluate`` stage ``unit``, fine-tuning first when that stage is not done
    or its weights are gone (deleted once a cell is scored) or damaged; then the fine-tuned
    weights are removed, or linked under ``models/`` with ``--save-models``."""
    store, ft, model = ctx.store, unit.upstream, None
    weights = store.dir(ft) / "model.pt"
    damaged = store.is_done(ft) and weights.is_file() and store.check(ft, ("model.pt",))
    if damaged:
        store.undo(ft, *damaged[0])
    if damaged or not (store.is_done(ft) and weights.is_file()):
        _, model = run_finetune(ctx, plan, ft, unit)
    with store.running(unit) as run:
        record = run_evaluate(ctx, unit, model, EXAMPLES if unit.cell == plan.examples_cell else 0)
        record["device"] = _device_name(ctx)
        run.record = record
    _track(ctx, ft, {"test/miou": 100.0 * record["miou"], "test/accuracy": 100.0 * record["accuracy"],
                     **{f"test/iou_{c}": 100.0 * v for c, v in zip(TRIMAP_CLASSES, record["iou"])}})
    if ctx.is_main:
        if ctx.rt.save_models:
            link = store.root / "models" / (unit.label.replace("evaluate ", "").replace(" ", "_") + ".pt")
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            os.link(weights, link)
        else:
            with contextlib.suppress(FileNotFoundError):
                weights.unlink()
    return record


def execute(ctx: Context, plan: Plan, unit: Stage) -> dict:
    """Run one unit of work whose upstream units are finished, by its kind's function
    (:data:`.kinds.KINDS`), which writes its stage folders through the store; returns its record."""
    try:
        return runner_of(KINDS[unit.kind])(ctx, plan, unit)
    finally:
        ctx.acc.free_memory()


def _track(ctx: Context, stage: Stage, values: dict) -> None:
    """Scores (percent) to the experiment trackers, in the trained stage's run at its last epoch
    (an evaluation goes to its fine-tuning stage's run, beside that stage's loss and lr)."""
    if ctx.trackers is not None and ctx.is_main:
        epochs = getattr(ctx.cfg, KINDS[stage.kind].section).epochs
        ctx.trackers.log(stage, values, epochs)


def _device_name(ctx: Context) -> str:
    if ctx.device.type == "cuda":
        name = torch.cuda.get_device_name(ctx.device)
    else:
        name = f"{ctx.device.type} ({torch.get_num_threads()} threads)"
    name = f"{name} x{ctx.acc.num_processes}" if ctx.acc.num_processes > 1 else name
    precision = ctx.acc.mixed_precision
    return name if precision in (None, "no") else f"{name}, {precision} autocast"
