"""Two other readings of "mIoU" beside the study's dataset-level one (:mod:`diminish.core.metrics`).

The paper's wording fits several computations; these are recorded next to it in ``results.nc``:

* **per-image mean** (``miou_image``): each test image gets its own 3-class confusion matrix and
  mIoU (classes absent from both its truth and its prediction left out, as in
  :func:`diminish.core.metrics.mean_iou`); the score is the mean over images. Small images and small
  pets weigh as much as large ones.
* **original resolution** (``miou_original``, ``miou_image_original``): the model's 128 x 128
  logits are upsampled bilinearly to each image's original trimap size before the arg-max, and
  scored against the trimap file itself (not the 128 px nearest-neighbour copy in the cache).
  Off by default (``finetune.eval_original_resolution``): it reads every test trimap file.

Runs on the main process over the whole test set (an inference pass; the sets are small).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.readers import pets_root, read_trimap
from .metrics import mean_iou
from .transforms import normalize


def image_confusions(pred: torch.Tensor, target: torch.Tensor, k: int = 3) -> torch.Tensor:
    """(B, H, W) label maps -> (B, k, k) int64 confusion matrices, one per image."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    b = pred.shape[0]
    codes = target.reshape(b, -1).long() * k + pred.reshape(b, -1).long()  # (B, H*W)
    out = torch.zeros(b, k * k, dtype=torch.int64, device=pred.device)
    out.scatter_add_(1, codes, torch.ones_like(codes))
    return out.view(b, k, k)


def per_image_miou(confusions: torch.Tensor) -> list[float]:
    """The mIoU of each image's confusion matrix (fractions)."""
    return [mean_iou(m) for m in confusions.cpu()]


def trimap_paths(root: str | Path, files: list[str]) -> list[Path]:
    """The trimap file of each cached Pets image (``files``: image paths relative to the dataset root)."""
    base = pets_root(root)
    return [base / "annotations" / "trimaps" / (Path(f).stem + ".png") for f in files]


@torch.inference_mode()
def variant_scores(model, images: torch.Tensor, masks: torch.Tensor, trimaps: list[Path] | None = None,
                   batch_size: int = 50) -> dict:
    """Scores of a Segmenter on uint8 images (N, 3, 128, 128) with cached masks (N, 128, 128).

    Returns fractions: ``miou_image`` always; with ``trimaps`` (one file per image) also
    ``miou_original`` (dataset-level) and ``miou_image_original`` at each trimap's own size.
    """
    was = model.training
    model.eval()
    per_image, per_image_orig = [], []
    total = torch.zeros(3, 3, dtype=torch.int64)
    try:
        for s in range(0, len(images), batch_size):
            logits = model(normalize(images[s:s + batch_size])).float()  # (B, 3, 128, 128)
            cms = image_confusions(logits.argmax(1), masks[s:s + batch_size])
            per_image += per_image_miou(cms)
            if trimaps is None:
                continue
            for i, path in enumerate(trimaps[s:s + batch_size]):
                truth = torch.from_numpy(read_trimap(path).astype(np.int64) - 1)  # (H, W), 0 pet/1 bg/2 border
                up = F.interpolate(logits[i:i + 1], size=tuple(truth.shape), mode="bilinear", align_corners=False)
                cm = image_confusions(up.argmax(1).cpu(), truth[None])[0]
                total += cm
                per_image_orig.append(mean_iou(cm))
    finally:
        model.train(was)
    out = {"miou_image": float(np.mean(per_image)) if per_image else float("nan")}
    if trimaps is not None:
        out["miou_original"] = mean_iou(total)
        out["miou_image_original"] = float(np.mean(per_image_orig)) if per_image_orig else float("nan")
    return out
