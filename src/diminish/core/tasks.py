"""Each stage kind's task, written once: how its model is built, how a batch of cached images
becomes a training batch, a loss, an evaluation batch and a prediction, and how its model file
reads back. The runner's stages (:mod:`diminish.runner.stages`), the benchmark (:mod:`diminish.bench`)
and ``python -m diminish.evaluate`` all take these from the same objects, so what one
fine-tuning step does reads in four files: the batches (:mod:`diminish.core.batches`), this one (the
task), the model (:mod:`diminish.core.model`) and the loop (:mod:`diminish.core.loop`).

=============  ==============  ===============================  =======================================
task           stage kind      training batch (``augment``)     loss / prediction
=============  ==============  ===============================  =======================================
``SIMMIM``     pretrain        crop+flip, then a mask (B, L)    masked L1 of SimMIM; no prediction
``CLASSIFY``   intermediate    crop+flip, the labels            cross-entropy; arg-max class
``SEGMENT``    finetune        crop+flip of image and trimap    per-pixel cross-entropy; arg-max map
=============  ==============  ===============================  =======================================

A batch is a dict: ``x`` (B, C, H, W) normalised images, ``y`` the labels or label maps, ``mask``
SimMIM's (B, L) mask, ``n`` the image count. The SimMIM mask is drawn with the batch, outside the
model, so a compiled model sees only tensors. Losses take the logits in fp32 (``.float()``), so
under autocast only the model runs in reduced precision.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import ExperimentConfig, SimMIMConfig, ViNyConfig
from ..data.classes import TRIMAP_CLASSES
from ..seeds import derive_seed
from .batches import Batches, DeviceData
from .loop import confusion_pass
from .model import Classifier, Segmenter, ViNy
from .simmim import SimMIM, random_mask
from .transforms import cls_augment, normalize, seg_augment, simmim_augment


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, C) or (B, C, H, W) logits. Under ``--deterministic`` on a GPU it
    is taken as per-element losses and a plain mean: the fused mean of the per-pixel loss
    (``nll_loss2d``) accumulates with atomics on CUDA and PyTorch refuses it in deterministic mode.
    Same value up to the order of summation; the default path is unchanged."""
    if logits.is_cuda and torch.are_deterministic_algorithms_enabled():
        return F.cross_entropy(logits, target, reduction="none").mean()
    return F.cross_entropy(logits, target)


def backbone(cfg: ExperimentConfig, seed: int) -> ViNy:
    """The seed's random initialisation of ViNy (also the starting point of pre-training)."""
    torch.manual_seed(derive_seed(seed, "init"))
    return ViNy(cfg.model)


class Task:
    """One stage kind's task; the three instances below are the only ones."""

    kind = name = ""  # the stage kind that trains it; its name in a model file

    def head(self, body: ViNy, cfg: ExperimentConfig) -> torch.nn.Module:
        """The task's model around ``body`` (its head drawn from the global RNG)."""
        raise NotImplementedError

    def head_from_blob(self, body: ViNy, blob: dict) -> torch.nn.Module:
        raise NotImplementedError

    def blob_extra(self, cfg: ExperimentConfig) -> dict:
        """What a model file needs beyond the backbone's configuration to rebuild the head."""
        return {}

    def num_classes(self, cfg: ExperimentConfig) -> int:
        return len(TRIMAP_CLASSES)

    def build(self, cfg: ExperimentConfig, seed: int) -> torch.nn.Module:
        """The seed's model: backbone from ``derive_seed(seed, "init")``, then the head from
        ``derive_seed(seed, "<kind>-head")`` (this order of RNG use is part of every result)."""
        body = backbone(cfg, seed)
        torch.manual_seed(derive_seed(seed, f"{self.kind}-head"))
        return self.head(body, cfg)

    def augment(self, cfg: ExperimentConfig, raw: dict, gen: torch.Generator | None) -> dict:
        """A raw batch (uint8 ``images``, ``masks``/``labels``, ``n``) -> a training batch."""
        raise NotImplementedError

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, int]:
        """(mean loss of the batch, its image count): the engine's loss function."""
        return cross_entropy(model(batch["x"]).float(), batch["y"]), batch["n"]

    def eval_batch(self, raw: dict, gen: torch.Generator | None = None) -> dict:
        """A raw batch -> an evaluation batch (normalised images, no augmentation)."""
        raise NotImplementedError

    def predict(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted labels, true labels) of equal shape: the engine's predict function."""
        return model(batch["x"]).argmax(1), batch["y"]

    def confusion(self, model, data: DeviceData, index_batches: list, accelerator,
                  cfg: ExperimentConfig | None = None) -> torch.Tensor:
        """Confusion matrix (K, K) of ``model`` over the batches ``index_batches`` of ``data``
        (this process's share; summed over all), by :meth:`predict` under the accelerator's mixed
        precision: the runner's test scores and ``python -m diminish.evaluate``'s."""
        batches = Batches(data, index_batches, self.eval_batch)
        model.to(accelerator.device)
        return confusion_pass(model, batches, self.predict, accelerator=accelerator, num_classes=self.num_classes(cfg))

    def synthetic(self, cfg: ExperimentConfig, x: torch.Tensor, g: torch.Generator) -> dict:
        """The task's batch around random normalised images ``x`` (targets from ``g``)."""
        raise NotImplementedError

    def synthetic_batch(self, cfg: ExperimentConfig, batch_size: int, device: torch.device, seed: int = 0) -> dict:
        """A training (and evaluation) batch of random, already normalised images on ``device``:
        what the benchmark times the model on (the data path has rows of its own)."""
        g = torch.Generator().manual_seed(seed)
        s = cfg.model.image_size
        x = torch.randn(batch_size, cfg.model.channels, s, s, generator=g)  # (B, C, H, W)
        out = self.synthetic(cfg, x, g)
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in out.items()}

    def blob(self, model: torch.nn.Module, cfg: ExperimentConfig, stage) -> dict:
        """The contents of the model file of ``stage`` (read back by :func:`load_model`)."""
        return {"format": 1, "task": self.name, "model_config": dataclasses.asdict(cfg.model),
                "state_dict": model.state_dict(), "label": stage.label, "key": stage.key, "spec": stage.spec,
                "config_name": cfg.name, "config_hash": cfg.hash, **self.blob_extra(cfg)}


