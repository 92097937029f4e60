"""The study's stages as code: pre-training (SimMIM), the intermediate classification stage, fine-
tuning (segmentation) and evaluation on the held-out Pets test set, each building its model from
the seed and its upstream stage's weights and returning the record the store keeps; and
:func:`execute`, which runs one unit of work through the store's lifecycle (begin, finish or
fail; fine-tuned weights kept or removed). :func:`load_model` reads any model file they write.

The grid and the stage keys are :mod:`diminish.plan`'s, the files :mod:`diminish.store`'s, the
shared per-process state :mod:`diminish.context`'s and the epoch loop with checkpoints
:mod:`diminish.training`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from pathlib import Path

from .context import Batches, Context, DeviceData
from .data.classes import TRIMAP_CLASSES
from .digests import DamagedFile, UpstreamDamaged
from .plan import Plan, Stage
from .store import atomic_save_npz, atomic_torch_save
from .training import StageInterrupted, train


def _model_blob(ctx: Context, stage: Stage, task: str, model, **extra) -> dict:
    return {"format": 1, "task": task, "model_config": dataclasses.asdict(ctx.cfg.model),
            "state_dict": model.state_dict(), "label": stage.label, "key": stage.key, "spec": stage.spec,
            "config_name": ctx.cfg.name, "config_hash": ctx.cfg.hash, **extra}


def _backbone(ctx: Context, seed: int):
    """The seed's random initialisation of ViNy (also the starting point of pre-training)."""
    import torch

    from .engine import derive_seed
    from .model import ViNy

    torch.manual_seed(derive_seed(seed, "init"))
    return ViNy(ctx.cfg.model)


def _with_upstream(ctx: Context, stage: Stage, wrapper) -> None:
    """Load the upstream stage's backbone into ``wrapper`` (nothing for a random initialisation)."""
    from .model import load_backbone

    if stage.upstream is None:
        return
    _, blob = upstream_model(ctx, stage.upstream, build=False)
    load_backbone(wrapper, blob["state_dict"])


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


def cross_entropy(logits, target):
    """Mean cross-entropy of (B, C) or (B, C, H, W) logits. Under ``--deterministic`` on a GPU it
    is taken as per-element losses and a plain mean: the fused mean of the per-pixel loss
    (``nll_loss2d``) accumulates with atomics on CUDA and PyTorch refuses it in deterministic mode.
    Same value up to the order of summation; the default path is unchanged."""
    import torch
    import torch.nn.functional as F

    if logits.is_cuda and torch.are_deterministic_algorithms_enabled():
        return F.cross_entropy(logits, target, reduction="none").mean()
    return F.cross_entropy(logits, target)


def _order(idx, seed_parts: tuple, epoch: int):
    from .engine import derive_seed, epoch_order

    return idx[epoch_order(len(idx), derive_seed(*seed_parts), epoch)]


def _epoch_batches(ctx: Context, data, idx, parts: tuple, batch_size: int, make):
    """epoch -> this process's batches in the epoch's seeded order (a function of parts and epoch)."""

    def batches(epoch):
        order = _order(idx, parts, epoch)
        return Batches(data, ctx.index_batches(order, batch_size), make, (*parts, epoch, ctx.acc.process_index))

    return batches


def _ce_loss(m, b):
    """Cross-entropy of a classification or segmentation batch, and its image count."""
    return cross_entropy(m(b["x"]).float(), b["y"]), b["n"]


def run_pretrain(ctx: Context, stage: Stage, heartbeat=None) -> dict:
    import torch

    from .data.splits import pretrain_subset
    from .data.transforms import simmim_augment
    from .engine import derive_seed
    from .simmim import SimMIM

    cfg, sc = ctx.cfg, ctx.cfg.pretrain
    data = ctx.data("imagenet")
    idx = pretrain_subset(len(data), stage.pretrain, sc.data_seed)
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "pretrain-head"))
    model = SimMIM(backbone, cfg.simmim)
    parts = (stage.seed, "pretrain", stage.pretrain)

    def make(raw, gen):  # the mask is drawn here, after the crops, so the model sees only tensors
        x = simmim_augment(raw["images"], gen)  # (B, C, H, W)
        return {"x": x, "mask": model.random_mask(x.shape[0], generator=gen), "n": raw["n"]}  # mask (B, L)

    def loss_fn(m, b):
        return m(b["x"], mask=b["mask"]), b["n"]

    batches = _epoch_batches(ctx, data, idx, parts, sc.batch_size, make)
    model, state = train(ctx, stage, model, sc, loss_fn, batches, len(idx), heartbeat)
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt", _model_blob(ctx, stage, "simmim", model))
    return {"pretrain": stage.pretrain, "seed": stage.seed, "final_loss": state.history[-1] if state.history
            else float("nan"), "history": state.history, "train_seconds": state.seconds,
            "images": len(idx), "cache_hash": data.cache.hash}


