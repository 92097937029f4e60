"""Segmentation metrics from one dataset-level confusion matrix.

Definition used throughout the package (and in our paper):

* Every test pixel of every test image is added to one K x K confusion matrix ``C`` where
  ``C[t, p]`` counts pixels of true class ``t`` predicted as ``p``. Scores are computed from that
  matrix, **not** averaged over per-image scores.
* pixel accuracy = trace(C) / sum(C)
* IoU_k = C[k, k] / (sum_p C[k, p] + sum_t C[t, k] - C[k, k])   (TP / (TP + FN + FP))
* mIoU = mean of IoU_k over the classes whose union is non-zero.

Absent class convention: a class that is neither in the ground truth nor predicted anywhere has
an empty union; its IoU is NaN (undefined) and it is left out of the mIoU mean. A class that is
absent from the ground truth but predicted somewhere has IoU 0 and counts.

The matrix is a plain integer tensor, so results from several processes merge by addition
(``accelerator.reduce(cm, "sum")``).
"""

from __future__ import annotations

import math

import torch


class ConfusionMatrix:
    def __init__(self, num_classes: int = 3, device: torch.device | str | None = None) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> ConfusionMatrix:
        """Add a batch of integer label maps of equal shape (any shape)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        k = self.num_classes
        t = target.reshape(-1).long().to(self.matrix.device)
        p = pred.reshape(-1).long().to(self.matrix.device)
        if t.numel() and bool(((t < 0) | (t >= k) | (p < 0) | (p >= k)).any()):  # one host read per batch
            raise ValueError(f"labels outside [0, {k}) in confusion-matrix update")
        self.matrix += torch.bincount(t * k + p, minlength=k * k).reshape(k, k)
        return self

    def merge(self, other: ConfusionMatrix | torch.Tensor) -> ConfusionMatrix:
        m = other.matrix if isinstance(other, ConfusionMatrix) else other
        self.matrix += m.to(self.matrix.device, torch.int64)
        return self

    def scores(self) -> dict:
        return scores_from_confusion(self.matrix)


def iou_per_class(matrix: torch.Tensor) -> list[float]:
    m = matrix.double().cpu()
    tp = m.diag()
    union = m.sum(0) + m.sum(1) - tp
    return [float(tp[k] / union[k]) if union[k] > 0 else math.nan for k in range(m.shape[0])]


def pixel_accuracy(matrix: torch.Tensor) -> float:
    m = matrix.double()
    total = float(m.sum())
    return float(m.diag().sum()) / total if total else math.nan


def mean_iou(matrix: torch.Tensor) -> float:
    ious = [x for x in iou_per_class(matrix) if not math.isnan(x)]
    return sum(ious) / len(ious) if ious else math.nan


def scores_from_confusion(matrix: torch.Tensor) -> dict:
    """accuracy, miou (fractions in [0, 1]) and per-class iou from a confusion matrix."""
    return {"accuracy": pixel_accuracy(matrix), "miou": mean_iou(matrix), "iou": iou_per_class(matrix)}