class SimMIMTask(Task):
    kind, name = "pretrain", "simmim"
    predict = None  # SimMIM predicts pixels; nothing of it is scored but its loss

    def head(self, body, cfg):
        return SimMIM(body, cfg.simmim)

    def head_from_blob(self, body, blob):
        return SimMIM(body, SimMIMConfig(**blob["spec"].get("simmim", {})))

    def augment(self, cfg, raw, gen):  # the mask is drawn after the crops, from the same generator
        x = simmim_augment(raw["images"], gen)  # (B, C, H, W)
        return {"x": x, "mask": random_mask(cfg.simmim, cfg.model, x.shape[0], generator=gen), "n": raw["n"]}

    def loss(self, model, batch):
        return model(batch["x"], mask=batch["mask"]), batch["n"]

    def synthetic(self, cfg, x, g):
        return {"x": x, "mask": random_mask(cfg.simmim, cfg.model, x.shape[0], generator=g), "n": x.shape[0]}


class ClassifyTask(Task):
    kind, name = "intermediate", "classify"

    def num_classes(self, cfg):
        return cfg.intermediate.num_classes

    def head(self, body, cfg):
        return Classifier(body, cfg.intermediate.num_classes)

    def head_from_blob(self, body, blob):
        return Classifier(body, blob["num_classes"])

    def blob_extra(self, cfg):
        return {"num_classes": cfg.intermediate.num_classes}

    def augment(self, cfg, raw, gen):
        return {"x": cls_augment(raw["images"], gen), "y": raw["labels"], "n": raw["n"]}

    def eval_batch(self, raw, gen=None):
        return {"x": normalize(raw["images"]), "y": raw["labels"], "n": raw["n"]}

    def synthetic(self, cfg, x, g):
        return {"x": x, "y": torch.randint(0, cfg.intermediate.num_classes, (x.shape[0],), generator=g),
                "n": x.shape[0]}


class SegmentTask(Task):
    kind, name = "finetune", "segment"

    def head(self, body, cfg):
        return Segmenter(body)

    def head_from_blob(self, body, blob):
        return Segmenter(body, blob.get("num_classes", len(TRIMAP_CLASSES)))

    def blob_extra(self, cfg):
        return {"num_classes": len(TRIMAP_CLASSES)}

    def augment(self, cfg, raw, gen):
        x, y = seg_augment(raw["images"], raw["masks"], gen)
        return {"x": x, "y": y, "n": raw["n"]}

    def eval_batch(self, raw, gen=None):
        return {"x": normalize(raw["images"]), "y": raw["masks"].long(), "n": raw["n"]}

    def synthetic(self, cfg, x, g):
        s = cfg.model.image_size
        return {"x": x, "y": torch.randint(0, len(TRIMAP_CLASSES), (x.shape[0], s, s), generator=g),  # (B, H, W)
                "n": x.shape[0]}


SIMMIM, CLASSIFY, SEGMENT = SimMIMTask(), ClassifyTask(), SegmentTask()
BY_KIND = {t.kind: t for t in (SIMMIM, CLASSIFY, SEGMENT)}  # stage kind -> task
BY_NAME = {t.name: t for t in (SIMMIM, CLASSIFY, SEGMENT)}  # a model file's "task" -> task


def load_model(path: Path, build: bool = True):
    """A saved model file -> (module, blob). Works for the files written by every stage. The file
    is read with ``weights_only=True``: tensors and plain containers only, so a crafted file cannot
    run code; anything else is a ValueError naming the file. ``build=False``: (None, blob)."""
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


def model_from_blob(blob: dict) -> torch.nn.Module:
    """The module a model file's contents describe, with its weights; ``blob`` must come from
    :func:`load_model`, which has checked its format (an unknown task reads as SimMIM, as always)."""
    task = BY_NAME.get(blob["task"], SIMMIM)
    model = task.head_from_blob(ViNy(ViNyConfig(**blob["model_config"])), blob)
    model.load_state_dict(blob["state_dict"])
    return model