def _counting_accuracy(batches, epochs: int):
    """Wrap a classification stage's batches and loss so that each epoch's training accuracy is
    counted on the side (this process's share; no sync per step). Returns (batches, loss_fn,
    history()) where history() lists the accuracy per epoch, None for epochs this process did not
    train (finished before a resume)."""
    current, counts = [0], {}

    def epoch_batches(epoch):
        current[0] = epoch
        return batches(epoch)

    def loss_fn(m, b):
        logits = m(b["x"]).float()
        right = (logits.argmax(1) == b["y"]).sum()
        c = counts.setdefault(current[0], [0, 0])
        c[0], c[1] = c[0] + right.detach(), c[1] + b["n"]
        return cross_entropy(logits, b["y"]), b["n"]

    def history():
        return [float(counts[e][0]) / counts[e][1] if e in counts and counts[e][1] else None for e in range(epochs)]

    return epoch_batches, loss_fn, history


def run_intermediate(ctx: Context, stage: Stage, heartbeat=None) -> dict:
    import torch

    from .data.transforms import cls_augment, normalize
    from .engine import derive_seed, evaluate
    from .model import Classifier

    cfg, sc = ctx.cfg, ctx.cfg.intermediate
    data = ctx.data("intel")
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "intermediate-head"))
    model = Classifier(backbone, sc.num_classes)
    _with_upstream(ctx, stage, model)
    import numpy as np

    idx = np.arange(len(data))
    parts = (stage.seed, "intermediate")

    def make(raw, gen):
        return {"x": cls_augment(raw["images"], gen), "y": raw["labels"], "n": raw["n"]}

    batches, loss_fn, accuracy_history = _counting_accuracy(
        _epoch_batches(ctx, data, idx, parts, sc.batch_size, make), sc.epochs)
    model, state = train(ctx, stage, model, sc, loss_fn, batches, len(idx), heartbeat)
    test = ctx.intel_test() if sc.evaluate_test else None
    split = "test" if test is not None else "train"
    edata = ctx.data("intel", "test") if test is not None else data
    eidx = np.arange(len(edata))
    ebatches = Batches(edata, ctx.eval_batches(eidx, cfg.finetune.eval_batch_size),
                       lambda raw, gen: (normalize(raw["images"]), raw["labels"]))

    def predict(m, b):
        with ctx.acc.autocast():
            return m(b[0]).argmax(1), b[1]

    cm = evaluate(model, ebatches, predict, accelerator=ctx.acc, num_classes=sc.num_classes)
    accuracy = float(cm.diag().sum()) / max(float(cm.sum()), 1.0)
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt",
                          _model_blob(ctx, stage, "classify", model, num_classes=sc.num_classes))
    return {"pretrain": stage.pretrain, "seed": stage.seed, "accuracy": accuracy, "accuracy_split": split,
            "final_loss": state.history[-1] if state.history else float("nan"),
            "history": state.history, "accuracy_history": accuracy_history(),
            "train_seconds": state.seconds, "confusion": cm.tolist(),
            "cache_hash": data.cache.hash}


def _pets(ctx: Context):
    from .data.splits import pets_split

    data = ctx.data("pets")
    test_idx, pool_idx = pets_split(len(data), ctx.cfg.finetune.test_size, ctx.cfg.finetune.split_seed)
    return data, test_idx, pool_idx


def run_finetune(ctx: Context, stage: Stage, heartbeat=None):
    """Returns (record, trained Segmenter). ``heartbeat`` (here and in the other ``run_*``): keeps
    the claim of the unit being run fresh while training (:func:`diminish.training.train`)."""
    import torch

    from .data.splits import finetune_subset
    from .data.transforms import seg_augment
    from .engine import derive_seed
    from .model import Segmenter

    sc = ctx.cfg.finetune
    data, _, pool = _pets(ctx)
    idx = finetune_subset(pool, stage.finetune, stage.seed)
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "finetune-head"))
    model = Segmenter(backbone)
    _with_upstream(ctx, stage, model)
    parts = (stage.seed, "finetune", stage.finetune)

    def make(raw, gen):
        x, y = seg_augment(raw["images"], raw["masks"], gen)
        return {"x": x, "y": y, "n": raw["n"]}

    batches = _epoch_batches(ctx, data, idx, parts, sc.batch_size, make)
    model, state = train(ctx, stage, model, sc, _ce_loss, batches, len(idx), heartbeat)
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt", _model_blob(ctx, stage, "segment", model, num_classes=3))
    record = {"pretrain": stage.pretrain, "intermediate": stage.intermediate, "finetune": stage.finetune,
              "seed": stage.seed, "final_loss": state.history[-1] if state.history else float("nan"),
              "history": state.history, "train_seconds": state.seconds, "cache_hash": data.cache.hash}
    return record, model


def load_model(path: Path, build: bool = True):
    """A saved model file -> (module, blob). Works for the files written by every stage. The file
    is read with ``weights_only=True``: tensors and plain containers only, so a crafted file cannot
    run code; anything else is a ValueError naming the file. ``build=False``: (None, blob)."""
    import pickle

    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a loadable diminish model file ({why})") from None
    if not isinstance(blob, dict) or blob.get("format") != 1 or "state_dict" not in blob:
        raise ValueError(f"{path}: not a diminish model file")
    if not build:
        return None, blob
    return model_from_blob(blob), blob


def model_from_blob(blob):
    """The module a model file's contents describe, with its weights; ``blob`` must come from
    :func:`load_model`, which has checked its format."""
    from .model import Classifier, Segmenter, ViNy, ViNyConfig
    from .simmim import SimMIM, SimMIMConfig

    backbone = ViNy(ViNyConfig(**blob["model_config"]))
    task = blob["task"]
    if task == "segment":
        model = Segmenter(backbone, blob.get("num_classes", 3))
    elif task == "classify":
        model = Classifier(backbone, blob["num_classes"])
    else:
        model = SimMIM(backbone, SimMIMConfig(**blob["spec"].get("simmim", {})))
    model.load_state_dict(blob["state_dict"])
    return model


def segment_scores(ctx: Context, model, data: DeviceData, idx, batch_size: int):
    """Confusion matrix of a Segmenter over ``data[idx]`` (all processes) -> (matrix, scores)."""
    from .data.transforms import normalize
    from .engine import evaluate
    from .metrics import scores_from_confusion

    batches = Batches(data, ctx.eval_batches(idx, batch_size),
                      lambda raw, gen: (normalize(raw["images"]), raw["masks"].long()))

    def predict(m, b):
        with ctx.acc.autocast():
            return m(b[0]).argmax(1), b[1]

    model.to(ctx.device)
    cm = evaluate(model, batches, predict, accelerator=ctx.acc, num_classes=3)
    return cm, scores_from_confusion(cm)


def run_evaluate(ctx: Context, stage: Stage, model=None, examples: int = 0) -> dict:
    """Score the fine-tuned model on the held-out Pets test set; optionally save example predictions."""
    import numpy as np
    import torch

    from .data.transforms import normalize

    ft = stage.upstream
    if model is None:
        model, _ = upstream_model(ctx, ft)
    data, test_idx, _ = _pets(ctx)
    cm, scores = segment_scores(ctx, model, data, test_idx, ctx.cfg.finetune.eval_batch_size)
    if examples and ctx.is_main:
        raw = data.take(test_idx[:examples])
        model.eval()
        with torch.inference_mode(), ctx.acc.autocast():
            pred = model(normalize(raw["images"])).argmax(1)
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
    image's original trimap size (:mod:`diminish.image_metrics`)."""
    import numpy as np

    from .image_metrics import trimap_paths, variant_scores

    idx = np.sort(np.asarray(test_idx))  # the order DeviceData.take returns
    raw = data.take(idx)
    paths = None
    if ctx.cfg.finetune.eval_original_resolution:
        paths = trimap_paths(ctx.root_of("pets"), [data.cache.files[i] for i in idx])
    with ctx.acc.autocast():
        return variant_scores(model.to(ctx.device), raw["images"], raw["masks"], paths,
                              ctx.cfg.finetune.eval_batch_size)


EXAMPLES = 8  # test predictions kept from the examples cell


def execute(ctx: Context, plan: Plan, unit: Stage) -> dict:
    """Run one unit of work whose upstream stages are finished: a pre-training, an intermediate
    stage, or a grid cell (an ``evaluate`` stage, running its fine-tuning first when needed).
    Writes the stage folders (main process only); returns the unit's record."""
    store, current = ctx.store, unit
    heartbeat = functools.partial(store.heartbeat, unit)  # the unit's claim, also while its fine-tuning trains
    try:
        if unit.kind in ("pretrain", "intermediate"):
            if ctx.is_main:
                store.begin(unit)
            record = (run_pretrain if unit.kind == "pretrain" else run_intermediate)(ctx, unit, heartbeat)
            record["device"] = _device_name(ctx)
            if ctx.is_main:
                store.finish(unit, record)
                if unit.kind == "intermediate":
                    _track(ctx, unit, {f"{record['accuracy_split']}/accuracy": 100.0 * record["accuracy"]})
            ctx.acc.wait_for_everyone()
            return record
        ft, model = unit.upstream, None
        weights = store.dir(ft) / "model.pt"
        damaged = store.is_done(ft) and weights.is_file() and store.check(ft, ("model.pt",))
        if damaged and ctx.is_main:
            store.undo(ft, *damaged[0])
        if damaged or not (store.is_done(ft) and weights.is_file()):
            current = ft
            if ctx.is_main:
                with contextlib.suppress(FileNotFoundError):
                    (store.dir(ft) / "done").unlink()  # weights gone: the stage must run again
                store.begin(ft)
            record, model = run_finetune(ctx, ft, heartbeat)
            if ctx.is_main:
                store.finish(ft, record)
            ctx.acc.wait_for_everyone()
        current = unit
        if ctx.is_main:
            store.begin(unit)
        record = run_evaluate(ctx, unit, model, EXAMPLES if unit.cell == plan.examples_cell else 0)
        record["device"] = _device_name(ctx)
        if ctx.is_main:
            store.finish(unit, record)
            _track(ctx, ft, {"test/miou": 100.0 * record["miou"], "test/accuracy": 100.0 * record["accuracy"],
                             **{f"test/iou_{c}": 100.0 * v for c, v in zip(TRIMAP_CLASSES, record["iou"])}})
            if ctx.rt.save_models:
                link = store.root / "models" / (unit.label.replace("evaluate ", "").replace(" ", "_") + ".pt")
                link.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                os.link(weights, link)
            else:
                with contextlib.suppress(FileNotFoundError):
                    weights.unlink()
        ctx.acc.wait_for_everyone()
        return record
    except StageInterrupted:
        raise
    except UpstreamDamaged as e:  # the upstream stage reruns; the unit waits for it, unblamed
        if ctx.is_main:
            store.undo(e.stage, e.path, e.problem)
        raise
    except BaseException as e:
        if ctx.is_main and not isinstance(e, KeyboardInterrupt):
            with contextlib.suppress(OSError):  # e.g. a full disk must not hide the original error
                store.fail(current, e)
        raise
    finally:
        ctx.acc.free_memory()


def _track(ctx: Context, stage: Stage, values: dict) -> None:
    """Scores (percent) to the experiment trackers, in the trained stage's run at its last epoch
    (an evaluation goes to its fine-tuning stage's run, beside that stage's loss and lr)."""
    if ctx.trackers is not None:
        epochs = getattr(ctx.cfg, stage.kind).epochs
        ctx.trackers.log(stage, values, epochs)


def _device_name(ctx: Context) -> str:
    import torch

    if ctx.device.type == "cuda":
        name = torch.cuda.get_device_name(ctx.device)
    else:
        name = f"{ctx.device.type} ({torch.get_num_threads()} threads)"
    name = f"{name} x{ctx.acc.num_processes}" if ctx.acc.num_processes > 1 else name
    precision = ctx.acc.mixed_precision
    return name if precision in (None, "no") else f"{name}, {precision} autocast"
